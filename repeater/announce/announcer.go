package announce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker/shared"
)

// maxSecs bounds tracker-given seconds before they become a Duration.
const maxSecs = 1 << 31

// DefaultEarlyAnnounces ask the tracker again 1, 2 and 4 minutes after
// joining, then at its interval (see Options.EarlyAnnounces).
var DefaultEarlyAnnounces = []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute}

// Defaults for the zero values in Options.
const (
	DefaultMinInterval     = 30 * time.Second
	DefaultMaxInterval     = time.Hour
	DefaultInterval        = 30 * time.Minute
	DefaultBackoffMin      = 15 * time.Second
	DefaultBackoffMax      = 30 * time.Minute
	DefaultAnnounceTimeout = 15 * time.Second
	DefaultStopTimeout     = 3 * time.Second
	DefaultNumWant         = 50
	DefaultUserAgent       = "btslave"
)

// Errors returned by New and Run.
var (
	// ErrOptions is wrapped by New's error for invalid Options.
	ErrOptions = errors.New("invalid announce options")
	// ErrRunning is returned by Run when the Announcer already ran.
	ErrRunning = errors.New("announcer already running or done")
)

// Options configures an Announcer. InfoHash, Port and Stats are required.
type Options struct {
	InfoHash metainfo.Hash
	PeerID   [20]byte
	// Port is the TCP port peers reach the repeater on.
	Port int
	// Trackers is the announce-list (BEP 12); every URL of every tier is
	// announced to independently. Duplicates and schemes other than http,
	// https and udp are dropped.
	Trackers [][]string
	// Stats returns the honest totals for this torrent; left is the bytes
	// still missing (> 0 for a partial seed). Called before every announce.
	Stats func() (uploaded, downloaded, left int64)
	// PartialSeed reports whether the torrent is a partial seed now (BEP
	// 21). nil means never.
	PartialSeed func() bool
	// OnPeers receives the peers of each successful reply (the repeater's
	// own address removed). It is called from the tracker's goroutine,
	// possibly from several at once, and should return quickly.
	OnPeers func([]netip.AddrPort)
	// LocalIP, when valid, is the source address of every announce (HTTP
	// and UDP), so that trackers list the address peers reach us on.
	LocalIP netip.Addr
	// HTTPClient replaces the default client (which dials from LocalIP, uses
	// no proxy and times out). It should not follow a proxy.
	HTTPClient *http.Client
	Logger     *slog.Logger
	UserAgent  string
	NumWant    int
	// Key is the BEP 3 "key"; 0 picks a random one.
	Key int32

	// MinInterval and MaxInterval clamp the tracker's interval (and min
	// interval); DefaultInterval applies when the reply has none.
	MinInterval, MaxInterval, DefaultInterval time.Duration
	// EarlyAnnounces are the waits before the first regular announces
	// after joining, when they are shorter than the tracker's interval
	// (but never under its min interval nor MinInterval): a young swarm's
	// peers arrive after us, and the tracker tells of them only when we
	// ask. nil picks DefaultEarlyAnnounces; an empty slice turns it off.
	EarlyAnnounces []time.Duration
	// After a failed announce the tracker waits BackoffMin, doubling per
	// consecutive failure up to BackoffMax.
	BackoffMin, BackoffMax time.Duration
	// AnnounceTimeout bounds one announce; StopTimeout bounds all the
	// stopped announces at shutdown together.
	AnnounceTimeout, StopTimeout time.Duration
}

// TrackerStatus is one tracker's state, as Status reports it.
type TrackerStatus struct {
	URL  string
	Tier int
	// LastAnnounce is when the last announce finished (successfully or
	// not), LastEvent the event it carried ("", started, paused, stopped).
	LastAnnounce time.Time
	LastEvent    string
	LastSuccess  time.Time
	// LastError is the last announce's error; "" after a success.
	LastError string
	Failures  int // consecutive failures
	// NextAnnounce is when the next periodic announce is due.
	NextAnnounce time.Time
	// Seeders and Leechers are the last reply's complete/incomplete; -1
	// when unknown.
	Seeders, Leechers int64
	Peers             int // peers in the last reply
	Warning           string
	// PausedRefused is true once the tracker rejected event=paused.
	PausedRefused bool
}

