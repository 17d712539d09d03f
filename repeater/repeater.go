package repeater

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/types"

	"github.com/btslave/btslave/cache"
	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/repeater/announce"
)

// Options configures a Repeater.
type Options struct {
	Peer     config.Peer
	Cache    config.Cache
	Repeater config.Repeater
	// CacheDir holds cached pieces when [cache] backend is "file".
	CacheDir string
	Logger   *slog.Logger
	// Announce runs the repeater's own BEP 21 announcer for each swarm
	// (the client's built-in one stays off).
	Announce bool
	// Trackers lets the client announce by itself instead (tests).
	Trackers bool
	// Tick is how often each swarm re-plans; default 250ms.
	Tick time.Duration
	// OnLeave is told of every visit that ends (from its own goroutine).
	OnLeave func(Visit)
	// Leave tunes when a swarm is left; zero fields take defaults from
	// [repeater] (min_ratio, visit_time) and DefaultLeavePolicy.
	Leave LeavePolicy
}

// LeavePolicy says when the repeater leaves a swarm by itself.
type LeavePolicy struct {
	Grace   time.Duration // judge no swarm younger than this (default 2m)
	IdleFor time.Duration // "nothing wanted", "no downloaders" or "enough seeds" must last this long (default 2m)
	Window  time.Duration // ratio window (default 10m)
	MinMove int64         // bytes downloaded in the window before the ratio counts (default 4 MiB)
	Sample  time.Duration // how often to sample the swarm (default 5s)
}

func (o *Options) leavePolicy() leavePolicy {
	l := o.Leave
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.Grace, 2*time.Minute)
	def(&l.IdleFor, 2*time.Minute)
	def(&l.Window, 10*time.Minute)
	def(&l.Sample, 5*time.Second)
	if l.MinMove <= 0 {
		l.MinMove = 4 << 20
	}
	o.Leave = l
	return leavePolicy{grace: l.Grace, idleFor: l.IdleFor, window: l.Window, minRatio: o.Repeater.MinRatio,
		minMoved: l.MinMove, visitTime: o.Repeater.VisitTime.Std()}
}

// ErrTooManySwarms is returned by Join when [repeater] max_swarms are
// served already.
var ErrTooManySwarms = errors.New("serving max_swarms swarms already")

// Repeater serves swarms as an upload-only partial seed from the bounded
// piece cache. It owns the BitTorrent client, the wire layer and the cache.
type Repeater struct {
	opts     Options
	everseed atomic.Pointer[func(metainfo.Hash) bool] // SetEverseed
	log      *slog.Logger
	cache    *cache.Cache
	client   *Client

	policy leavePolicy
	upCap  config.Rate // the client's upload cap (0: unlimited)

	mu     sync.Mutex
	swarms map[metainfo.Hash]*Swarm
	wg     sync.WaitGroup
}

func tighter(a, b config.Rate) config.Rate {
	switch {
	case a.Unlimited():
		return b
	case b.Unlimited():
		return a
	}
	return min(a, b)
}

