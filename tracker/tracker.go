package tracker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	bolt "go.etcd.io/bbolt"
)

// Defaults for the zero values in Options.
const (
	DefaultInterval    = 30 * time.Minute
	DefaultMaxTorrents = 1_000_000
	// DefaultIdle is how long a torrent without peers keeps its
	// downloaded count after its last announce.
	DefaultIdle = 30 * 24 * time.Hour
)

// ErrOptions is wrapped by New's error for invalid Options.
var ErrOptions = errors.New("invalid tracker options")

// Options configures a Tracker. The zero value serves nothing; set
// HTTPListen, UDPListen or both.
type Options struct {
	// HTTPListen and UDPListen are host:port listen addresses; empty
	// turns that protocol off. An empty host is every interface (IPv4 and
	// IPv6), port 0 a free port.
	HTTPListen, UDPListen string
	// PublicURL is the announce URL peers use, shown on /stats; empty
	// means one derived from HTTPListen.
	PublicURL string
	// Whitelist is a file of hex info-hashes, one a line ("#" comments),
	// reread when it changes; empty is open mode: any torrent is tracked.
	Whitelist string
	// Interval is the announce interval sent to clients; peers expire
	// after two of them without an announce.
	Interval time.Duration
	// RatePerIP limits announces and scrapes per source address and
	// second (in bursts of ten seconds' worth); 0 means no limit.
	RatePerIP float64
	// DB, when set, keeps the downloaded counters across restarts (bucket
	// "tracker"/"downloaded", made by the store's migrations).
	DB     *bolt.DB
	Sync   SyncOptions
	Logger *slog.Logger

	// MaxTorrents caps the torrents tracked (an open tracker's memory).
	MaxTorrents int
	// Idle is how long a torrent without peers keeps its downloaded
	// count in memory and on disk.
	Idle time.Duration
	// UDPSockets is how many sockets share the UDP port; default one per
	// CPU, at most 4.
	UDPSockets int
	// WhitelistPoll and SnapshotEvery tune how often the whitelist is
	// checked for changes (default 2s) and the counters written
	// (default 10s).
	WhitelistPoll, SnapshotEvery time.Duration
}

// Tracker is a BitTorrent tracker with its state in memory. Build it with
// New (which binds its listeners), serve with Run.
type Tracker struct {
	o        Options
	log      *slog.Logger
	interval time.Duration
	slot     time.Duration // one epoch: a quarter interval
	id       uint32        // instance id, for sync and the tracker id
	idHex    string
	started  time.Time

	state   *swarms
	white   *whitelist // nil in open mode
	limit   *limiter
	connIDs *connIDs
	stats   *stats
	sync    *syncer // nil without sync

	http *httpServer
	udp  *udpServer

	runOnce sync.Once
}

