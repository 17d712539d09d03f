package cache_test

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/cache"
)

// Ensure that New rejects a missing budget.
func TestNew_ErrBudget(t *testing.T) {
	for _, b := range []int64{0, -1} {
		if _, err := cache.New(cache.Options{Budget: b}); err == nil {
			t.Errorf("budget %d: no error", b)
		}
	}
}

// Ensure that a piece longer than the whole budget is refused at open.
func TestOpenTorrent_PieceLargerThanBudget(t *testing.T) {
	c := newCache(t, cache.Options{Budget: 100 * kib})
	info := newInfo("big", 256*kib, mib)
	if _, err := c.OpenTorrent(t.Context(), info, metainfo.Hash{1}); err == nil {
		t.Fatal("no error")
	}
}

// Ensure that written pieces read back, partial or complete, through
// ReadAt and through the WriterTo path anacrolix hashes with.
func TestWriteReadComplete(t *testing.T) {
	forBackends(t, mib, func(t *testing.T, o cache.Options) {
		c := newCache(t, o)
		tr := openTorrent(t, c, newInfo("a", 64*kib, 3*64*kib+10000))
		want := make([][]byte, tr.info.NumPieces())
		for i := range want {
			want[i] = textData(uint64(i), tr.length(i))
			p := tr.piece(i)
			if got := p.Completion(); got != (storage.Completion{Ok: true}) {
				t.Fatalf("piece %d before write: %+v", i, got)
			}
			head := want[i][:min(16*kib, len(want[i]))]
			if err := write(p, head); err != nil {
				t.Fatal(err)
			}
			// A partial piece reads back (anacrolix hashes it that way).
			b := make([]byte, len(head))
			if _, err := p.ReadAt(b, 0); err != nil || !bytes.Equal(b, head) {
				t.Fatalf("piece %d partial read: %v", i, err)
			}
			if got := p.Completion(); got != (storage.Completion{Ok: true}) {
				t.Fatalf("piece %d partial: %+v", i, got)
			}
			if c.Has(tr.ih, i) {
				t.Fatalf("piece %d: Has while partial", i)
			}
			tr.fill(t, i, want[i])
			if got := p.Completion(); got != (storage.Completion{Ok: true, Complete: true}) {
				t.Fatalf("piece %d complete: %+v", i, got)
			}
			if !c.Has(tr.ih, i) {
				t.Fatalf("piece %d: not Has after MarkComplete", i)
			}
		}
		for i := range want {
			got, err := tr.readAll(i)
			if err != nil || !bytes.Equal(got, want[i]) {
				t.Fatalf("piece %d: read back %d bytes, %v", i, len(got), err)
			}
			// The hash path: storage.Piece.WriteTo.
			sp := storage.Piece{PieceImpl: tr.piece(i)}
			h := sha1.New()
			if _, err := sp.WriteTo(h); err != nil {
				t.Fatal(err)
			}
			if sum := sha1.Sum(want[i]); !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Fatalf("piece %d: WriteTo hash differs", i)
			}
		}
		if got := c.Held(tr.ih); !slices.Equal(got, []int{0, 1, 2, 3}) {
			t.Errorf("Held = %v", got)
		}
		s := c.Stats()
		if s.Pieces != 4 || s.Partial != 0 || s.Hits == 0 || s.Held > s.Budget {
			t.Errorf("stats %+v", s)
		}
		total := tr.info.TotalLength()
		if o.Compress {
			if s.Stored >= total*95/100 || s.Ratio() >= 0.95 {
				t.Errorf("text not compressed: stored %d of %d, ratio %.2f", s.Stored, total, s.Ratio())
			}
		} else if s.Stored != total {
			t.Errorf("stored %d, want %d", s.Stored, total)
		}
		if s.Torrents[tr.ih] != s.Stored {
			t.Errorf("per-torrent %d, stored %d", s.Torrents[tr.ih], s.Stored)
		}
	})
}

