package cache_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/cache"
)

// The model tests drive random operations against a model of what each
// piece must hold, checking the accounting invariants at every unlock of
// the cache lock and the model after every operation.

var (
	seedFlag = flag.Uint64("cache.seed", 0, "seed for TestCacheRandom* (0: time)")
	opsFlag  = flag.Int("cache.ops", 3000, "operations per TestCacheRandom* run")
)

const modelChunk = 4 * kib

// modelTorrents have different piece lengths and shorter last pieces.
var modelTorrents = []*metainfo.Info{
	newInfo("m16", 16*kib, 5*16*kib+3000),
	newInfo("m8", 8*kib, 6*8*kib),
	newInfo("m32", 32*kib, 3*32*kib+100),
	newInfo("m12", 12*kib, 4*12*kib+5000),
}

const modelBudget = 200 * kib

type mpiece struct {
	data     []byte
	valid    []bool // per modelChunk: written in this incarnation
	complete bool
	lost     bool
	pinned   bool
}

func (m *mpiece) reset() {
	clear(m.valid)
	m.complete = false
	m.lost = false
}

func (m *mpiece) written() bool {
	for _, v := range m.valid {
		if v {
			return true
		}
	}
	return false
}

func (m *mpiece) allValid() bool {
	for _, v := range m.valid {
		if !v {
			return false
		}
	}
	return true
}

type mtorrent struct {
	*ctorrent
	pieces []*mpiece
}

func newModelTorrent(tb testing.TB, c *cache.Cache, info *metainfo.Info) *mtorrent {
	mt := &mtorrent{ctorrent: openTorrent(tb, c, info)}
	for i := range info.NumPieces() {
		l := info.Piece(i).Length()
		mt.pieces = append(mt.pieces, &mpiece{
			data:  make([]byte, l),
			valid: make([]bool, (l+modelChunk-1)/modelChunk),
		})
	}
	return mt
}

func (mt *mtorrent) chunk(i, k int) (off, end int64) {
	l := mt.length(i)
	off = int64(k) * modelChunk
	return off, min(off+modelChunk, l)
}

// chunkData returns the bytes of one write: text-like or random.
func chunkData(seed uint64, n int64, text bool) []byte {
	if text {
		return textData(seed, n)
	}
	return randData(seed, n)
}

// modelRun applies ops from data to a cache and checks it against the
// model. data[0] picks the backend; then each op is 4 bytes.
type modelRun struct {
	t        testing.TB
	c        *cache.Cache
	o        cache.Options
	ts       []*mtorrent
	now      atomic.Int64
	events   atomic.Int64
	expected int64 // OnEvict calls owed: MarkComplete of missing data
	pinned   int64
	seq      uint64
}

func runModel(t testing.TB, data []byte) {
	if len(data) == 0 {
		return
	}
	b := backends[int(data[0])%len(backends)]
	data = data[1:]
	r := &modelRun{t: t}
	r.o = cache.Options{Budget: modelBudget, Compress: b.compress}
	if b.file {
		r.o.Dir = t.TempDir()
	}
	r.o.OnEvict = func(ih metainfo.Hash, piece int) { r.events.Add(1) }
	c, err := cache.New(r.o)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	defer c.Close()
	var bad atomic.Pointer[error]
	c.SetCheck(func(err error) { bad.CompareAndSwap(nil, &err) })
	r.now.Store(time.Now().UnixNano())
	c.SetNow(func() time.Time { return time.Unix(0, r.now.Load()) })
	for _, info := range modelTorrents {
		r.ts = append(r.ts, newModelTorrent(t, c, info))
	}
	for step := 0; len(data) >= 4; step++ {
		op := data[:4]
		data = data[4:]
		desc := r.apply(op)
		if e := bad.Load(); e != nil {
			t.Fatalf("step %d %s: invariant: %v", step, desc, *e)
		}
		if err := c.Check(); err != nil {
			t.Fatalf("step %d %s: %v", step, desc, err)
		}
		if err := r.sync(); err != nil {
			t.Fatalf("step %d %s: %v", step, desc, err)
		}
	}
	// Every eviction is reported, once.
	want := c.Stats().Evictions + r.expected
	deadline := time.Now().Add(5 * time.Second)
	for r.events.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := r.events.Load(); got != want {
		t.Fatalf("%d OnEvict calls, want %d", got, want)
	}
}

