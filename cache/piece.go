package cache

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/anacrolix/torrent/storage"
)

// piece implements storage.PieceImpl, and io.WriterTo so that anacrolix
// hashes a held piece without copying it.
var _ interface {
	storage.PieceImpl
	io.WriterTo
} = (*piece)(nil)

// Completion never sets Err: that would stop the whole torrent.
func (p *piece) Completion() storage.Completion {
	c := p.t.c
	c.mu.Lock()
	ok := p.h != nil && p.h.complete && !p.lost
	c.unlock()
	return storage.Completion{Ok: true, Complete: ok}
}

// WriteAt reserves the piece's full length on its first write, evicting
// least recently useful pieces as needed; it returns an error wrapping
// ErrFull if the reservation does not fit.
func (p *piece) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > p.length {
		return 0, fmt.Errorf("%v: write of %d bytes at %d overflows length %d", p, len(b), off, p.length)
	}
	c := p.t.c
	c.mu.Lock()
	h, err := c.acquireWrite(p)
	if err != nil {
		c.unlock()
		return 0, err
	}
	buf, f := h.buf, h.f
	c.unlock()
	var n int
	if buf != nil {
		n = copy(buf[off:], b)
	} else {
		n, err = f.WriteAt(b, off)
		if err != nil {
			err = fmt.Errorf("%v: %w", p, err)
		}
	}
	c.mu.Lock()
	c.unref(h)
	c.unlock()
	return n, err
}

// acquireWrite returns p's data ready for a plain write, with a reference
// taken. Lock held; it may unlock and wait.
func (c *Cache) acquireWrite(p *piece) (*held, error) {
	for {
		if c.closed {
			return nil, fmt.Errorf("%v: %w", p, ErrClosed)
		}
		if p.t.detached {
			return nil, fmt.Errorf("%v: torrent closed: %w", p, ErrClosed)
		}
		h := p.h
		if h == nil {
			if err := c.create(p); err != nil {
				return nil, err
			}
			continue
		}
		if h.excl {
			c.wait()
			continue
		}
		if h.compressed {
			// Overwriting a complete compressed piece: make it plain.
			if busy(h) {
				c.wait()
				continue
			}
			if err := c.decompressInPlace(h); err != nil {
				return nil, err
			}
			continue
		}
		h.refs++
		h.version++
		h.lastWrite = c.nowNano()
		c.touch(h)
		if c.dir != "" && h.f == nil {
			if _, err := c.fileOf(h); err != nil {
				c.unref(h)
				return nil, err
			}
		}
		return h, nil
	}
}

// create gives p data: a memory buffer or a file of its full length. Lock
// held; it unlocks to allocate or create the file, with h.excl set.
func (c *Cache) create(p *piece) error {
	l := p.length
	if c.dir == "" {
		buf, ok := c.takeBuf(l, &c.stored)
		if !ok {
			return c.fullErr(p, l)
		}
		h := c.install(p, l)
		if buf != nil {
			h.buf = buf
			return nil
		}
		h.excl = true
		c.unlock()
		buf = make([]byte, l)
		c.mu.Lock()
		h.buf = buf
		h.excl = false
		c.wake()
		return nil
	}
	path, ok := c.takeFile(l)
	if !ok {
		return c.fullErr(p, l)
	}
	h := c.install(p, l)
	if path != "" {
		// An idle piece file: opened on first use.
		h.path = path
		return nil
	}
	h.excl = true
	c.seq++
	path = filepath.Join(c.dir, strconv.FormatUint(c.seq, 10)+pieceFileExt)
	c.unlock()
	f, err := createPieceFile(path, l)
	c.mu.Lock()
	h.excl = false
	c.wake()
	if err != nil {
		c.dropHeld(h, keepNone)
		return fmt.Errorf("%v: creating piece file: %w", p, err)
	}
	h.path = path
	h.f = f
	c.fds.pushFront(h)
	c.trimFds()
	return nil
}

func (c *Cache) fullErr(p *piece, need int64) error {
	return fmt.Errorf("%v: %d bytes needed, %d of %d held (%d pinned) and nothing evictable: %w",
		p, need, c.held, c.budget, c.pinned, ErrFull)
}