// Announcer announces one torrent to its trackers. Build it with New, run
// it with Run.
type Announcer struct {
	o        Options
	hc       *http.Client
	ownHC    bool
	log      *slog.Logger
	key      int32
	trackers []*tracker
	self     netip.AddrPort

	mu            sync.Mutex
	ran           bool
	pausedRefused map[string]bool // by tracker URL
}

type tracker struct {
	url  string
	u    *url.URL
	tier int
	udp  bool

	// Owned by the tracker's goroutine (and by Run's shutdown after it).
	started   bool // a started announce succeeded
	attempted bool // some announce was sent
	failures  int
	successes int // regular announces that succeeded
	udpState  udpState

	st TrackerStatus // guarded by Announcer.mu
}

// New checks o, fills in defaults and returns an Announcer ready to Run.
func New(o Options) (*Announcer, error) {
	if o.Stats == nil {
		return nil, fmt.Errorf("%w: Stats is required", ErrOptions)
	}
	if o.Port <= 0 || o.Port > 65535 {
		return nil, fmt.Errorf("%w: port %d, need 1..65535", ErrOptions, o.Port)
	}
	if o.InfoHash == (metainfo.Hash{}) {
		return nil, fmt.Errorf("%w: InfoHash is zero", ErrOptions)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.MinInterval, DefaultMinInterval)
	def(&o.MaxInterval, DefaultMaxInterval)
	def(&o.DefaultInterval, DefaultInterval)
	if o.EarlyAnnounces == nil {
		o.EarlyAnnounces = DefaultEarlyAnnounces
	}
	def(&o.BackoffMin, DefaultBackoffMin)
	def(&o.BackoffMax, DefaultBackoffMax)
	def(&o.AnnounceTimeout, DefaultAnnounceTimeout)
	def(&o.StopTimeout, DefaultStopTimeout)
	if o.MaxInterval < o.MinInterval {
		return nil, fmt.Errorf("%w: MaxInterval %v < MinInterval %v", ErrOptions, o.MaxInterval, o.MinInterval)
	}
	if o.NumWant <= 0 {
		o.NumWant = DefaultNumWant
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Announcer{o: o, log: o.Logger, key: o.Key, pausedRefused: map[string]bool{}, hc: o.HTTPClient}
	if a.key == 0 {
		a.key = rand.Int32()
	}
	if a.hc == nil {
		a.hc, a.ownHC = NewHTTPClient(o.LocalIP, 1, 15*time.Second), true
	}
	if o.LocalIP.IsValid() {
		a.self = netip.AddrPortFrom(o.LocalIP.Unmap(), uint16(o.Port))
	}
	seen := map[string]bool{}
	for tier, urls := range o.Trackers {
		for _, s := range urls {
			if seen[s] {
				continue
			}
			seen[s] = true
			u, err := url.Parse(s)
			if err != nil || u.Host == "" {
				a.log.Warn("skipping tracker: bad URL", "tracker", s, "err", err)
				continue
			}
			switch u.Scheme {
			case "http", "https", "udp":
			default:
				a.log.Warn("skipping tracker: unsupported scheme", "tracker", s)
				continue
			}
			t := &tracker{url: s, u: u, tier: tier, udp: u.Scheme == "udp"}
			t.st = TrackerStatus{URL: s, Tier: tier, Seeders: -1, Leechers: -1}
			a.trackers = append(a.trackers, t)
		}
	}
	return a, nil
}

// Run announces to every tracker until ctx is done, then sends stopped to
// every tracker it announced to, all within StopTimeout, and returns. It
// may be called once.
func (a *Announcer) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.ran {
		a.mu.Unlock()
		return ErrRunning
	}
	a.ran = true
	a.mu.Unlock()
	if a.ownHC {
		defer a.hc.CloseIdleConnections()
	}

	var wg sync.WaitGroup
	for _, t := range a.trackers {
		wg.Go(func() { a.loop(ctx, t) })
	}
	wg.Wait()

	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.o.StopTimeout)
	defer cancel()
	for _, t := range a.trackers {
		if !t.attempted {
			continue
		}
		wg.Go(func() {
			r, _, err := a.announce(stopCtx, t, evStopped)
			if err != nil {
				a.log.Info("stopped announce failed", "tracker", t.url, "err", err)
			}
			a.record(t, evStopped, r, err, time.Time{})
		})
	}
	wg.Wait()
	return nil
}

