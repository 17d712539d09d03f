package cache

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"github.com/klauspost/compress/zstd"
)

// staleAfter is how long a partial piece must go without a write before it
// may be evicted.
const staleAfter = 60 * time.Second

// maxOpenFiles bounds the file backend's open piece files; idle ones are
// closed least recently used first.
const maxOpenFiles = 128

// Options configures a Cache.
type Options struct {
	// Budget is the most bytes the cache holds at any instant. Required, > 0.
	Budget int64
	// Dir selects the backend: "" keeps pieces in memory; otherwise each held
	// piece is one file Dir/<n>.piece. The cache owns those files: New
	// removes ones left by an earlier process, Close removes its own.
	Dir string
	// Compress stores completed pieces zstd-compressed when that saves at
	// least 5%. Held bytes count the compressed size.
	Compress bool
	// OnEvict, if set, is called for every piece the cache evicts (by
	// least-recently-useful eviction or Evict), and for a piece anacrolix
	// marked complete although its data was gone. It runs on one goroutine
	// owned by the cache, in eviction order, never under the cache lock, so
	// it may call into the torrent client.
	OnEvict func(ih metainfo.Hash, piece int)
	// Logger receives debug and warning messages; nil means slog.Default().
	Logger *slog.Logger
	// Capacity reports Budget to anacrolix as the storage capacity shared by
	// every torrent of this Cache (storage.TorrentImpl.Capacity). anacrolix
	// then orders piece requests across those torrents by priority and
	// stops requesting once the wanted pieces (priority above None),
	// complete ones included, fill the budget: set a piece's priority to
	// None once it has arrived, or downloading stalls when the cache is
	// full. It also logs failed reads at debug level only. Its torrent
	// Reader retries a failed read forever with capped storage, so leave
	// this off if anything reads through a Reader.
	Capacity bool
}

// Cache is a storage.ClientImpl that holds pieces of any number of torrents
// within one byte budget. See the package documentation.
type Cache struct {
	budget  int64
	dir     string
	log     *slog.Logger
	onEvict func(metainfo.Hash, int)
	enc     *zstd.Encoder
	dec     *zstd.Decoder
	capFn   func() (int64, bool)
	useCap  bool

	mu      sync.Mutex
	cond    sync.Cond
	waiters int
	closed  bool

	torrents map[metainfo.Hash]*torrent

	// Accounting, in bytes: held = stored + freeBytes + scratch <= budget.
	held      int64
	stored    int64 // piece data: memory buffers or files, compressed sizes
	freeBytes int64 // idle memory buffers kept for reuse
	scratch   int64 // decompressed copies, compression buffers, transient
	compBytes int64 // the compression buffers' part of scratch
	comp      compressor

	freeBufs      map[int64][][]byte // idle memory buffers by length
	freeFiles     map[int64][]string // idle piece files by length
	lru           plist
	inflated      plist
	fds           plist
	inflatedBytes int64
	spare         []*held
	pending       []pendingOp
	seq           uint64

	pinned       int64
	pinnedPieces int
	nComplete    int
	nPartial     int

	evictions, hits, misses int64
	compIn, compOut         int64

	events   []event
	evSignal chan struct{}
	stop     chan struct{}
	done     chan struct{}

	now      func() time.Time
	testHook func() // called under the lock before every unlock; tests only
}

type torrent struct {
	c        *Cache
	ih       metainfo.Hash
	pieces   []piece
	open     int
	nHeld    int
	nPinned  int
	stored   int64
	detached bool // removed from c.torrents; its handles are stale

	compMisses int // pieces in a row that did not compress
	compSkips  int
}

// piece is the per-piece state every piece of an open torrent has; it is
// also the storage.PieceImpl handed to anacrolix. Data lives in h.
type piece struct {
	t      *torrent
	h      *held // nil when the piece has no data
	length int64
	index  int
	pinned bool
	lost   bool // a partial piece lost written chunks to eviction
}