// ReadAt reads held data, complete or partial. A piece without data
// returns an error wrapping ErrNotHeld, never zeros.
func (p *piece) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%v: read at negative offset %d", p, off)
	}
	if off >= p.length {
		return 0, io.EOF
	}
	want := min(int64(len(b)), p.length-off)
	var n int
	err := p.withData(func(src []byte, f *os.File) (err error) {
		if src != nil {
			n = copy(b[:want], src[off:])
			return nil
		}
		n, err = f.ReadAt(b[:want], off)
		if err == io.EOF && int64(n) == want {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("%v: %w", p, err)
		}
		return err
	})
	if err == nil && want < int64(len(b)) {
		err = io.EOF
	}
	return n, err
}

// WriteTo writes the whole piece to w; anacrolix hashes pieces this way.
func (p *piece) WriteTo(w io.Writer) (int64, error) {
	var n int64
	err := p.withData(func(src []byte, f *os.File) (err error) {
		if src != nil {
			n1, err := w.Write(src)
			n = int64(n1)
			return err
		}
		n, err = io.Copy(w, io.NewSectionReader(f, 0, p.length))
		return err
	})
	return n, err
}

// withData runs fn on p's data — bytes in memory, or its open file — with
// a reference held so that it is not evicted meanwhile, and the lock
// released during fn.
func (p *piece) withData(fn func(src []byte, f *os.File) error) error {
	c := p.t.c
	c.mu.Lock()
	h, src, err := c.acquireRead(p)
	if err != nil {
		c.unlock()
		return err
	}
	f := h.f
	c.unlock()
	err = fn(src, f)
	c.mu.Lock()
	c.unref(h)
	c.unlock()
	return err
}

// acquireRead returns p's data for reading with a reference taken: plain
// bytes in memory, or nil and h.f open. Lock held; it may unlock and wait.
func (c *Cache) acquireRead(p *piece) (*held, []byte, error) {
	for {
		if c.closed {
			return nil, nil, fmt.Errorf("%v: %w", p, ErrClosed)
		}
		h := p.h
		if h == nil || p.lost {
			c.misses++
			return nil, nil, fmt.Errorf("%v: %w", p, ErrNotHeld)
		}
		if h.excl {
			c.wait()
			continue
		}
		if h.compressed {
			if h.plain == nil {
				if h.inflating {
					c.wait()
					continue
				}
				if err := c.inflate(h); err != nil {
					return nil, nil, err
				}
				continue
			}
			h.refs++
			c.hits++
			c.inflated.moveFront(h)
			c.touch(h)
			return h, h.plain, nil
		}
		h.refs++
		c.hits++
		c.touch(h)
		if c.dir != "" && h.f == nil {
			if _, err := c.fileOf(h); err != nil {
				c.unref(h)
				return nil, nil, err
			}
		}
		return h, h.buf, nil
	}
}

// MarkComplete marks held data complete and, with Compress, compresses it.
// If the data is gone (evicted between hashing and now), it returns an
// error wrapping ErrNotHeld and queues OnEvict: anacrolix considers the
// piece complete anyway until UpdateCompletion.
func (p *piece) MarkComplete() error {
	c := p.t.c
	c.mu.Lock()
	defer c.unlock()
	for {
		if c.closed {
			return fmt.Errorf("%v: %w", p, ErrClosed)
		}
		h := p.h
		if h == nil || p.lost {
			c.queueEvent(p)
			return fmt.Errorf("%v: mark complete: %w", p, ErrNotHeld)
		}
		if h.excl {
			c.wait()
			continue
		}
		break
	}
	h := p.h
	if !h.complete {
		h.complete = true
		c.nPartial--
		c.nComplete++
	}
	c.touch(h)
	if c.enc != nil && !h.compressed && !h.compressing {
		c.compress(h)
	}
	return nil
}

// MarkNotComplete drops the piece's data (it failed its hash check) and
// frees its bytes. It waits for I/O in flight on the piece.
func (p *piece) MarkNotComplete() error {
	c := p.t.c
	c.mu.Lock()
	defer c.unlock()
	for p.h != nil {
		if busy(p.h) {
			c.wait()
			continue
		}
		c.dropHeld(p.h, keepAny)
	}
	p.lost = false
	return nil
}