// apply runs one operation and checks its own outcome.
func (r *modelRun) apply(op []byte) string {
	t, c := r.t, r.c
	mt := r.ts[int(op[1])%len(r.ts)]
	i := int(op[2]) % len(mt.pieces)
	m := mt.pieces[i]
	arg := op[3]
	p := mt.piece(i)
	held, lost := c.PieceState(mt.ih, i)
	r.seq++
	switch kind := op[0] % 16; kind {
	case 0, 1, 2: // write a chunk
		k := int(arg) % len(m.valid)
		off, end := mt.chunk(i, k)
		b := chunkData(r.seq, end-off, arg&0x80 != 0)
		n, err := p.WriteAt(b, off)
		desc := fmt.Sprintf("write %s/%d chunk %d", mt.info.Name, i, k)
		if errors.Is(err, cache.ErrFull) {
			if c.Reclaimable(mt.ih, i) {
				t.Fatalf("%s: ErrFull with something reclaimable", desc)
			}
			return desc
		}
		if err != nil || n != len(b) {
			t.Fatalf("%s: %d, %v", desc, n, err)
		}
		copy(m.data[off:], b)
		m.valid[k] = true
		return desc
	case 3: // write the whole piece
		b := chunkData(r.seq, mt.length(i), arg&0x80 != 0)
		err := write(p, b)
		desc := fmt.Sprintf("write %s/%d", mt.info.Name, i)
		if errors.Is(err, cache.ErrFull) {
			// Chunks before the failure were written; the model cannot
			// tell which: forget the piece (data is rechecked only for
			// valid chunks).
			if c.Reclaimable(mt.ih, i) {
				t.Fatalf("%s: ErrFull with something reclaimable", desc)
			}
			clear(m.valid)
			return desc
		}
		if err != nil {
			t.Fatalf("%s: %v", desc, err)
		}
		copy(m.data, b)
		for k := range m.valid {
			m.valid[k] = true
		}
		return desc
	case 4, 5: // read a chunk
		k := int(arg) % len(m.valid)
		off, end := mt.chunk(i, k)
		b := make([]byte, end-off)
		n, err := p.ReadAt(b, off)
		desc := fmt.Sprintf("read %s/%d chunk %d", mt.info.Name, i, k)
		r.checkRead(desc, mt.ih, i, held, lost, err)
		if err == nil {
			if n != len(b) {
				t.Fatalf("%s: short read %d", desc, n)
			}
			if m.valid[k] && !bytes.Equal(b, m.data[off:end]) {
				t.Fatalf("%s: data differs", desc)
			}
		} else if n != 0 {
			t.Fatalf("%s: %d bytes with %v", desc, n, err)
		}
		return desc
	case 6: // read the whole piece through the hash path
		var buf bytes.Buffer
		_, err := storage.Piece{PieceImpl: p}.WriteTo(&buf)
		desc := fmt.Sprintf("hash-read %s/%d", mt.info.Name, i)
		r.checkRead(desc, mt.ih, i, held, lost, err)
		if err == nil {
			got := buf.Bytes()
			for k, v := range m.valid {
				off, end := mt.chunk(i, k)
				if v && !bytes.Equal(got[off:end], m.data[off:end]) {
					t.Fatalf("%s: chunk %d differs", desc, k)
				}
			}
		}
		return desc
	case 7: // mark complete
		err := p.MarkComplete()
		desc := fmt.Sprintf("complete %s/%d", mt.info.Name, i)
		switch {
		case !held || lost:
			if !errors.Is(err, cache.ErrNotHeld) {
				t.Fatalf("%s: not held, got %v", desc, err)
			}
			r.expected++
		case err != nil:
			t.Fatalf("%s: %v", desc, err)
		default:
			m.complete = true
		}
		return desc
	case 8: // hash failure
		if err := p.MarkNotComplete(); err != nil {
			t.Fatalf("not complete: %v", err)
		}
		m.reset()
		return fmt.Sprintf("not-complete %s/%d", mt.info.Name, i)
	case 9: // pin
		err := c.Pin(mt.ih, i)
		desc := fmt.Sprintf("pin %s/%d", mt.info.Name, i)
		l := mt.length(i)
		switch {
		case m.pinned:
			if err != nil {
				t.Fatalf("%s again: %v", desc, err)
			}
		case r.pinned+l > modelBudget-modelBudget/4:
			if !errors.Is(err, cache.ErrPinLimit) {
				t.Fatalf("%s over the limit: %v", desc, err)
			}
		case err != nil:
			t.Fatalf("%s: %v", desc, err)
		default:
			m.pinned = true
			r.pinned += l
		}
		return desc
	case 10: // unpin
		c.Unpin(mt.ih, i)
		if m.pinned {
			m.pinned = false
			r.pinned -= mt.length(i)
		}
		return fmt.Sprintf("unpin %s/%d", mt.info.Name, i)
	case 11: // explicit eviction
		ok := c.Evict(mt.ih, i)
		desc := fmt.Sprintf("evict %s/%d", mt.info.Name, i)
		if ok != (held && !m.pinned) {
			t.Fatalf("%s: %v, held %v pinned %v", desc, ok, held, m.pinned)
		}
		return desc
	case 12: // touch
		c.Touch(mt.ih, i)
		return fmt.Sprintf("touch %s/%d", mt.info.Name, i)
	case 13: // drop the torrent
		if arg%4 != 0 {
			r.now.Add(int64(61 * time.Second)) // make partial pieces stale
			return "clock +61s"
		}
		c.DropTorrent(mt.ih)
		for _, m := range mt.pieces {
			m.reset()
			if m.pinned {
				m.pinned = false
			}
		}
		r.pinned = 0
		for _, o := range r.ts {
			for j, m := range o.pieces {
				if m.pinned {
					r.pinned += o.length(j)
				}
			}
		}
		return fmt.Sprintf("drop %s", mt.info.Name)
	case 14: // close and reopen the torrent in the client
		if err := mt.ti.Close(); err != nil {
			t.Fatal(err)
		}
		ti, err := c.OpenTorrent(t.Context(), mt.info, mt.ih)
		if err != nil {
			t.Fatal(err)
		}
		mt.ti = ti
		for _, m := range mt.pieces {
			m.lost = false // a new client torrent rewrites partial pieces
		}
		return fmt.Sprintf("reopen %s", mt.info.Name)
	default: // queries
		if !c.Has(mt.ih, i) && m.complete && held && !lost {
			t.Fatalf("Has %s/%d false", mt.info.Name, i)
		}
		c.Held(mt.ih)
		c.Stats()
		return "query"
	}
}

