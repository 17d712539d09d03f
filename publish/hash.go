package publish

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrChanged is returned when a file changed while it was hashed.
var ErrChanged = errors.New("file changed while it was hashed")

// hashes is what hashing yields.
type hashes struct {
	v1     []byte       // SHA-1 per piece, for v1 and hybrid
	roots  [][32]byte   // v2 pieces root per file (zero for empty files)
	layers [][][32]byte // v2 piece layer per file larger than a piece
}

// hasher hashes the pieces of one layout; its workers claim pieces in
// order from next.
type hasher struct {
	files       []File
	pieceLength int64
	total       int64 // v1 stream length
	version     Version
	numPieces   int
	pieceFile   []int32 // aligned layouts: the file of each piece
	done        atomic.Int64
	progress    func(done, total int64)
	size        int64 // bytes of data
	next        atomic.Int64
	out         hashes
}

func newHasher(files []File, pieceLength, total int64, v Version) *hasher {
	h := &hasher{files: files, pieceLength: pieceLength, total: total, version: v}
	h.numPieces = int((total + pieceLength - 1) / pieceLength)
	if v != V2 {
		h.out.v1 = make([]byte, sha1.Size*h.numPieces)
	}
	if v != V1 {
		h.pieceFile = make([]int32, h.numPieces)
		h.out.roots = make([][32]byte, len(files))
		h.out.layers = make([][][32]byte, len(files))
		for i, f := range files {
			n := int((f.Length + pieceLength - 1) / pieceLength)
			first := int(f.Offset / pieceLength)
			for k := range n {
				h.pieceFile[first+k] = int32(i)
			}
			if f.Length > pieceLength {
				h.out.layers[i] = make([][32]byte, n)
			}
		}
	}
	return h
}