// New starts the cache and the client.
func New(o Options) (*Repeater, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Tick <= 0 {
		o.Tick = 250 * time.Millisecond
	}
	r := &Repeater{opts: o, log: o.Logger.With("component", "repeater"), swarms: map[metainfo.Hash]*Swarm{}}
	r.policy = o.leavePolicy()
	r.opts = o
	// The client only serves the repeater: its caps are the tighter of
	// [peer] and [repeater].
	o.Peer.UploadLimit = tighter(o.Peer.UploadLimit, o.Repeater.UploadLimit)
	o.Peer.DownloadLimit = tighter(o.Peer.DownloadLimit, o.Repeater.DownloadLimit)
	r.upCap = o.Peer.UploadLimit
	dir := ""
	if o.Cache.Backend == "file" {
		dir = o.CacheDir
	}
	var err error
	r.cache, err = cache.New(cache.Options{
		Budget:   int64(o.Cache.Size),
		Dir:      dir,
		Compress: o.Cache.Compress,
		OnEvict:  r.onEvict,
		Logger:   o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("piece cache: %w", err)
	}
	r.client, err = NewClient(ClientOptions{Peer: o.Peer, Storage: r.cache, Logger: o.Logger, Trackers: o.Trackers, Pieces: r,
		CachedZstd: o.Cache.Compress})
	if err != nil {
		r.cache.Close()
		return nil, err
	}
	return r, nil
}

// Client is the repeater's BitTorrent client.
func (r *Repeater) Client() *Client { return r.client }

// Cache is the repeater's piece cache.
func (r *Repeater) Cache() *cache.Cache { return r.cache }

// Close leaves every swarm and stops the client and the cache.
func (r *Repeater) Close() {
	r.mu.Lock()
	swarms := make([]*Swarm, 0, len(r.swarms))
	for _, s := range r.swarms {
		swarms = append(swarms, s)
	}
	r.mu.Unlock()
	// In parallel: each sends "stopped" to its trackers within a bounded
	// time, and shutdown must stay within the daemon's stop budget.
	var wg sync.WaitGroup
	for _, s := range swarms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.stop(LeftShutdown)
		}()
	}
	wg.Wait()
	r.wg.Wait()
	r.client.Close()
	r.cache.Close()
}

// JoinOptions says how a swarm is served.
type JoinOptions struct {
	// Keep: the leave rules (nothing wanted, no downloaders, enough seeds,
	// ratio too low, visit time used) never leave the swarm; only Leave,
	// LeaveFor or Close do. While a rule holds the swarm goes quiet: it
	// stays joined and announced and serves what it holds, but fetches
	// nothing new (Swarm.Quiet says why). The daemon keeps the owner's
	// swarms. Joining a served swarm with Keep makes it kept.
	Keep bool
}

// Join adds a torrent and serves it as a partial seed until Leave or a
// leave rule. With a magnet or bare info hash, the metadata comes from
// peers first.
func (r *Repeater) Join(spec *torrent.TorrentSpec) (*Swarm, error) {
	return r.JoinWith(spec, JoinOptions{})
}

// JoinWith is Join with options. A swarm served already is returned as it
// is (kept, if o.Keep); one being left is waited for and joined afresh.
func (r *Repeater) JoinWith(spec *torrent.TorrentSpec, o JoinOptions) (*Swarm, error) {
	for {
		s, gone, err := r.join(spec, o)
		if gone == nil {
			return s, err
		}
		<-gone
	}
}

// join is one attempt of JoinWith; gone is set, and nothing else, when the
// swarm is being left: wait for it, then try again.
func (r *Repeater) join(spec *torrent.TorrentSpec, o JoinOptions) (_ *Swarm, gone chan struct{}, _ error) {
	t, _, err := r.client.AddTorrentSpec(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("add torrent %s: %w", spec.InfoHash.HexString(), err)
	}
	// A full cache must not stop the torrent: anacrolix's default reaction
	// to a failed chunk write is to disallow all further downloads.
	t.SetOnWriteChunkError(func(err error) {
		if !errors.Is(err, cache.ErrFull) {
			r.log.Warn("write chunk", "infohash", t.InfoHash().HexString(), "err", err)
		}
	})
	ih := t.InfoHash()
	r.mu.Lock()
	if s, ok := r.swarms[ih]; ok {
		r.mu.Unlock()
		if !s.adopt(o.Keep) {
			return nil, s.gone, nil
		}
		return s, nil, nil
	}
	if max := r.opts.Repeater.MaxSwarms; max > 0 && len(r.swarms) >= max {
		r.mu.Unlock()
		t.Drop()
		return nil, nil, fmt.Errorf("%w (%d); leave one first", ErrTooManySwarms, max)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Swarm{r: r, t: t, ih: ih, cancel: cancel, done: make(chan struct{}), gone: make(chan struct{}),
		announcing: make(chan struct{}), pending: map[int]bool{}, joined: time.Now(), keep: o.Keep}
	s.partial.Store(true)
	var ann *announce.Announcer
	if r.opts.Announce && len(spec.Trackers) > 0 {
		ann, err = s.newAnnouncer(spec.Trackers)
		if err != nil {
			r.log.Warn("no announcer", "infohash", ih.HexString(), "err", err)
		}
	}
	r.swarms[ih] = s
	r.mu.Unlock()
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		s.run(ctx)
	}()
	go func() {
		defer r.wg.Done()
		defer close(s.announcing)
		if ann != nil {
			s.ann.Store(ann)
			ann.Run(ctx) // announces until the swarm stops, then "stopped"
		}
	}()
	return s, nil, nil
}