// loop announces to one tracker until ctx is done.
func (a *Announcer) loop(ctx context.Context, t *tracker) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		ev := evNone
		if !t.started {
			ev = evStarted
		}
		r, sent, err := a.announce(ctx, t, ev)
		if err != nil && ctx.Err() != nil {
			return // cancelled mid-announce; Run sends stopped
		}
		var wait time.Duration
		if err != nil {
			t.failures++
			wait = a.backoff(t.failures)
			a.log.Info("announce failed", "tracker", t.url, "event", sent.String(), "failures", t.failures, "retry_in", wait, "err", err)
		} else {
			t.failures = 0
			t.started = true
			wait = a.interval(r)
			if t.successes < len(a.o.EarlyAnnounces) {
				early := max(a.o.EarlyAnnounces[t.successes], time.Duration(min(r.MinInterval, maxSecs))*time.Second, a.o.MinInterval)
				wait = min(wait, early)
			}
			t.successes++
			a.deliver(r.Peers)
			a.log.Debug("announced", "tracker", t.url, "event", sent.String(), "seeders", r.Seeders, "leechers", r.Leechers, "peers", len(r.Peers), "next", wait)
		}
		a.record(t, sent, r, err, time.Now().Add(wait))
		timer.Reset(wait)
	}
}

// announce sends ev to t, replacing a none event with paused while the
// torrent is a partial seed and t is an HTTP tracker that has not refused
// paused. If the tracker refuses an announce that carried paused (failure
// reason or HTTP 400), it is retried at once without paused; when that
// succeeds the tracker is remembered as refusing paused. It returns the
// event actually sent last. Each attempt gets AnnounceTimeout within ctx.
func (a *Announcer) announce(ctx context.Context, t *tracker, ev event) (Reply, event, error) {
	if ev == evNone && !t.udp && a.partialSeed() && !a.PausedRefused(t.url) {
		ev = evPaused
	}
	r, err := a.send(ctx, t, ev)
	if err == nil || ev != evPaused || !refusesPaused(err) || ctx.Err() != nil {
		return r, ev, err
	}
	r, err2 := a.send(ctx, t, evNone)
	if err2 != nil {
		// The refusal was not (only) about paused; keep trying paused.
		return r, evNone, err2
	}
	a.log.Info("tracker refuses event=paused; not sending it there again", "tracker", t.url, "err", err)
	a.mu.Lock()
	a.pausedRefused[t.url] = true
	t.st.PausedRefused = true
	a.mu.Unlock()
	return r, evNone, nil
}

// send makes one announce of ev with fresh figures from Stats.
func (a *Announcer) send(ctx context.Context, t *tracker, ev event) (Reply, error) {
	up, down, left := a.o.Stats()
	req := request{event: ev, uploaded: max(up, 0), downloaded: max(down, 0), left: max(left, 0)}
	ctx, cancel := context.WithTimeout(ctx, a.o.AnnounceTimeout)
	defer cancel()
	t.attempted = true
	var r Reply
	var err error
	if t.udp {
		r, err = a.udpAnnounce(ctx, t.u, &t.udpState, req)
	} else {
		r, err = a.httpAnnounce(ctx, t.u, req)
	}
	if err != nil {
		return Reply{Seeders: -1, Leechers: -1}, err
	}
	if a.self.IsValid() {
		r.Peers = removePeer(r.Peers, a.self)
	}
	return r, nil
}