// Ensure that the last, shorter piece is reserved and bounded by its own
// length.
func TestLastPieceLength(t *testing.T) {
	forBackends(t, mib, func(t *testing.T, o cache.Options) {
		c := newCache(t, o)
		tr := openTorrent(t, c, newInfo("last", 32*kib, 32*kib+1000))
		p := tr.piece(1)
		if tr.length(1) != 1000 {
			t.Fatalf("last piece length %d", tr.length(1))
		}
		if _, err := p.WriteAt(make([]byte, 1001), 0); err == nil {
			t.Error("write past the last piece: no error")
		}
		if _, err := p.WriteAt([]byte("0123456789"), 0); err != nil {
			t.Fatal(err)
		}
		if s := c.Stats(); s.Stored != 1000 {
			t.Errorf("reservation %d, want 1000", s.Stored)
		}
		data := randData(7, 1000)
		tr.fill(t, 1, data)
		b := make([]byte, 2000)
		n, err := p.ReadAt(b, 0)
		if n != 1000 || err != io.EOF || !bytes.Equal(b[:n], data) {
			t.Errorf("read %d, %v", n, err)
		}
		if n, err := p.ReadAt(b, 1000); n != 0 || err != io.EOF {
			t.Errorf("read at end: %d, %v", n, err)
		}
	})
}