func (r *modelRun) checkRead(desc string, ih metainfo.Hash, i int, held, lost bool, err error) {
	switch {
	case !held || lost:
		if !errors.Is(err, cache.ErrNotHeld) {
			r.t.Fatalf("%s: not held (lost %v), got %v", desc, lost, err)
		}
	case errors.Is(err, cache.ErrFull):
		// Only a compressed piece needs room to be read.
		if !r.o.Compress || r.c.Reclaimable(ih, i) {
			r.t.Fatalf("%s: %v", desc, err)
		}
	case err != nil:
		r.t.Fatalf("%s: %v", desc, err)
	}
}

// sync folds cache decisions (evictions) into the model and checks what
// the cache reports against it.
func (r *modelRun) sync() error {
	for _, mt := range r.ts {
		for i, m := range mt.pieces {
			held, lost := r.c.PieceState(mt.ih, i)
			if !held {
				if m.pinned && (m.written() || m.complete) {
					return fmt.Errorf("%s/%d: pinned piece lost its data", mt.info.Name, i)
				}
				// Evicted: forget this incarnation's data.
				clear(m.valid)
				m.complete = false
			}
			if lost && !m.lost {
				if m.pinned {
					return fmt.Errorf("%s/%d: pinned piece lost", mt.info.Name, i)
				}
				m.lost = true
			}
			if !lost && m.lost {
				return fmt.Errorf("%s/%d: lost flag cleared by the cache", mt.info.Name, i)
			}
			want := storage.Completion{Ok: true, Complete: held && !lost && m.complete}
			if got := mt.piece(i).Completion(); got != want {
				return fmt.Errorf("%s/%d: completion %+v, want %+v", mt.info.Name, i, got, want)
			}
			if r.c.Has(mt.ih, i) != want.Complete {
				return fmt.Errorf("%s/%d: Has %v", mt.info.Name, i, !want.Complete)
			}
		}
	}
	s := r.c.Stats()
	if s.Held > s.Budget || s.Pinned != r.pinned {
		return fmt.Errorf("stats %+v, model pinned %d", s, r.pinned)
	}
	return nil
}