func removePeer(peers []netip.AddrPort, p netip.AddrPort) []netip.AddrPort {
	out := peers[:0]
	for _, q := range peers {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}

// refusesPaused reports whether err is the kind of refusal that trackers
// rejecting BEP 21 paused give.
func refusesPaused(err error) bool {
	var fe *FailureError
	return errors.As(err, &fe) || errors.Is(err, errBadRequest)
}

func (a *Announcer) partialSeed() bool {
	return a.o.PartialSeed != nil && a.o.PartialSeed()
}

func (a *Announcer) deliver(peers []netip.AddrPort) {
	if len(peers) > 0 && a.o.OnPeers != nil {
		a.o.OnPeers(peers)
	}
}

// numWant is the peers asked for: none when stopping.
func (a *Announcer) numWant(ev event) int32 {
	if ev == evStopped {
		return 0
	}
	return int32(a.o.NumWant)
}

// interval is the wait after a successful reply: the tracker's interval
// (or min interval, if larger), DefaultInterval if it gave none, clamped to
// [MinInterval, MaxInterval].
func (a *Announcer) interval(r Reply) time.Duration {
	iv := time.Duration(min(r.Interval, maxSecs)) * time.Second
	if iv <= 0 {
		iv = a.o.DefaultInterval
	}
	iv = max(iv, time.Duration(min(r.MinInterval, maxSecs))*time.Second)
	return min(max(iv, a.o.MinInterval), a.o.MaxInterval)
}

// backoff is the wait after the n-th consecutive failure (n >= 1).
func (a *Announcer) backoff(n int) time.Duration {
	d := a.o.BackoffMin
	for i := 1; i < n && d < a.o.BackoffMax; i++ {
		d *= 2
	}
	return min(d, a.o.BackoffMax)
}

// record updates t's status after an announce. A zero next keeps the
// previous NextAnnounce.
func (a *Announcer) record(t *tracker, ev event, r Reply, err error, next time.Time) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := &t.st
	st.LastAnnounce, st.LastEvent, st.Failures = now, ev.httpName(), t.failures
	if !next.IsZero() {
		st.NextAnnounce = next
	}
	if err != nil {
		st.LastError = err.Error()
		return
	}
	st.LastError, st.LastSuccess = "", now
	st.Seeders, st.Leechers, st.Peers, st.Warning = r.Seeders, r.Leechers, len(r.Peers), r.Warning
}

// Status returns every tracker's state, in announce-list order.
func (a *Announcer) Status() []TrackerStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]TrackerStatus, len(a.trackers))
	for i, t := range a.trackers {
		out[i] = t.st
	}
	return out
}

// PausedRefused reports whether the tracker at url has refused an announce
// with event=paused; paused is not sent to it again by this Announcer.
func (a *Announcer) PausedRefused(url string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pausedRefused[url]
}

// event is an announce event, including BEP 21's paused.
type event int

const (
	evNone event = iota
	evStarted
	evStopped
	evPaused
)

// httpName is the event's value for the HTTP "event" parameter.
func (e event) httpName() string {
	switch e {
	case evStarted:
		return "started"
	case evStopped:
		return "stopped"
	case evPaused:
		return "paused"
	}
	return ""
}

func (e event) String() string {
	if s := e.httpName(); s != "" {
		return s
	}
	return "none"
}

// udpEvent maps e to BEP 15's events; paused, which BEP 15 lacks, goes as
// none (never as 4).
func (e event) udpEvent() shared.AnnounceEvent {
	switch e {
	case evStarted:
		return shared.Started
	case evStopped:
		return shared.Stopped
	}
	return shared.None
}
