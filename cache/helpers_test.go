package cache_test

import (
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/cache"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	// compressBuffers bounds the compression buffers of 64 KiB pieces
	// (input and output, a little over the piece length each).
	compressBuffers = 2 * (64*kib + 64)
)

// backends lists every backend configuration; tests run on each.
var backends = []struct {
	name     string
	file     bool
	compress bool
}{
	{"memory", false, false},
	{"file", true, false},
	{"memory+zstd", false, true},
	{"file+zstd", true, true},
}

// forBackends runs f once per backend with Options for it.
func forBackends(t *testing.T, budget int64, f func(t *testing.T, o cache.Options)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			o := cache.Options{Budget: budget, Compress: b.compress}
			if b.file {
				o.Dir = t.TempDir()
			}
			f(t, o)
		})
	}
}

// newCache returns a cache that checks its accounting at every unlock and
// is closed at the end of the test.
func newCache(tb testing.TB, o cache.Options) *cache.Cache {
	tb.Helper()
	c, err := cache.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	c.SetCheck(func(err error) { tb.Errorf("invariant: %v", err) })
	tb.Cleanup(func() {
		// A client may leave a MarkComplete (compressing) running after
		// its Close: wait a little for the cache to settle.
		err := c.Check()
		for deadline := time.Now().Add(2 * time.Second); err != nil && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			err = c.Check()
		}
		if err != nil {
			tb.Errorf("invariant at end: %v", err)
		}
		if err := c.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return c
}

// newInfo returns a single-file v1 info; the last piece is shorter when
// total is not a multiple of pieceLen.
func newInfo(name string, pieceLen, total int64) *metainfo.Info {
	n := (total + pieceLen - 1) / pieceLen
	return &metainfo.Info{Name: name, PieceLength: pieceLen, Length: total, Pieces: make([]byte, 20*n)}
}

type ctorrent struct {
	ih   metainfo.Hash
	info *metainfo.Info
	ti   storage.TorrentImpl
}

func openTorrent(tb testing.TB, c *cache.Cache, info *metainfo.Info) *ctorrent {
	tb.Helper()
	ih := metainfo.Hash(sha1.Sum([]byte(info.Name)))
	ti, err := c.OpenTorrent(tb.Context(), info, ih)
	if err != nil {
		tb.Fatal(err)
	}
	return &ctorrent{ih, info, ti}
}

func (t *ctorrent) piece(i int) storage.PieceImpl { return t.ti.Piece(t.info.Piece(i)) }

func (t *ctorrent) length(i int) int64 { return t.info.Piece(i).Length() }

// write writes data in 16 KiB chunks.
func write(p storage.PieceImpl, data []byte) error {
	for off := 0; off < len(data); off += 16 * kib {
		end := min(off+16*kib, len(data))
		n, err := p.WriteAt(data[off:end], int64(off))
		if err != nil {
			return err
		}
		if n != end-off {
			return fmt.Errorf("short write %d", n)
		}
	}
	return nil
}

// fill writes data as piece i and marks it complete.
func (t *ctorrent) fill(tb testing.TB, i int, data []byte) {
	tb.Helper()
	p := t.piece(i)
	if err := write(p, data); err != nil {
		tb.Fatalf("piece %d: %v", i, err)
	}
	if err := p.MarkComplete(); err != nil {
		tb.Fatalf("piece %d: mark complete: %v", i, err)
	}
}

// readAll reads the whole piece.
func (t *ctorrent) readAll(i int) ([]byte, error) {
	b := make([]byte, t.length(i))
	n, err := t.piece(i).ReadAt(b, 0)
	return b[:n], err
}

// textData returns compressible, text-like bytes.
func textData(seed uint64, n int64) []byte {
	words := []string{"the ", "piece ", "swarm ", "peer ", "seed ", "cache ", "budget ", "torrent ", "chunk ", "hash\n"}
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, 0, n+16)
	for int64(len(b)) < n {
		b = append(b, words[r.IntN(len(words))]...)
	}
	return b[:n]
}

// randData returns incompressible bytes.
func randData(seed uint64, n int64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