// Leave stops serving a swarm, drops the torrent and frees its cache share.
func (r *Repeater) Leave(ih metainfo.Hash) { r.LeaveFor(ih, LeftByOwner) }

// LeaveFor leaves the swarm for ih, if served, recording reason as the
// visit's; it returns once the swarm is gone and OnLeave has run.
func (r *Repeater) LeaveFor(ih metainfo.Hash, reason string) {
	r.mu.Lock()
	s := r.swarms[ih]
	r.mu.Unlock()
	if s != nil {
		s.stop(reason)
	}
}

// Swarms returns the swarms being served.
func (r *Repeater) Swarms() []*Swarm {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Swarm, 0, len(r.swarms))
	for _, s := range r.swarms {
		out = append(out, s)
	}
	return out
}

// numSwarms is how many swarms are being served: they share the upload
// cap.
func (r *Repeater) numSwarms() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.swarms)
}

// Swarm returns the swarm for ih, or nil.
func (r *Repeater) Swarm(ih metainfo.Hash) *Swarm {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.swarms[ih]
}

// onEvict runs on the cache's eviction goroutine. The cache has dropped
// the data; now cancel the piece so it is not fetched again at once, make
// the client re-read its completion, and tell the peers.
func (r *Repeater) onEvict(ih metainfo.Hash, piece int) {
	t, ok := r.client.Torrent(ih)
	if !ok || t.Info() == nil || piece >= t.NumPieces() {
		return
	}
	s := r.Swarm(ih)
	if s != nil {
		s.forget(piece)
	}
	p := t.Piece(piece)
	p.SetPriority(types.PiecePriorityNone)
	if s == nil || !s.deferSync(piece) { // reader.go: told later while a reader streams
		p.UpdateCompletion()
	}
	r.client.Wire.PieceEvicted(ih, piece)
}

// Has implements wire.Pieces: a piece is servable when the cache holds it.
func (r *Repeater) Has(ih metainfo.Hash, piece int) bool {
	return r.isEverseed(ih) || r.cache.Has(ih, piece)
}

// Requested implements wire.Pieces.
func (r *Repeater) Requested(ih metainfo.Hash, piece int) { r.cache.Touch(ih, piece) }

// PartialSeed implements wire.Pieces.
func (r *Repeater) PartialSeed(ih metainfo.Hash) bool {
	s := r.Swarm(ih)
	return s != nil && s.partial.Load()
}

// ZstdFrame implements wire.Frames: a cached block as the zstd frame the
// cache holds it in (cache.compress), to send as it is.
func (r *Repeater) ZstdFrame(ih metainfo.Hash, piece, begin, length int, dst []byte) ([]byte, bool) {
	return r.cache.ZstdFrame(ih, piece, begin, length, dst)
}

// NumPieces implements wire.Pieces.
func (r *Repeater) NumPieces(ih metainfo.Hash) int {
	if t, ok := r.client.Torrent(ih); ok && t.Info() != nil {
		return t.NumPieces()
	}
	return 0
}

// PieceLength implements wire.PieceLengths.
func (r *Repeater) PieceLength(ih metainfo.Hash, piece int) (lib, v1 int64) {
	return pieceLength(ih, func() *torrent.Torrent {
		t, _ := r.client.Torrent(ih)
		return t
	}, piece)
}