// held is the state of a piece that has data.
type held struct {
	p     *piece
	links [numLists]links

	complete    bool
	compressed  bool  // stored bytes are zstd frames, one per FrameBlock
	excl        bool  // being created or converted: other users wait
	inflating   bool  // a reader is decompressing into plain
	compressing bool  // MarkComplete is compressing it
	refs        int32 // users with I/O in flight outside the lock
	version     uint32
	size        int64 // bytes charged to stored
	lastWrite   int64 // unix nanoseconds

	buf    []byte   // memory backend: stored bytes
	frames []uint32 // compressed: where each FrameBlock's frame starts, and the end
	plain  []byte   // decompressed copy of a compressed piece (scratch)
	path   string   // file backend: piece file
	f      *os.File // file backend: open handle or nil
}

type event struct {
	ih    metainfo.Hash
	piece int
}

type pendingOp struct {
	f    *os.File
	path string // removed after f is closed
}

// New returns a Cache. The caller must Close it.
func New(o Options) (*Cache, error) {
	if o.Budget <= 0 {
		return nil, fmt.Errorf("cache budget %d: must be > 0", o.Budget)
	}
	c := &Cache{
		budget:    o.Budget,
		dir:       o.Dir,
		log:       o.Logger,
		onEvict:   o.OnEvict,
		useCap:    o.Capacity,
		torrents:  make(map[metainfo.Hash]*torrent),
		freeBufs:  make(map[int64][][]byte),
		freeFiles: make(map[int64][]string),
		lru:       plist{kind: lruList},
		inflated:  plist{kind: inflatedList},
		fds:       plist{kind: fdList},
		evSignal:  make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		now:       time.Now,
	}
	c.cond.L = &c.mu
	c.capFn = func() (int64, bool) { return c.budget, true }
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.dir != "" {
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return nil, fmt.Errorf("cache dir: %w", err)
		}
		if err := removePieceFiles(c.dir); err != nil {
			return nil, fmt.Errorf("cache dir %q: removing pieces of an earlier run: %w", c.dir, err)
		}
	}
	if o.Compress {
		var err error
		c.enc, c.dec, err = newCodec()
		if err != nil {
			return nil, err
		}
	}
	go c.deliverEvents()
	return c, nil
}

var _ storage.ClientImplCloser = (*Cache)(nil)

// OpenTorrent implements storage.ClientImpl. Opening a torrent whose pieces
// the cache still holds (it was closed but not dropped) finds them again.
func (c *Cache) OpenTorrent(_ context.Context, info *metainfo.Info, ih metainfo.Hash) (storage.TorrentImpl, error) {
	n := info.NumPieces()
	lengths := make([]int64, n)
	for i := range lengths {
		// Piece.Length walks the files for v2 and for the last v1 piece.
		if info.HasV2() || i == n-1 {
			lengths[i] = info.Piece(i).Length()
		} else {
			lengths[i] = info.PieceLength
		}
		if lengths[i] > c.budget {
			return storage.TorrentImpl{}, fmt.Errorf("torrent %s: piece %d length %d > budget %d: raise the cache size",
				ih.HexString(), i, lengths[i], c.budget)
		}
	}
	c.mu.Lock()
	defer c.unlock()
	if c.closed {
		return storage.TorrentImpl{}, fmt.Errorf("torrent %s: %w", ih.HexString(), ErrClosed)
	}
	t := c.torrents[ih]
	if t != nil && len(t.pieces) != n {
		return storage.TorrentImpl{}, fmt.Errorf("torrent %s: opened with %d pieces, held with %d", ih.HexString(), n, len(t.pieces))
	}
	if t != nil && t.open == 0 {
		// anacrolix starts a torrent with no dirty chunks: it writes every
		// chunk of a partial piece again before hashing it, so data lost
		// before is of no concern any more.
		for i := range t.pieces {
			t.pieces[i].lost = false
		}
	}
	if t == nil {
		t = &torrent{c: c, ih: ih, pieces: make([]piece, n)}
		for i := range t.pieces {
			t.pieces[i] = piece{t: t, length: lengths[i], index: i}
		}
		c.torrents[ih] = t
	}
	t.open++
	var once sync.Once
	ti := storage.TorrentImpl{
		PieceWithHash: func(p metainfo.Piece, _ g.Option[[]byte]) storage.PieceImpl { return &t.pieces[p.Index()] },
		Piece:         func(p metainfo.Piece) storage.PieceImpl { return &t.pieces[p.Index()] },
		Close: func() error {
			once.Do(func() { c.closeTorrent(t) })
			return nil
		},
	}
	if c.useCap {
		ti.Capacity = &c.capFn
	}
	return ti, nil
}

