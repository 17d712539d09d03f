package btfs

import (
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// ReadaheadHorizon is how much of a handle's measured read rate its
// readahead covers: enough to keep the swarm busy while the reader
// consumes what arrived, little enough that one reader does not fill the
// cache.
const ReadaheadHorizon = 4 * time.Second

// rateWindow is the shortest interval a handle's rate is measured over.
const rateWindow = 250 * time.Millisecond

// handle is one open file: its own anacrolix reader, so that readers of
// different files or offsets fetch independently.
type handle struct {
	m        *Mount
	f        *torrent.File
	pieceLen int64

	mu     sync.Mutex // serialises reads: one reader, one position
	r      torrent.Reader
	pos    int64 // the reader's position within the file
	closed bool

	// Rate measurement, under mu.
	winStart time.Time
	winBytes int64
	rate     atomic.Uint64 // bytes per second, float64 bits
	// floor is a depth the readahead keeps whatever the rate: doubled by
	// every sequential read that had to wait for the swarm, reset by a
	// seek (starvedRead).
	floor atomic.Int64
	next  int64 // where the last read ended, under mu
	// seekEnd is where the read in flight ends when it is a seek (not
	// sequential), 0 otherwise: the readahead then covers that read alone
	// (readahead).
	seekEnd atomic.Int64
}

// starvedWait is how long a read must wait for it to count as starved:
// a read of pieces at hand takes microseconds.
const starvedWait = 10 * time.Millisecond

var (
	_ fs.FileReader   = (*handle)(nil)
	_ fs.FileReleaser = (*handle)(nil)
)

func (m *Mount) newHandle(f *torrent.File) (*handle, syscall.Errno) {
	if m.ctx.Err() != nil {
		return nil, syscall.EIO
	}
	h := &handle{m: m, f: f, pieceLen: m.t.Info().PieceLength}
	h.r = f.NewReader()
	h.r.SetReadaheadFunc(h.readahead)
	m.handles.Add(1)
	return h, 0
}

// readahead is the reader's depth: ReadaheadHorizon at the measured rate
// or the starved floor, whichever is more, at least two pieces and at most
// Options.MaxReadahead. anacrolix calls it under its client lock: atomics
// only.
//
// A seek reads ahead nothing until its own read is served: the pieces
// under it are the only ones requested, so that no readahead piece shares
// the seed's queue or upload limit with them (a 1 MiB piece and one of
// readahead from a 4 MiB/s seed took 500 ms, twice one piece's time).
// The next read is sequential and reads ahead as usual.
func (h *handle) readahead(rc torrent.ReadaheadContext) int64 {
	if end := h.seekEnd.Load(); end > 0 {
		return max(1, end-rc.CurrentPos)
	}
	ra := int64(math.Float64frombits(h.rate.Load()) * ReadaheadHorizon.Seconds())
	return max(2*h.pieceLen, min(max(ra, h.floor.Load()), h.m.o.MaxReadahead))
}

// starvedRead adapts the floor after a read that waited waited.
// The measured rate alone cannot grow the depth when the swarm answers
// in rounds (Transmission 3.00 answers at its 500 ms pulse): a reader
// waiting on a shallow readahead measures the supply, a low rate keeps
// the readahead shallow, and the read stays at a few hundred KiB/s
// (docs/btfs.md). A sequential read that waits means the reader is faster
// than what is in flight: double the depth. A seek starts over, so
// random reads do not fetch deep readahead they never read.
func (h *handle) starvedRead(sequential bool, waited time.Duration) {
	switch {
	case !sequential:
		h.floor.Store(0)
	case waited >= starvedWait:
		h.floor.Store(min(2*h.readahead(torrent.ReadaheadContext{CurrentPos: h.next}), h.m.o.MaxReadahead))
	}
}

// cancelStale drops every request in flight before a seek to a piece
// not at hand: anacrolix leaves the requests of pieces nobody wants any
// more (the readahead of a previous position or a closed file) with the
// peer, which serves them first, and the seek waited for a piece of
// readahead on top of its own (1 MiB pieces from a 4 MiB/s seed: 506 ms
// against 250). The pieces still wanted are asked for again at once.
//
// Only after a read that read ahead (m.ahead): the cancel costs a peer
// that answers in rounds a round trip and anacrolix's request queue
// growing from one again, about a second from Transmission 3.00, which a
// run of random reads, each asking for its own pieces alone, would pay
// for nothing (40 random reads from Transmission: 95 s with a cancel on
// every seek, 74 s without).
func (h *handle) cancelStale(off int64) {
	t := h.f.Torrent()
	if t.Piece(int((h.f.Offset()+off)/h.pieceLen)).State().Complete || !h.m.ahead.Swap(false) {
		return
	}
	t.DisallowDataDownload()
	t.AllowDataDownload()
}

// Rate is the handle's measured read rate in bytes per second.
func (h *handle) Rate() float64 { return math.Float64frombits(h.rate.Load()) }

// measure adds n bytes read to the rate window; under mu.
func (h *handle) measure(n int, now time.Time) {
	if h.winStart.IsZero() {
		h.winStart = now
	}
	h.winBytes += int64(n)
	if dt := now.Sub(h.winStart); dt >= rateWindow {
		cur := float64(h.winBytes) / dt.Seconds()
		old := h.Rate()
		if old > 0 {
			cur = 0.5*old + 0.5*cur
		}
		h.rate.Store(math.Float64bits(cur))
		h.winStart, h.winBytes = now, 0
	}
}

// claim tells Claims the pieces from off to the end of the readahead
// window; under mu.
func (h *handle) claim(off, n int64) {
	if h.m.o.Claims == nil {
		return
	}
	start := h.f.Offset() + off
	end := min(start+n+h.readahead(torrent.ReadaheadContext{CurrentPos: off}), h.f.Offset()+h.f.Length())
	h.m.o.Claims.Claim(h, int(start/h.pieceLen), int((end-1)/h.pieceLen)+1)
}

// Read serves one kernel read: it waits for the pieces under it (which the
// reader fetches first), within Options.ReadTimeout.
func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := h.f.Length()
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	want := int(min(int64(len(dest)), size-off))
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, h.m.o.ReadTimeout)
	defer cancel()
	stop := context.AfterFunc(h.m.ctx, cancel) // Unmount fails reads in flight
	defer stop()

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, syscall.EBADF
	}
	h.m.reads.Add(1)
	// Sequential: near where the last read ended (the kernel's own
	// readahead may reorder a little).
	// (Not h.pos: a retried read leaves it at -1.)
	sequential := off >= h.next-2*h.pieceLen && off <= h.next+2*h.pieceLen
	if !sequential {
		h.seekEnd.Store(off + int64(want))
		h.cancelStale(off)
	} else {
		h.m.ahead.Store(true)
	}
	h.claim(off, int64(want))
	rStart := time.Now()
	n, err := h.readLocked(rctx, dest[:want], off)
	h.seekEnd.Store(0)
	h.m.bytesRead.Add(int64(n))
	now := time.Now()
	h.measure(n, now)
	h.starvedRead(sequential, now.Sub(rStart))
	h.next = off + int64(n)
	if err == nil || (n > 0 && ctx.Err() == nil && h.m.ctx.Err() == nil) {
		return fuse.ReadResultData(dest[:n]), 0
	}
	switch {
	case h.m.ctx.Err() != nil:
		return nil, syscall.EIO
	case ctx.Err() != nil:
		return nil, syscall.EINTR // the kernel interrupted the read
	case errors.Is(err, context.DeadlineExceeded):
		h.m.timeouts.Add(1)
		h.m.log.Warn("btfs: read timed out", "dir", h.m.dir, "file", h.f.DisplayPath(), "offset", off,
			"length", want, "waited", time.Since(start).Round(time.Millisecond), "read_timeout", h.m.o.ReadTimeout)
		return nil, syscall.EIO
	}
	h.m.log.Warn("btfs: read failed", "dir", h.m.dir, "file", h.f.DisplayPath(), "offset", off, "err", err)
	return nil, syscall.EIO
}

// readLocked fills b from off. A storage error (a piece evicted between
// its completion and this read) resets the reader and tries again until
// ctx ends: the reader then fetches the piece again.
func (h *handle) readLocked(ctx context.Context, b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		if h.pos != off+int64(n) {
			p, err := h.r.Seek(off+int64(n), io.SeekStart)
			if err != nil {
				return n, err
			}
			h.pos = p
		}
		k, err := h.r.ReadContext(ctx, b[n:])
		n += k
		h.pos += int64(k)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return n, nil
		case ctx.Err() != nil:
			return n, ctx.Err()
		default:
			h.m.log.Debug("btfs: read retried", "file", h.f.DisplayPath(), "offset", off+int64(n), "err", err)
			h.pos = -1 // seek again
			select {
			case <-ctx.Done():
				return n, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return n, nil
}

// Release closes the reader: its readahead and claims end with it.
func (h *handle) Release(context.Context) syscall.Errno {
	h.close()
	return 0
}

func (h *handle) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	if h.m.o.Claims != nil {
		h.m.o.Claims.Unclaim(h)
	}
	h.r.Close()
	h.m.handles.Add(-1)
}