// New checks o, loads the whitelist and the saved counters and binds the
// listeners. Close them with Run (which returns when its context ends).
func New(o Options) (_ *Tracker, err error) {
	if o.HTTPListen == "" && o.UDPListen == "" {
		return nil, fmt.Errorf("%w: neither HTTPListen nor UDPListen is set", ErrOptions)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Interval, DefaultInterval)
	def(&o.Idle, DefaultIdle)
	def(&o.WhitelistPoll, 2*time.Second)
	def(&o.SnapshotEvery, 10*time.Second)
	if o.MaxTorrents <= 0 {
		o.MaxTorrents = DefaultMaxTorrents
	}
	if o.UDPSockets <= 0 {
		o.UDPSockets = min(runtime.GOMAXPROCS(0), 4)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var idb [4]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("tracker id: %w", err)
	}
	t := &Tracker{
		o:        o,
		log:      o.Logger,
		interval: o.Interval,
		slot:     o.Interval / 4,
		id:       binary.BigEndian.Uint32(idb[:]),
		idHex:    hex.EncodeToString(idb[:]),
		started:  time.Now(),
		state:    newSwarms(o.MaxTorrents),
		limit:    newLimiter(o.RatePerIP),
	}
	t.stats = newStats(t)
	if t.connIDs, err = newConnIDs(); err != nil {
		return nil, err
	}
	if o.Whitelist != "" {
		if t.white, err = loadWhitelist(o.Whitelist, t.log); err != nil {
			return nil, err
		}
	}
	if o.DB != nil {
		if err := t.loadCounters(); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			t.closeListeners(context.Background())
		}
	}()
	if o.HTTPListen != "" {
		if t.http, err = newHTTPServer(t, o.HTTPListen); err != nil {
			return nil, err
		}
	}
	if o.UDPListen != "" {
		if t.udp, err = newUDPServer(t, o.UDPListen, o.UDPSockets); err != nil {
			return nil, err
		}
	}
	if o.Sync.enabled() {
		if t.sync, err = newSyncer(t, o.Sync); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// HTTPAddr is where the HTTP listener is bound; invalid without one.
func (t *Tracker) HTTPAddr() netip.AddrPort {
	if t.http == nil {
		return netip.AddrPort{}
	}
	return t.http.addr()
}

// UDPAddr is where the UDP sockets are bound; invalid without them.
func (t *Tracker) UDPAddr() netip.AddrPort {
	if t.udp == nil {
		return netip.AddrPort{}
	}
	return t.udp.addr()
}

// SyncAddr is where the sync socket is bound; invalid without sync.
func (t *Tracker) SyncAddr() netip.AddrPort {
	if t.sync == nil || t.sync.conn == nil {
		return netip.AddrPort{}
	}
	return t.sync.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// AnnounceURL is Options.PublicURL, or the HTTP (else UDP) listener's
// announce URL, with a loopback host for an unspecified one.
func (t *Tracker) AnnounceURL() string {
	if t.o.PublicURL != "" {
		return t.o.PublicURL
	}
	if t.http != nil {
		return "http://" + dialable(t.http.addr()).String() + "/announce"
	}
	return "udp://" + dialable(t.udp.addr()).String() + "/announce"
}

// dialable replaces an unspecified listen address by loopback.
func dialable(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().IsUnspecified() {
		lo := netip.MustParseAddr("127.0.0.1")
		if ap.Addr().Is6() && !ap.Addr().Is4In6() {
			lo = netip.IPv6Loopback()
		}
		return netip.AddrPortFrom(lo, ap.Port())
	}
	return ap
}

// Run serves until ctx is done, then closes the listeners, lets HTTP
// requests in flight finish (within 2 s) and writes the counters. It may
// be called once.
func (t *Tracker) Run(ctx context.Context) error {
	err := errors.New("tracker: Run called twice")
	t.runOnce.Do(func() { err = t.run(ctx) })
	return err
}

func (t *Tracker) run(ctx context.Context) error {
	t.log.Info("tracker running", "http", t.HTTPAddr(), "udp", t.UDPAddr(), "sync", t.SyncAddr(),
		"announce_url", t.AnnounceURL(), "open", t.white == nil, "interval", t.interval, "id", t.idHex)
	var wg sync.WaitGroup
	httpErr := make(chan error, 1)
	if t.http != nil {
		wg.Go(func() { httpErr <- t.http.serve() })
	}
	if t.udp != nil {
		t.udp.start()
	}
	if t.sync != nil {
		wg.Go(func() { t.sync.run(ctx) })
	}
	wg.Go(func() { t.housekeep(ctx) })

	var err error
	select {
	case <-ctx.Done():
	case err = <-httpErr:
		err = fmt.Errorf("tracker: http: %w", err)
	}
	stop, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	t.closeListeners(stop)
	wg.Wait()
	if t.o.DB != nil {
		if serr := t.snapshot(); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	t.log.Info("tracker stopped")
	return err
}

// Close releases the listeners of a tracker that was never Run (when
// what it was built for failed to start); after Run it does nothing.
func (t *Tracker) Close() {
	t.runOnce.Do(func() { t.closeListeners(context.Background()) })
}

// closeListeners closes every socket.
func (t *Tracker) closeListeners(ctx context.Context) {
	if t.http != nil {
		t.http.shutdown(ctx)
	}
	if t.udp != nil {
		t.udp.close()
	}
	if t.sync != nil {
		t.sync.close()
	}
}

// housekeep rotates the connection-ID secret, expires peers, rereads the
// whitelist, writes the counters and samples the rates, each on its own
// schedule, until ctx is done.
func (t *Tracker) housekeep(ctx context.Context) {
	tick := time.NewTicker(min(t.slot, time.Second, t.o.WhitelistPoll, t.o.SnapshotEvery))
	defer tick.Stop()
	now := time.Now()
	nextRotate, nextSweep := now.Add(connIDRotation), now.Add(t.slot)
	nextPoll, nextSnap, nextRate := now.Add(t.o.WhitelistPoll), now.Add(t.o.SnapshotEvery), now.Add(time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case now = <-tick.C:
		}
		if !now.Before(nextRotate) {
			nextRotate = now.Add(connIDRotation)
			if err := t.connIDs.rotate(); err != nil {
				t.log.Error("rotate connection id secret", "err", err)
			}
		}
		if !now.Before(nextSweep) {
			nextSweep = now.Add(t.slot)
			epoch, minute := t.epochAt(now)
			if n := t.state.sweep(expiry{epoch: epoch, now: minute, idle: int64(t.o.Idle / time.Minute)}); n > 0 {
				t.log.Debug("expired peers", "count", n)
			}
		}
		if t.white != nil && !now.Before(nextPoll) {
			nextPoll = now.Add(t.o.WhitelistPoll)
			t.white.reloadIfChanged()
		}
		if t.o.DB != nil && !now.Before(nextSnap) {
			nextSnap = now.Add(t.o.SnapshotEvery)
			if err := t.snapshot(); err != nil {
				t.log.Error("save downloaded counters", "err", err)
			}
		}
		if !now.Before(nextRate) {
			nextRate = now.Add(time.Second)
			t.stats.sample(now)
		}
	}
}

// epochAt is the epoch (quarter interval, modulo 256) and Unix minute of
// now.
func (t *Tracker) epochAt(now time.Time) (uint8, int64) {
	return uint8(now.UnixNano() / int64(t.slot)), now.Unix() / 60
}

// allowed reports whether ih may be tracked.
func (t *Tracker) allowed(ih metainfo.Hash) bool { return t.white == nil || t.white.has(ih) }

// announced is told of every announce applied, for the peer sync.
func (t *Tracker) announced(a *announceReq, ch change) {
	if t.sync != nil {
		t.sync.tell(a.ih, a.addr, ch.flags, ch.completed)
	}
}

// udpNetwork and tcpNetwork pick the network for a listen address: an
// IPv4 host listens on IPv4 only, an empty one on both.
func udpNetwork(addr string) string { return "udp" + family(addr) }
func tcpNetwork(addr string) string { return "tcp" + family(addr) }

func family(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return ""
	case ip.Is4():
		return "4"
	case ip.IsUnspecified():
		return "" // "[::]:P": both families
	}
	return "6"
}

// String names the tracker for logs.
func (t *Tracker) String() string { return "tracker " + t.idHex + " " + strconv.Quote(t.AnnounceURL()) }

// Scrape is one torrent's figures, as a scrape reply gives them.
type Scrape struct {
	Seeds      int64  `json:"complete"`   // seeds, partial seeds not counted
	Leechers   int64  `json:"incomplete"` // downloaders and partial seeds
	Downloaded uint64 `json:"downloaded"` // peers that announced completion, ever
}

// Scrape returns ih's figures; ok is false for a torrent the tracker does
// not know (never announced, or dropped once idle with no download).
func (t *Tracker) Scrape(ih metainfo.Hash) (s Scrape, ok bool) {
	c, ok := t.state.scrape(ih)
	return Scrape{Seeds: c.seeds, Leechers: c.incomplete(), Downloaded: c.downloaded}, ok
}