func (c *Cache) closeTorrent(t *torrent) {
	c.mu.Lock()
	defer c.unlock()
	t.open--
	c.maybeForget(t)
}

// maybeForget removes a closed torrent that holds and pins nothing.
func (c *Cache) maybeForget(t *torrent) {
	if t.open > 0 || t.nHeld > 0 || t.nPinned > 0 || t.detached {
		return
	}
	t.detached = true
	if c.torrents[t.ih] == t {
		delete(c.torrents, t.ih)
	}
}

// Close implements storage.ClientImplCloser. It waits for I/O in flight,
// releases every piece (the file backend removes its files), and stops the
// OnEvict goroutine: events not yet delivered are discarded.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.unlock()
		return nil
	}
	c.closed = true
	c.wake()
	for _, t := range c.torrents {
		c.dropAll(t)
		t.detached = true
	}
	clear(c.torrents)
	c.dropFree()
	// No compression runs: every piece is idle and none can start.
	c.release(c.compBytes, &c.scratch)
	c.compBytes = 0
	c.comp.in, c.comp.out = nil, nil
	c.events = nil
	c.unlock()
	close(c.stop)
	<-c.done
	var err error
	if c.dir != "" {
		err = removePieceFiles(c.dir)
	}
	if c.enc != nil {
		c.enc.Close()
		c.dec.Close()
	}
	return err
}

// lookup returns the piece, or nil. Lock held.
func (c *Cache) lookup(ih metainfo.Hash, i int) *piece {
	t := c.torrents[ih]
	if t == nil || i < 0 || i >= len(t.pieces) {
		return nil
	}
	return &t.pieces[i]
}

// Has reports whether the piece is complete and held. It does not allocate.
func (c *Cache) Has(ih metainfo.Hash, i int) bool {
	c.mu.Lock()
	p := c.lookup(ih, i)
	ok := p != nil && p.h != nil && p.h.complete && !p.lost
	c.unlock()
	return ok
}

// Held returns the indices of the torrent's complete held pieces, in order.
func (c *Cache) Held(ih metainfo.Hash) []int {
	c.mu.Lock()
	defer c.unlock()
	t := c.torrents[ih]
	if t == nil {
		return nil
	}
	var ret []int
	for i := range t.pieces {
		p := &t.pieces[i]
		if p.h != nil && p.h.complete && !p.lost {
			ret = append(ret, i)
		}
	}
	return ret
}

// Touch marks the piece useful now (a peer requested it or it was served),
// moving it away from eviction.
func (c *Cache) Touch(ih metainfo.Hash, i int) {
	c.mu.Lock()
	if p := c.lookup(ih, i); p != nil && p.h != nil {
		c.touch(p.h)
	}
	c.unlock()
}

// Pin protects the piece from eviction, held or not yet: a piece pinned
// before it is downloaded stays once written. Pinned bytes count the
// pieces' full lengths; Pin returns ErrPinLimit if they would exceed 3/4 of
// the budget. Pinning a pinned piece does nothing.
func (c *Cache) Pin(ih metainfo.Hash, i int) error {
	c.mu.Lock()
	defer c.unlock()
	if c.closed {
		return fmt.Errorf("pin %s piece %d: %w", ih.HexString(), i, ErrClosed)
	}
	p := c.lookup(ih, i)
	if p == nil {
		return fmt.Errorf("pin %s piece %d: %w", ih.HexString(), i, ErrUnknownTorrent)
	}
	if p.pinned {
		return nil
	}
	if limit := c.budget - c.budget/4; c.pinned+p.length > limit {
		return fmt.Errorf("pin %s: pinned %d + %d bytes > %d: %w", p, c.pinned, p.length, limit, ErrPinLimit)
	}
	p.pinned = true
	c.pinned += p.length
	c.pinnedPieces++
	p.t.nPinned++
	if p.h != nil {
		c.lru.remove(p.h)
	}
	return nil
}

// Unpin makes the piece evictable again.
func (c *Cache) Unpin(ih metainfo.Hash, i int) {
	c.mu.Lock()
	defer c.unlock()
	p := c.lookup(ih, i)
	if p == nil || !p.pinned {
		return
	}
	c.unpin(p)
	c.maybeForget(p.t)
}