// FuzzCache checks random operation sequences against the model. Run it
// with go test -fuzz FuzzCache ./cache/.
func FuzzCache(f *testing.F) {
	for be := range backends {
		// Fill, complete, read, evict, pin across torrents.
		seed := []byte{byte(be)}
		for i := range 40 {
			seed = append(seed, 3, byte(i%4), byte(i), byte(i*37))
			seed = append(seed, 7, byte(i%4), byte(i), 0)
			seed = append(seed, 6, byte(i%4), byte(i/2), 0)
			if i%5 == 0 {
				seed = append(seed, 9, byte(i%4), byte(i), 0)
				seed = append(seed, 13, byte(i%4), 0, 1)
			}
		}
		f.Add(seed)
	}
	f.Add([]byte{2, 0, 0, 0, 1, 7, 0, 0, 0, 0, 0, 0, 3, 4, 0, 0, 5, 11, 0, 0, 0, 4, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4*4000 {
			data = data[:4*4000]
		}
		runModel(t, data)
	})
}

func randomSeed(t *testing.T) uint64 {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -cache.seed=%d)", seed, seed)
	return seed
}

// TestCacheRandom runs seeded random sequences through the model on every
// backend.
func TestCacheRandom(t *testing.T) {
	seed := randomSeed(t)
	for be, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(be)))
			data := make([]byte, 1+4**opsFlag)
			data[0] = byte(be)
			for i := 1; i < len(data); i += 4 {
				// Favour writes and completions so pieces fill up.
				op := byte(rng.IntN(16))
				if rng.IntN(3) == 0 {
					op = []byte{3, 3, 7, 7, 6}[rng.IntN(5)]
				}
				data[i] = op
				data[i+1] = byte(rng.Uint32())
				data[i+2] = byte(rng.Uint32())
				data[i+3] = byte(rng.Uint32())
			}
			runModel(t, data)
		})
	}
}

// TestCacheRandomConcurrent runs goroutines that each own one torrent and
// drive it as anacrolix would (write chunks, complete, read, reset on loss),
// while also evicting, pinning and touching the others' pieces. Accounting
// invariants are checked at every unlock; reads must match what the owner
// wrote.
func TestCacheRandomConcurrent(t *testing.T) {
	seed := randomSeed(t)
	for be, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			o := cache.Options{Budget: modelBudget, Compress: b.compress}
			if b.file {
				o.Dir = t.TempDir()
			}
			var events atomic.Int64
			o.OnEvict = func(metainfo.Hash, int) { events.Add(1) }
			c := newCache(t, o)
			var now atomic.Int64
			now.Store(time.Now().UnixNano())
			c.SetNow(func() time.Time { return time.Unix(0, now.Load()) })
			ts := make([]*mtorrent, len(modelTorrents))
			for k, info := range modelTorrents {
				ts[k] = newModelTorrent(t, c, info)
			}
			var wg sync.WaitGroup
			ops := *opsFlag
			if testing.Short() {
				ops /= 4
			}
			for k, mt := range ts {
				rng := rand.New(rand.NewPCG(seed, uint64(be*16+k)))
				wg.Go(func() { ownerLoop(t, c, mt, ts, rng, &now, ops) })
			}
			wg.Wait()
			if s := c.Stats(); s.Held > s.Budget {
				t.Errorf("stats %+v", s)
			}
			t.Logf("stats %+v, %d OnEvict", c.Stats(), events.Load())
		})
	}
}