// run hashes every piece with workers goroutines.
func (h *hasher) run(ctx context.Context, workers int) error {
	if workers <= 0 {
		// More readers than cores, so that one worker's read overlaps the
		// others' hashing on a cold cache; at most 128 MiB of buffers.
		p := runtime.GOMAXPROCS(0)
		workers = max(p, min(2*p+2, int(128<<20/h.pieceLength)))
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			if err := h.work(ctx); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if h.version != V1 {
		pad := padHash(h.pieceLength)
		for i, layer := range h.out.layers {
			if layer != nil {
				h.out.roots[i] = merkleRoot(layer, pad)
			}
		}
	}
	return nil
}

// worker state: one piece buffer, the leaf hashes, the file open now.
type worker struct {
	sha1   hash.Hash
	buf    []byte
	leaves [][32]byte
	open   int
	f      *os.File
}

func (w *worker) file(h *hasher, i int) (*os.File, error) {
	if w.f != nil && w.open == i {
		return w.f, nil
	}
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	f, err := os.Open(h.files[i].Abs)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	w.f, w.open = f, i
	return f, nil
}

func (h *hasher) work(ctx context.Context) error {
	w := &worker{sha1: sha1.New(), buf: make([]byte, h.pieceLength), leaves: make([][32]byte, h.pieceLength/BlockSize)}
	defer func() {
		if w.f != nil {
			w.f.Close()
		}
	}()
	for ctx.Err() == nil {
		p := int(h.next.Add(1) - 1)
		if p >= h.numPieces {
			return nil
		}
		var err error
		if h.version == V1 {
			err = h.pieceV1(w, p)
		} else {
			err = h.pieceAligned(w, p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readFull reads len(b) bytes of file i at off; a short file is ErrChanged.
func (h *hasher) readFull(w *worker, i int, b []byte, off int64) error {
	f, err := w.file(h, i)
	if err != nil {
		return err
	}
	if _, err := f.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("publish: %s: %w (shorter than %d bytes)", h.files[i].Abs, ErrChanged, h.files[i].Length)
		}
		return fmt.Errorf("publish: %w", err)
	}
	h.add(int64(len(b)))
	return nil
}

func (h *hasher) add(n int64) {
	d := h.done.Add(n)
	if h.progress != nil {
		h.progress(d, h.size)
	}
}

// pieceAligned hashes piece p of a v2 or hybrid layout: it lies in one
// file, zero-padded to the piece length.
func (h *hasher) pieceAligned(w *worker, p int) error {
	i := int(h.pieceFile[p])
	f := &h.files[i]
	start := int64(p)*h.pieceLength - f.Offset
	n := min(h.pieceLength, f.Length-start)
	if err := h.readFull(w, i, w.buf[:n], start); err != nil {
		return err
	}
	nb := int((n + BlockSize - 1) / BlockSize)
	if h.version == Hybrid {
		// One pass, block by block, so that SHA-1 and SHA-256 read each
		// block while it is in the CPU's cache. Padding files are zeros; a
		// single file's last piece is short.
		v1len := min(h.pieceLength, h.total-int64(p)*h.pieceLength)
		clear(w.buf[n:v1len])
		w.sha1.Reset()
		for b := range nb {
			lo := int64(b) * BlockSize
			w.sha1.Write(w.buf[lo:min(lo+BlockSize, v1len)])
			w.leaves[b] = sha256.Sum256(w.buf[lo:min(lo+BlockSize, n)])
		}
		if end := int64(nb) * BlockSize; end < v1len {
			w.sha1.Write(w.buf[end:v1len])
		}
		w.sha1.Sum(h.out.v1[p*sha1.Size : p*sha1.Size : (p+1)*sha1.Size])
	} else {
		for b := range nb {
			lo := int64(b) * BlockSize
			w.leaves[b] = sha256.Sum256(w.buf[lo:min(lo+BlockSize, n)])
		}
	}
	if f.Length <= h.pieceLength {
		// The whole file is one piece: its tree is only as wide as its
		// leaves need.
		h.out.roots[i] = merkleRoot(w.leaves[:nb], [32]byte{})
		return nil
	}
	clear(w.leaves[nb:])
	h.out.layers[i][int(start/h.pieceLength)] = merkleRoot(w.leaves, [32]byte{})
	return nil
}

// pieceV1 hashes piece p of the classic layout, which may span files.
func (h *hasher) pieceV1(w *worker, p int) error {
	start := int64(p) * h.pieceLength
	end := min(start+h.pieceLength, h.total)
	// The first file that ends after start.
	lo, hi := 0, len(h.files)
	for lo < hi {
		m := (lo + hi) / 2
		if h.files[m].Offset+h.files[m].Length <= start {
			lo = m + 1
		} else {
			hi = m
		}
	}
	pos := start
	for i := lo; i < len(h.files) && pos < end; i++ {
		f := &h.files[i]
		if f.Length == 0 {
			continue
		}
		from := pos - f.Offset
		n := min(f.Length-from, end-pos)
		if err := h.readFull(w, i, w.buf[pos-start:pos-start+n], from); err != nil {
			return err
		}
		pos += n
	}
	sum := sha1.Sum(w.buf[:end-start])
	copy(h.out.v1[p*sha1.Size:], sum[:])
	return nil
}

// merkleRoot is the root of a tree whose leaves are hs padded with pad to a
// power of two; hs is not changed.
func merkleRoot(hs [][32]byte, pad [32]byte) [32]byte {
	if len(hs) == 0 {
		return [32]byte{}
	}
	width := 1
	for width < len(hs) {
		width *= 2
	}
	level := make([][32]byte, width)
	copy(level, hs)
	for i := len(hs); i < width; i++ {
		level[i] = pad
	}
	var pair [64]byte
	for n := width; n > 1; n /= 2 {
		for i := range n / 2 {
			copy(pair[:32], level[2*i][:])
			copy(pair[32:], level[2*i+1][:])
			level[i] = sha256.Sum256(pair[:])
		}
	}
	return level[0]
}

// padHash is the root of a piece of zero leaves, the filler of a piece
// layer's tree (BEP 52).
func padHash(pieceLength int64) [32]byte {
	return merkleRoot(make([][32]byte, pieceLength/BlockSize), [32]byte{})
}
