package publish

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
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

// readahead is how far ahead of the workers the kernel is asked to read
// (posix_fadvise WILLNEED), so that a cold disk streams while they hash.
const readahead = 64 << 20

// hasher hashes the pieces of one layout; its workers claim pieces in
// order from next and read them from files shared by all.
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
	ahead       int // pieces of readahead
	set         *fileSet
	out         hashes
}

func newHasher(files []File, pieceLength, total int64, v Version) *hasher {
	h := &hasher{files: files, pieceLength: pieceLength, total: total, version: v}
	h.numPieces = int((total + pieceLength - 1) / pieceLength)
	h.ahead = int(max(1, readahead/pieceLength))
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
	h.set = newFileSet(h.files, h.pieceLength)
	defer h.set.closeAll()
	for p := range min(h.ahead, h.numPieces) {
		h.prefetch(p)
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

// worker state: one piece buffer and the leaf hashes, reused for every
// piece.
type worker struct {
	sha1   hash.Hash
	buf    []byte
	leaves [][32]byte
}

func (h *hasher) work(ctx context.Context) error {
	w := &worker{sha1: sha1.New(), buf: make([]byte, h.pieceLength), leaves: make([][32]byte, h.pieceLength/BlockSize)}
	for ctx.Err() == nil {
		p := int(h.next.Add(1) - 1)
		if p >= h.numPieces {
			return nil
		}
		if q := p + h.ahead; q < h.numPieces {
			h.prefetch(q)
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

// spans calls f for each part of piece p that lies in a file with data:
// the file, the offset in it, the length and the offset in the piece.
func (h *hasher) spans(p int, f func(i int, off, n, at int64) error) error {
	start := int64(p) * h.pieceLength
	end := min(start+h.pieceLength, h.total)
	if h.version != V1 {
		i := int(h.pieceFile[p])
		fl := &h.files[i]
		return f(i, start-fl.Offset, min(end, fl.Offset+fl.Length)-start, 0)
	}
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
		fl := &h.files[i]
		if fl.Length == 0 {
			continue
		}
		from := pos - fl.Offset
		n := min(fl.Length-from, end-pos)
		if err := f(i, from, n, pos-start); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// prefetch starts the kernel reading piece p.
func (h *hasher) prefetch(p int) {
	h.spans(p, func(i int, off, n, _ int64) error {
		h.set.prefetch(i, off, n)
		return nil
	})
}

// read reads the data of piece p into w.buf and returns how many bytes it
// holds; a short file is ErrChanged.
func (h *hasher) read(w *worker, p int) (int64, error) {
	var got int64
	err := h.spans(p, func(i int, off, n, at int64) error {
		f, err := h.set.get(i)
		if err != nil {
			return err
		}
		if _, err := f.ReadAt(w.buf[at:at+n], off); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("publish: %s: %w (shorter than %d bytes)", h.files[i].Abs, ErrChanged, h.files[i].Length)
			}
			return fmt.Errorf("publish: %w", err)
		}
		h.set.done(i)
		got = at + n
		return nil
	})
	if err == nil {
		h.add(got)
	}
	return got, err
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
	n, err := h.read(w, p)
	if err != nil {
		return err
	}
	i := int(h.pieceFile[p])
	f := &h.files[i]
	start := int64(p)*h.pieceLength - f.Offset
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
		width := 1
		for width < nb {
			width *= 2
		}
		clear(w.leaves[nb:width])
		h.out.roots[i] = rootInPlace(w.leaves[:width])
		return nil
	}
	clear(w.leaves[nb:])
	h.out.layers[i][int(start/h.pieceLength)] = rootInPlace(w.leaves)
	return nil
}

// pieceV1 hashes piece p of the classic layout, which may span files.
func (h *hasher) pieceV1(w *worker, p int) error {
	n, err := h.read(w, p)
	if err != nil {
		return err
	}
	sum := sha1.Sum(w.buf[:n])
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
	return rootInPlace(level)
}

// rootInPlace is the root of the tree whose leaves are level, a power of
// two long; it overwrites level.
func rootInPlace(level [][32]byte) [32]byte {
	var pair [64]byte
	for n := len(level); n > 1; n /= 2 {
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