// Ensure that reading a piece that is not held fails, without zeros.
func TestReadAt_NotHeld(t *testing.T) {
	forBackends(t, mib, func(t *testing.T, o cache.Options) {
		c := newCache(t, o)
		tr := openTorrent(t, c, newInfo("nh", 64*kib, 128*kib))
		b := make([]byte, 16*kib)
		if n, err := tr.piece(0).ReadAt(b, 0); n != 0 || !errors.Is(err, cache.ErrNotHeld) {
			t.Errorf("never written: %d, %v", n, err)
		}
		tr.fill(t, 1, textData(1, 64*kib))
		if !c.Evict(tr.ih, 1) {
			t.Fatal("Evict refused")
		}
		if n, err := tr.piece(1).ReadAt(b, 0); n != 0 || !errors.Is(err, cache.ErrNotHeld) {
			t.Errorf("evicted: %d, %v", n, err)
		}
		sp := storage.Piece{PieceImpl: tr.piece(1)}
		if _, err := sp.WriteTo(io.Discard); !errors.Is(err, cache.ErrNotHeld) {
			t.Errorf("WriteTo evicted: %v", err)
		}
		if s := c.Stats(); s.Misses != 3 || s.Evictions != 1 || s.Stored != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

// Ensure that Completion never carries an error, whatever happened.
func TestCompletion_NeverErr(t *testing.T) {
	forBackends(t, 128*kib, func(t *testing.T, o cache.Options) {
		c := newCache(t, o)
		tr := openTorrent(t, c, newInfo("ne", 64*kib, 4*64*kib))
		check := func(when string) {
			t.Helper()
			for i := range 4 {
				if got := tr.piece(i).Completion(); got.Err != nil || !got.Ok {
					t.Errorf("%s: piece %d: %+v", when, i, got)
				}
			}
		}
		check("fresh")
		for i := range 4 {
			tr.fill(t, i, randData(uint64(i), 64*kib)) // evicts as it goes
		}
		check("after eviction")
		tr.piece(3).MarkNotComplete()
		check("after not complete")
		if err := tr.piece(0).MarkComplete(); !errors.Is(err, cache.ErrNotHeld) {
			t.Errorf("MarkComplete of an evicted piece: %v", err)
		}
		check("after bad mark complete")
		c.DropTorrent(tr.ih)
		check("after drop")
		c.Close()
		check("after close")
		if _, err := tr.piece(0).WriteAt([]byte{1}, 0); !errors.Is(err, cache.ErrClosed) {
			t.Errorf("write after close: %v", err)
		}
	})
}

// Ensure that eviction takes the least recently useful piece, that writes,
// reads, touches and completions count as use, and that OnEvict runs
// outside the cache lock, in order.
func TestEvict_LeastRecentlyUseful(t *testing.T) {
	forBackends(t, 4*64*kib, func(t *testing.T, o cache.Options) {
		if o.Compress {
			// Random data stays plain; add room for the compression
			// buffers: output, and input for files.
			o.Budget += compressBuffers / 2
			if o.Dir != "" {
				o.Budget += compressBuffers / 2
			}
		}
		evicted := make(chan int, 16)
		var c *cache.Cache
		o.OnEvict = func(ih metainfo.Hash, piece int) {
			// Would deadlock if called under the cache lock.
			if c.Has(ih, piece) {
				t.Errorf("piece %d still held in OnEvict", piece)
			}
			evicted <- piece
		}
		c = newCache(t, o)
		tr := openTorrent(t, c, newInfo("lru", 64*kib, 8*64*kib))
		for i := range 4 {
			tr.fill(t, i, randData(uint64(i), 64*kib))
		}
		c.Touch(tr.ih, 0)
		tr.fill(t, 4, randData(4, 64*kib)) // evicts 1
		if _, err := tr.readAll(2); err != nil {
			t.Fatal(err)
		}
		tr.fill(t, 5, randData(5, 64*kib)) // evicts 3 (0 touched, 2 read)
		tr.fill(t, 6, randData(6, 64*kib)) // evicts 0
		for _, want := range []int{1, 3, 0} {
			select {
			case got := <-evicted:
				if got != want {
					t.Errorf("evicted %d, want %d", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no OnEvict for %d", want)
			}
		}
		for i, want := range []bool{false, false, true, false, true, true, true, false} {
			if c.Has(tr.ih, i) != want {
				t.Errorf("Has(%d) = %v", i, !want)
			}
		}
		if got := tr.piece(1).Completion(); got != (storage.Completion{Ok: true}) {
			t.Errorf("evicted completion %+v", got)
		}
		if s := c.Stats(); s.Evictions != 3 || s.Held > s.Budget {
			t.Errorf("stats %+v", s)
		}
	})
}

// Ensure that fresh partial pieces are not evicted, and stale ones are
// evicted and then read as lost until anacrolix marks them not complete.
func TestEvict_PartialOnlyWhenStale(t *testing.T) {
	forBackends(t, 2*64*kib, func(t *testing.T, o cache.Options) {
		c := newCache(t, o)
		var now atomic.Int64
		now.Store(time.Now().UnixNano())
		c.SetNow(func() time.Time { return time.Unix(0, now.Load()) })
		tr := openTorrent(t, c, newInfo("stale", 64*kib, 4*64*kib))
		half := randData(1, 32*kib)
		for i := range 2 {
			if err := write(tr.piece(i), half); err != nil {
				t.Fatal(err)
			}
		}
		if err := write(tr.piece(2), half); !errors.Is(err, cache.ErrFull) {
			t.Fatalf("write with only fresh partial pieces: %v", err)
		}
		now.Add(int64(61 * time.Second))
		if err := write(tr.piece(1), half); err != nil { // piece 1 fresh again
			t.Fatal(err)
		}
		if err := write(tr.piece(2), half); err != nil {
			t.Fatalf("write with a stale partial piece: %v", err)
		}
		if held, lost := c.PieceState(tr.ih, 0); held || !lost {
			t.Fatalf("piece 0: held %v lost %v", held, lost)
		}
		// The rest of piece 0 arrives: its first half is gone, so
		// hashing must fail with an I/O error, not read stale bytes.
		now.Add(int64(61 * time.Second))
		p0 := tr.piece(0)
		if _, err := p0.WriteAt(half, 32*kib); err != nil {
			t.Fatal(err)
		}
		if _, err := p0.ReadAt(make([]byte, 10), 0); !errors.Is(err, cache.ErrNotHeld) {
			t.Errorf("read of a lost partial piece: %v", err)
		}
		p0.MarkNotComplete()
		if err := write(p0, randData(3, 64*kib)); err != nil {
			t.Fatal(err)
		}
		if _, err := p0.ReadAt(make([]byte, 10), 0); err != nil {
			t.Errorf("read after MarkNotComplete and rewrite: %v", err)
		}
	})
}

// Ensure that pinned pieces are never evicted, the 3/4 limit holds, and a
// cache full of unevictable pieces fails writes with ErrFull.
func TestPin(t *testing.T) {
	forBackends(t, 4*64*kib, func(t *testing.T, o cache.Options) {
		if o.Compress {
			// The compression buffers shift the arithmetic; FuzzCache
			// covers pins with compression.
			t.Skip()
		}
		c := newCache(t, o)
		tr := openTorrent(t, c, newInfo("pin", 64*kib, 8*64*kib))
		if err := c.Pin(metainfo.Hash{9}, 0); !errors.Is(err, cache.ErrUnknownTorrent) {
			t.Errorf("pin of an unknown torrent: %v", err)
		}
		if err := c.Pin(tr.ih, 99); !errors.Is(err, cache.ErrUnknownTorrent) {
			t.Errorf("pin of an unknown piece: %v", err)
		}
		for i := range 3 {
			if err := c.Pin(tr.ih, i); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Pin(tr.ih, 3); !errors.Is(err, cache.ErrPinLimit) {
			t.Errorf("pin over 3/4: %v", err)
		}
		if err := c.Pin(tr.ih, 0); err != nil {
			t.Errorf("pin twice: %v", err)
		}
		for i := range 4 {
			tr.fill(t, i, randData(uint64(i), 64*kib))
		}
		if c.Evict(tr.ih, 0) {
			t.Error("Evict took a pinned piece")
		}
		tr.fill(t, 4, randData(4, 64*kib)) // evicts 3, the only unpinned
		if c.Has(tr.ih, 3) || !c.Has(tr.ih, 4) {
			t.Fatal("wrong victim")
		}
		if err := write(tr.piece(5), randData(5, 16*kib)); err != nil {
			t.Fatal(err) // evicts 4
		}
		if err := write(tr.piece(6), randData(6, 16*kib)); !errors.Is(err, cache.ErrFull) {
			t.Fatalf("write with everything pinned or fresh: %v", err)
		}
		c.Unpin(tr.ih, 0)
		if err := write(tr.piece(6), randData(6, 16*kib)); err != nil {
			t.Fatalf("after unpin: %v", err)
		}
		if c.Has(tr.ih, 0) || !c.Has(tr.ih, 1) || !c.Has(tr.ih, 2) {
			t.Error("wrong victim after unpin")
		}
		s := c.Stats()
		if s.PinnedPieces != 2 || s.Pinned != 2*64*kib {
			t.Errorf("pinned %d pieces, %d bytes", s.PinnedPieces, s.Pinned)
		}
	})
}

// Ensure that MarkNotComplete frees the piece's bytes.
func TestMarkNotComplete(t *testing.T) {
	forBackends(t, mib, func(t *testing.T, o cache.Options) {
		c := newCache(t, o)
		tr := openTorrent(t, c, newInfo("mnc", 64*kib, 2*64*kib))
		tr.fill(t, 0, textData(1, 64*kib))
		if err := write(tr.piece(1), randData(1, 16*kib)); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := tr.piece(i).MarkNotComplete(); err != nil {
				t.Fatal(err)
			}
			if got := tr.piece(i).Completion(); got != (storage.Completion{Ok: true}) {
				t.Errorf("piece %d: %+v", i, got)
			}
			if _, err := tr.readAll(i); !errors.Is(err, cache.ErrNotHeld) {
				t.Errorf("piece %d read: %v", i, err)
			}
		}
		if s := c.Stats(); s.Stored != 0 || s.Scratch > compressBuffers || s.Evictions != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

// Ensure that an overwrite of a complete piece, compressed or not, keeps
// the rest of it.
func TestOverwriteComplete(t *testing.T) {
	forBackends(t, mib, func(t *testing.T, o cache.Options) {
		c := newCache(t, o)
		tr := openTorrent(t, c, newInfo("ow", 64*kib, 64*kib))
		want := textData(3, 64*kib)
		tr.fill(t, 0, want)
		patch := randData(4, 16*kib)
		if _, err := tr.piece(0).WriteAt(patch, 16*kib); err != nil {
			t.Fatal(err)
		}
		copy(want[16*kib:], patch)
		got, err := tr.readAll(0)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read after overwrite: %v", err)
		}
		if !c.Has(tr.ih, 0) {
			t.Error("overwrite lost completion")
		}
		// Completing again compresses again.
		tr.piece(0).MarkComplete()
		if got, err := tr.readAll(0); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read after recompletion: %v", err)
		}
	})
}

// Ensure that compression is used only when it saves 5%, that its ratio is
// reported, and that decompressed copies stay within the budget.
func TestCompress(t *testing.T) {
	for _, file := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "file"}[file], func(t *testing.T) {
			o := cache.Options{Budget: 8 * 64 * kib, Compress: true}
			if file {
				o.Dir = t.TempDir()
			}
			c := newCache(t, o)
			tr := openTorrent(t, c, newInfo("z", 64*kib, 16*64*kib))
			tr.fill(t, 0, randData(0, 64*kib))
			s := c.Stats()
			if s.Stored != 64*kib || s.CompressedIn != 64*kib || s.CompressedOut != 64*kib {
				t.Errorf("random data: %+v", s)
			}
			want := make(map[int][]byte)
			for i := 1; i < 16; i++ {
				want[i] = textData(uint64(i), 64*kib)
				tr.fill(t, i, want[i])
			}
			s = c.Stats()
			if s.Ratio() > 0.6 {
				t.Errorf("ratio %.2f", s.Ratio())
			}
			if s.Evictions != 0 {
				t.Errorf("%d evictions: 16 compressed pieces should fit in 8 plain", s.Evictions)
			}
			for i := 1; i < 16; i++ {
				got, err := tr.readAll(i)
				if err != nil || !bytes.Equal(got, want[i]) {
					t.Fatalf("piece %d: %v", i, err)
				}
				if s := c.Stats(); s.Scratch == 0 || s.Scratch > s.Budget/16+64*kib+compressBuffers || s.Held > s.Budget {
					t.Fatalf("after reading %d: %+v", i, s)
				}
			}
			t.Logf("ratio %.3f, stats %+v", c.Stats().Ratio(), c.Stats())
		})
	}
}

// Ensure that a torrent closed and opened again finds its pieces, and that
// DropTorrent releases them and its files, and Close everything.
func TestDropTorrentAndClose(t *testing.T) {
	forBackends(t, mib, func(t *testing.T, o cache.Options) {
		c := newCache(t, o)
		a := openTorrent(t, c, newInfo("a", 64*kib, 3*64*kib))
		b := openTorrent(t, c, newInfo("b", 32*kib, 3*32*kib))
		for i := range 3 {
			a.fill(t, i, textData(uint64(i), 64*kib))
			b.fill(t, i, textData(uint64(i), 32*kib))
		}
		c.Pin(a.ih, 1)
		a.ti.Close()
		a2 := openTorrent(t, c, a.info)
		if got := a2.piece(2).Completion(); !got.Complete {
			t.Fatal("reopened torrent lost its pieces")
		}
		c.DropTorrent(a.ih)
		s := c.Stats()
		if _, ok := s.Torrents[a.ih]; ok || s.Torrents[b.ih] == 0 || s.PinnedPieces != 0 || s.Pieces != 3 {
			t.Errorf("after drop: %+v", s)
		}
		if c.Has(a.ih, 0) || !c.Has(b.ih, 0) {
			t.Error("wrong torrent dropped")
		}
		// A torrent still open starts empty and keeps working.
		a2.fill(t, 0, textData(9, 64*kib))
		if !c.Has(a.ih, 0) {
			t.Error("dropped torrent not writable")
		}
		c.DropTorrent(a.ih)
		if o.Dir != "" {
			if n := countFiles(t, o.Dir); n != 3 {
				t.Errorf("%d files, want b's 3", n)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if o.Dir != "" {
			if n := countFiles(t, o.Dir); n != 0 {
				t.Errorf("%d files after Close", n)
			}
		}
		if s := c.Stats(); s.Held != 0 || s.Stored != 0 || len(s.Torrents) != 0 {
			t.Errorf("after close: %+v", s)
		}
	})
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Ensure that New removes piece files of an earlier process and
// nothing else.
func TestNew_RemovesStaleFiles(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "17.piece")
	os.WriteFile(stale, []byte("x"), 0o600)
	for _, name := range []string{"keep", "x.piece", "17.piece.txt"} {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600)
	}
	newCache(t, cache.Options{Budget: mib, Dir: dir})
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale piece file: %v", err)
	}
	if n := countFiles(t, dir); n != 3 {
		t.Errorf("%d other files left, want 3", n)
	}
}

// Ensure that Has does not allocate (the wire layer calls it per request).
func TestHas_NoAlloc(t *testing.T) {
	c := newCache(t, cache.Options{Budget: mib})
	tr := openTorrent(t, c, newInfo("a", 64*kib, 2*64*kib))
	tr.fill(t, 0, randData(0, 64*kib))
	if n := testing.AllocsPerRun(100, func() { c.Has(tr.ih, 0) }); n != 0 {
		t.Errorf("Has allocates %v", n)
	}
	if !c.Has(tr.ih, 0) || c.Has(tr.ih, 1) || c.Has(metainfo.Hash{}, 0) {
		t.Error("Has wrong")
	}
}

// Ensure that steady-state writes and reads of the memory backend do not
// allocate: buffers are recycled through the free list.
func TestMemory_NoAllocSteadyState(t *testing.T) {
	c := newCache(t, cache.Options{Budget: 4 * 256 * kib})
	tr := openTorrent(t, c, newInfo("a", 256*kib, 64*256*kib))
	chunk := randData(1, 16*kib)
	b := make([]byte, 16*kib)
	i := 0
	step := func() {
		p := tr.piece(i % 64)
		for off := int64(0); off < 256*kib; off += 16 * kib {
			p.WriteAt(chunk, off)
		}
		p.MarkComplete()
		p.ReadAt(b, 0)
		i++
	}
	for range 8 {
		step()
	}
	if n := testing.AllocsPerRun(50, step); n > 0 {
		t.Errorf("%v allocations per piece", n)
	}
}

// Ensure that concurrent writers of distinct chunks, readers and evictions
// keep the data and the budget (run with -race).
func TestConcurrentChunks(t *testing.T) {
	forBackends(t, 6*64*kib, func(t *testing.T, o cache.Options) {
		c := newCache(t, o)
		tr := openTorrent(t, c, newInfo("cc", 64*kib, 32*64*kib))
		for i := range 32 {
			data := textData(uint64(i), 64*kib)
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for off := w * 16 * kib; off < 64*kib; off += 64 * kib {
						if _, err := tr.piece(i).WriteAt(data[off:off+16*kib], int64(off)); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Go(func() {
				if i > 0 {
					tr.readAll(i - 1) // may be evicted: any error is fine
					c.Evict(tr.ih, i-2)
				}
			})
			wg.Wait()
			tr.piece(i).MarkComplete()
			got, err := tr.readAll(i)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("piece %d: %v", i, err)
			}
		}
	})
}

// Ensure that the TorrentImpl hands out the same PieceImpl for both
// constructors and that the Capacity option shares one pointer.
func TestTorrentImpl(t *testing.T) {
	c := newCache(t, cache.Options{Budget: mib, Capacity: true})
	a := openTorrent(t, c, newInfo("a", 64*kib, 64*kib))
	b := openTorrent(t, c, newInfo("b", 64*kib, 64*kib))
	if a.ti.Piece(a.info.Piece(0)) != a.ti.PieceWithHash(a.info.Piece(0), g.None[[]byte]()) {
		t.Error("different PieceImpl")
	}
	if a.ti.Capacity == nil || a.ti.Capacity != b.ti.Capacity {
		t.Fatal("capacity not shared")
	}
	if n, ok := (*a.ti.Capacity)(); n != mib || !ok {
		t.Errorf("capacity %d %v", n, ok)
	}
}