func ownerLoop(t *testing.T, c *cache.Cache, mt *mtorrent, all []*mtorrent, rng *rand.Rand, now *atomic.Int64, ops int) {
	fail := func(format string, args ...any) {
		t.Errorf("%s: "+format, append([]any{mt.info.Name}, args...)...)
	}
	reset := func(i int) {
		mt.piece(i).MarkNotComplete()
		mt.pieces[i].reset()
	}
	var seq uint64
	for range ops {
		if t.Failed() {
			return
		}
		seq++
		i := rng.IntN(len(mt.pieces))
		m := mt.pieces[i]
		p := mt.piece(i)
		switch rng.IntN(12) {
		case 0, 1, 2, 3: // write a missing chunk of a partial piece
			if m.complete {
				continue
			}
			k := rng.IntN(len(m.valid))
			off, end := mt.chunk(i, k)
			b := chunkData(seq, end-off, rng.IntN(2) == 0)
			if _, err := p.WriteAt(b, off); err != nil {
				if !errors.Is(err, cache.ErrFull) {
					fail("write: %v", err)
				}
				continue
			}
			copy(m.data[off:], b)
			m.valid[k] = true
		case 4: // complete a fully written piece
			if m.complete || !m.allValid() {
				continue
			}
			if err := p.MarkComplete(); err != nil {
				if !errors.Is(err, cache.ErrNotHeld) {
					fail("complete: %v", err)
				}
				reset(i)
				continue
			}
			m.complete = true
		case 5, 6: // read a chunk
			k := rng.IntN(len(m.valid))
			off, end := mt.chunk(i, k)
			b := make([]byte, end-off)
			_, err := p.ReadAt(b, off)
			switch {
			case errors.Is(err, cache.ErrNotHeld):
				reset(i) // as anacrolix would after UpdateCompletion
			case errors.Is(err, cache.ErrFull):
			case err != nil:
				fail("read: %v", err)
			case m.valid[k] && !bytes.Equal(b, m.data[off:end]):
				fail("piece %d chunk %d: data differs", i, k)
			}
		case 7: // hash-read
			var buf bytes.Buffer
			_, err := storage.Piece{PieceImpl: p}.WriteTo(&buf)
			if err != nil {
				if errors.Is(err, cache.ErrNotHeld) {
					reset(i)
				} else if !errors.Is(err, cache.ErrFull) {
					fail("hash-read: %v", err)
				}
				continue
			}
			for k, v := range m.valid {
				off, end := mt.chunk(i, k)
				if v && !bytes.Equal(buf.Bytes()[off:end], m.data[off:end]) {
					fail("piece %d chunk %d: hash-read differs", i, k)
				}
			}
		case 8: // hash failure
			if rng.IntN(4) == 0 {
				reset(i)
			}
		case 9: // someone else's piece: evict, touch, pin, unpin
			o := all[rng.IntN(len(all))]
			j := rng.IntN(len(o.pieces))
			switch rng.IntN(4) {
			case 0:
				c.Evict(o.ih, j)
			case 1:
				c.Touch(o.ih, j)
			case 2:
				if err := c.Pin(o.ih, j); err != nil && !errors.Is(err, cache.ErrPinLimit) {
					fail("pin: %v", err)
				}
			case 3:
				c.Unpin(o.ih, j)
			}
		case 10:
			if rng.IntN(8) == 0 {
				now.Add(int64(61 * time.Second))
			}
			c.Has(mt.ih, i)
			if got := p.Completion(); got.Err != nil || !got.Ok {
				fail("completion %+v", got)
			}
		case 11:
			if rng.IntN(50) == 0 {
				c.DropTorrent(mt.ih)
				for _, m := range mt.pieces {
					m.reset()
				}
			}
		}
	}
}