func (c *Cache) unpin(p *piece) {
	p.pinned = false
	c.pinned -= p.length
	c.pinnedPieces--
	p.t.nPinned--
	if p.h != nil {
		c.lru.pushFront(p.h)
	}
}

// Evict drops the piece's data now and reports whether it did. It does not
// evict a pinned piece or one with I/O in flight. Like an eviction to make
// room, it queues OnEvict; evicting a partial piece makes reads of it fail
// until anacrolix marks it not complete.
func (c *Cache) Evict(ih metainfo.Hash, i int) bool {
	c.mu.Lock()
	defer c.unlock()
	p := c.lookup(ih, i)
	if p == nil || p.h == nil || p.pinned || busy(p.h) {
		return false
	}
	c.evict(p.h, keepAny)
	return true
}

// DropTorrent releases every piece and pin of the torrent, waiting for I/O
// in flight. It does not call OnEvict: drop the torrent from the client
// first ("leave, flush, move on"). A torrent still open in the client stays
// usable and starts empty.
func (c *Cache) DropTorrent(ih metainfo.Hash) {
	c.mu.Lock()
	defer c.unlock()
	t := c.torrents[ih]
	if t == nil {
		return
	}
	c.dropAll(t)
	c.maybeForget(t)
}

// dropAll releases all pieces and pins of t. Lock held; it may wait.
func (c *Cache) dropAll(t *torrent) {
	for i := range t.pieces {
		p := &t.pieces[i]
		for p.h != nil {
			if busy(p.h) {
				c.wait()
				continue
			}
			c.dropHeld(p.h, keepNone)
		}
		p.lost = false
		if p.pinned {
			c.unpin(p)
		}
	}
}

// unlock releases the lock, then closes and removes files queued while it
// was held. Every unlock goes through here.
func (c *Cache) unlock() {
	if c.testHook != nil {
		c.testHook()
	}
	ops := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, op := range ops {
		if op.f != nil {
			if err := op.f.Close(); err != nil {
				c.log.Warn("cache: closing piece file", "err", err)
			}
		}
		if op.path != "" {
			if err := os.Remove(op.path); err != nil && !os.IsNotExist(err) {
				c.log.Warn("cache: removing piece file", "path", op.path, "err", err)
			}
		}
	}
}

// wait releases the lock until another goroutine calls wake. Callers
// re-check their condition in a loop: wait may also return at once, after
// running the queued file operations (which would otherwise fall to
// whichever goroutine unlocks next, perhaps a Has).
func (c *Cache) wait() {
	if len(c.pending) > 0 {
		c.unlock()
		c.mu.Lock()
		return
	}
	if c.testHook != nil {
		c.testHook()
	}
	c.waiters++
	c.cond.Wait()
	c.waiters--
}

func (c *Cache) wake() {
	if c.waiters > 0 {
		c.cond.Broadcast()
	}
}

func (c *Cache) unref(h *held) {
	h.refs--
	if h.refs == 0 {
		c.wake()
	}
}

func busy(h *held) bool {
	return h.refs > 0 || h.excl || h.inflating || h.compressing
}

func (c *Cache) touch(h *held) {
	if !h.p.pinned {
		c.lru.moveFront(h)
	}
}

func (c *Cache) nowNano() int64 { return c.now().UnixNano() }

func (p *piece) String() string {
	return fmt.Sprintf("torrent %s piece %d", p.t.ih.HexString(), p.index)
}

// queueEvent queues OnEvict for p. Lock held.
func (c *Cache) queueEvent(p *piece) {
	if c.onEvict == nil || c.closed {
		return
	}
	c.events = append(c.events, event{p.t.ih, p.index})
	select {
	case c.evSignal <- struct{}{}:
	default:
	}
}

// deliverEvents is the one goroutine that calls OnEvict.
func (c *Cache) deliverEvents() {
	defer close(c.done)
	var batch []event
	for {
		select {
		case <-c.stop:
			return
		case <-c.evSignal:
		}
		c.mu.Lock()
		batch, c.events = c.events, batch[:0]
		c.mu.Unlock()
		for _, e := range batch {
			select {
			case <-c.stop:
				return
			default:
			}
			c.onEvict(e.ih, e.piece)
		}
	}
}
