package scrape

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"golang.org/x/time/rate"

	"github.com/btslave/btslave/repeater/announce"
)

// Defaults for the zero values in Options.
const (
	DefaultTimeout          = 15 * time.Second
	DefaultUDPTimeout       = 3 * time.Second
	DefaultUDPRetries       = 2
	DefaultConcurrency      = 4
	DefaultParallelTrackers = 8
	DefaultMaxAge           = 10 * time.Minute
	DefaultBackoffMin       = time.Minute
	DefaultBackoffMax       = time.Hour
	DefaultHTTPBatch        = 50
	DefaultUserAgent        = "btslave"
)

// MaxUDPBatch is the most hashes one UDP scrape packet carries (BEP 15).
const MaxUDPBatch = 74

// maxURLBytes bounds an HTTP scrape URL; many servers refuse 8 KiB.
const maxURLBytes = 8000

// udpConnIDLife is how long a client may use a connection ID (BEP 15). A
// tracker's UDP socket is closed after as long without requests.
const udpConnIDLife = time.Minute

// Errors returned by New and Scrape.
var (
	// ErrOptions is wrapped by New's error for invalid Options.
	ErrOptions = errors.New("invalid scrape options")
	// ErrBadURL is wrapped by Scrape's error for a tracker URL that is not
	// http, https or udp://host:port.
	ErrBadURL = errors.New("unusable tracker URL")
	// ErrNoScrape is wrapped by Scrape's error for an HTTP tracker whose
	// announce URL gives no scrape URL by BEP 48's convention (its last
	// path segment does not begin with "announce"). Such a tracker can
	// only be asked by announcing.
	ErrNoScrape = errors.New("tracker has no scrape URL: the announce URL's last path segment does not begin with \"announce\" (BEP 48)")
	// ErrBackoff is wrapped by Scrape's error, returned at once, while a
	// tracker is backed off after failures; Status tells until when.
	ErrBackoff = errors.New("tracker backed off after failed scrapes")
	// ErrClosed is returned by Scrape after Close.
	ErrClosed = errors.New("scraper closed")
)

// Options configures a Scraper. The zero value is usable.
type Options struct {
	// LocalIP, when valid, is the source address of every request, HTTP
	// and UDP; the zero Addr lets the system choose.
	LocalIP netip.Addr
	// HTTPClient replaces the default client (which dials from LocalIP
	// and uses no proxy). Its own timeouts apply besides Timeout.
	HTTPClient *http.Client
	UserAgent  string
	Logger     *slog.Logger

	// Timeout bounds one request: an HTTP GET with its reply, or a UDP
	// packet with its retransmissions (and the connect before it).
	Timeout time.Duration
	// UDPTimeout is the wait before the first UDP retransmission; it
	// doubles for each of the UDPRetries retransmissions. UDPRetries < 0
	// means none.
	UDPTimeout time.Duration
	UDPRetries int

	// Concurrency is how many requests may be in flight to one tracker,
	// over all calls.
	Concurrency int
	// Rate limits the requests sent to one tracker, per second, with
	// bursts of Burst (default Concurrency); 0 means no limit.
	Rate  rate.Limit
	Burst int
	// ParallelTrackers is how many trackers ScrapeAll scrapes at once.
	ParallelTrackers int

	// MaxAge is how long a result is served from the cache; negative
	// disables the cache.
	MaxAge time.Duration
	// A failed scrape backs the tracker off for BackoffMin, doubling per
	// consecutive failure up to BackoffMax.
	BackoffMin, BackoffMax time.Duration
	// HTTPBatch is the most info-hashes in one HTTP scrape request.
	HTTPBatch int
}

// Result is one torrent's figures from one tracker.
type Result struct {
	// Complete, Incomplete and Downloaded are the tracker's seeders,
	// leechers and completed downloads (0 when absent or negative).
	Complete, Incomplete, Downloaded int64
	// Downloaders is BEP 21's count of leechers that are not partial
	// seeds, valid when HasDownloaders is true.
	Downloaders    int64
	HasDownloaders bool
	// Known is false when the tracker's HTTP reply did not list the
	// torrent: it has no peers there, is not allowed there, or was
	// dropped by the tracker's per-request limit. The counts are then 0.
	Known bool
	// Tracker is the announce URL that was scraped.
	Tracker string
	// At is when the tracker answered; a cached Result keeps it.
	At time.Time
}

// Age is how old r is now.
func (r Result) Age() time.Duration { return time.Since(r.At) }

// Demand is the number of peers that want pieces: Downloaders when the
// tracker sent it (BEP 21), else Incomplete, which also counts partial
// seeds. fromDownloaders says which one it is.
func (r Result) Demand() (n int64, fromDownloaders bool) {
	if r.HasDownloaders {
		return r.Downloaders, true
	}
	return r.Incomplete, false
}

// TrackerStatus is one tracker's state, as Status reports it.
type TrackerStatus struct {
	URL string
	// LastScrape is when the last scrape call ended, successfully or not.
	LastScrape time.Time
	LastOK     time.Time
	// LastError is the last call's error; "" after a success.
	LastError   string
	LastErrorAt time.Time
	// Failures counts consecutive failed calls.
	Failures int
	// BackoffUntil is when the tracker may be scraped again; zero or past
	// when it is not backed off.
	BackoffUntil time.Time
	// Cached is the number of results in the cache, fresh or not.
	Cached int
}

// TrackerResult is one tracker's part of ScrapeAll's answer: what Scrape
// returned for it.
type TrackerResult struct {
	Results map[metainfo.Hash]Result
	Err     error
}

// Scraper scrapes trackers; one Scraper serves all callers. Build it with
// New and release it with Close.
type Scraper struct {
	o     Options
	hc    *http.Client
	ownHC bool
	log   *slog.Logger

	// connIDLife and udpIdle are udpConnIDLife, shortened by tests.
	connIDLife, udpIdle time.Duration

	wg sync.WaitGroup // UDP readers

	mu       sync.Mutex
	closed   bool
	trackers map[string]*tracker
}

// tracker is one announce URL's state.
type tracker struct {
	url       string
	scrapeURL string      // HTTP only
	udp       *udpTracker // UDP only
	sem       chan struct{}
	lim       *rate.Limiter // nil: no limit

	// Guarded by Scraper.mu.
	st    TrackerStatus
	cache map[metainfo.Hash]Result
	swept time.Time
}

// New checks o, fills in defaults and returns a Scraper.
func New(o Options) (*Scraper, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Timeout, DefaultTimeout)
	def(&o.UDPTimeout, DefaultUDPTimeout)
	def(&o.MaxAge, DefaultMaxAge)
	def(&o.BackoffMin, DefaultBackoffMin)
	def(&o.BackoffMax, DefaultBackoffMax)
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Timeout", o.Timeout}, {"UDPTimeout", o.UDPTimeout}, {"BackoffMin", o.BackoffMin}, {"BackoffMax", o.BackoffMax}} {
		if d.v < 0 {
			return nil, fmt.Errorf("%w: %s %v is negative", ErrOptions, d.name, d.v)
		}
	}
	if o.BackoffMax < o.BackoffMin {
		return nil, fmt.Errorf("%w: BackoffMax %v < BackoffMin %v", ErrOptions, o.BackoffMax, o.BackoffMin)
	}
	switch {
	case o.UDPRetries == 0:
		o.UDPRetries = DefaultUDPRetries
	case o.UDPRetries < 0:
		o.UDPRetries = 0
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.ParallelTrackers <= 0 {
		o.ParallelTrackers = DefaultParallelTrackers
	}
	if o.Rate < 0 {
		return nil, fmt.Errorf("%w: Rate %v is negative; 0 means no limit", ErrOptions, o.Rate)
	}
	if o.Burst <= 0 {
		o.Burst = o.Concurrency
	}
	if o.HTTPBatch <= 0 {
		o.HTTPBatch = DefaultHTTPBatch
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.LocalIP = o.LocalIP.Unmap()
	s := &Scraper{
		o:          o,
		hc:         o.HTTPClient,
		log:        o.Logger,
		connIDLife: udpConnIDLife,
		udpIdle:    udpConnIDLife,
		trackers:   map[string]*tracker{},
	}
	if s.hc == nil {
		s.hc, s.ownHC = announce.NewHTTPClient(o.LocalIP, o.Concurrency, 0), true
	}
	return s, nil
}

// Close closes the UDP sockets, waits for their readers and makes later
// scrapes fail with ErrClosed. Scrapes in flight fail.
func (s *Scraper) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var udps []*udpTracker
	for _, t := range s.trackers {
		if t.udp != nil {
			udps = append(udps, t.udp)
		}
	}
	s.mu.Unlock()
	for _, u := range udps {
		u.close()
	}
	s.wg.Wait()
	if s.ownHC {
		s.hc.CloseIdleConnections()
	}
	return nil
}

// Scrape asks the tracker with announce URL trackerURL about hashes and
// returns a Result for each hash it has one for: fresh ones from the
// cache, the others from the tracker. On error the map still holds the
// cached results and those of the requests that succeeded. The error wraps
// ErrBadURL, ErrNoScrape, ErrBackoff, ErrClosed, a *FailureError, or the
// network's or ctx's error.
func (s *Scraper) Scrape(ctx context.Context, trackerURL string, hashes []metainfo.Hash) (map[metainfo.Hash]Result, error) {
	t, err := s.tracker(trackerURL)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make(map[metainfo.Hash]Result, len(hashes))
	todo := s.fromCache(t, hashes, now, out)
	if len(todo) == 0 {
		return out, nil
	}
	if err := s.checkBackoff(t, now); err != nil {
		return out, err
	}
	start := time.Now()
	err = s.fetch(ctx, t, todo, out)
	if err != nil && ctx.Err() != nil {
		return out, fmt.Errorf("tracker %s: %w", t.url, context.Cause(ctx))
	}
	if errors.Is(err, ErrClosed) {
		return out, fmt.Errorf("tracker %s: %w", t.url, err) // not the tracker's fault
	}
	s.record(t, err)
	if err != nil {
		return out, fmt.Errorf("tracker %s: %w", t.url, err)
	}
	s.log.Debug("scraped", "tracker", t.url, "hashes", len(todo), "took", time.Since(start))
	return out, nil
}

// ScrapeAll scrapes every tracker of byTracker (announce URL → hashes)
// concurrently, ParallelTrackers at a time, and returns each one's
// answer. One tracker's failure does not affect the others.
func (s *Scraper) ScrapeAll(ctx context.Context, byTracker map[string][]metainfo.Hash) map[string]TrackerResult {
	out := make(map[string]TrackerResult, len(byTracker))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.o.ParallelTrackers)
	for u, hashes := range byTracker {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r, err := s.Scrape(ctx, u, hashes)
			mu.Lock()
			out[u] = TrackerResult{Results: r, Err: err}
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// Status returns every tracker's state, ordered by URL.
func (s *Scraper) Status() []TrackerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TrackerStatus, 0, len(s.trackers))
	for _, t := range s.trackers {
		st := t.st
		st.Cached = len(t.cache)
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b TrackerStatus) int { return strings.Compare(a.URL, b.URL) })
	return out
}

// tracker returns the state of the tracker at rawURL, creating it on first
// use.
func (s *Scraper) tracker(rawURL string) (*tracker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if t := s.trackers[rawURL]; t != nil {
		return t, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("tracker %s: %w: %v", rawURL, ErrBadURL, err)
	}
	t := &tracker{url: rawURL, sem: make(chan struct{}, s.o.Concurrency), cache: map[metainfo.Hash]Result{}}
	switch u.Scheme {
	case "http", "https":
		su, err := scrapeURL(u)
		if err != nil {
			return nil, fmt.Errorf("tracker %s: %w", rawURL, err)
		}
		t.scrapeURL = su
	case "udp":
		if u.Hostname() == "" || u.Port() == "" {
			return nil, fmt.Errorf("tracker %s: %w: a UDP tracker needs host and port", rawURL, ErrBadURL)
		}
		t.udp = newUDPTracker(s, u.Host)
	default:
		return nil, fmt.Errorf("tracker %s: %w: scheme %q, want http, https or udp", rawURL, ErrBadURL, u.Scheme)
	}
	if s.o.Rate > 0 {
		t.lim = rate.NewLimiter(s.o.Rate, s.o.Burst)
	}
	t.st.URL = rawURL
	s.trackers[rawURL] = t
	return t, nil
}

// fromCache puts the fresh cached results for hashes into out and returns
// the other hashes, without duplicates.
func (s *Scraper) fromCache(t *tracker, hashes []metainfo.Hash, now time.Time, out map[metainfo.Hash]Result) []metainfo.Hash {
	s.mu.Lock()
	defer s.mu.Unlock()
	var todo []metainfo.Hash
	seen := make(map[metainfo.Hash]bool, len(hashes))
	for _, h := range hashes {
		if seen[h] {
			continue
		}
		seen[h] = true
		if r, ok := t.cache[h]; ok && s.o.MaxAge > 0 && now.Sub(r.At) < s.o.MaxAge {
			out[h] = r
			continue
		}
		todo = append(todo, h)
	}
	return todo
}

// checkBackoff returns an ErrBackoff error while t is backed off.
func (s *Scraper) checkBackoff(t *tracker, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(t.st.BackoffUntil) {
		return fmt.Errorf("tracker %s: %w for %v more (%d failures, last: %s)",
			t.url, ErrBackoff, t.st.BackoffUntil.Sub(now).Round(time.Second), t.st.Failures, t.st.LastError)
	}
	return nil
}

// record updates t's status after a scrape call that ended with err.
func (s *Scraper) record(t *tracker, err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &t.st
	st.LastScrape = now
	if err == nil {
		st.LastOK, st.LastError, st.Failures, st.BackoffUntil = now, "", 0, time.Time{}
		if s.o.MaxAge > 0 && now.Sub(t.swept) > s.o.MaxAge {
			for h, r := range t.cache {
				if now.Sub(r.At) >= s.o.MaxAge {
					delete(t.cache, h)
				}
			}
			t.swept = now
		}
		return
	}
	st.LastError, st.LastErrorAt = err.Error(), now
	if now.Before(st.BackoffUntil) {
		return // a concurrent call failed already; count the failure once
	}
	st.Failures++
	wait := s.backoff(st.Failures)
	st.BackoffUntil = now.Add(wait)
	s.log.Info("scrape failed; backing off", "tracker", t.url, "failures", st.Failures, "retry_in", wait, "err", err)
}

// backoff is the wait after the n-th consecutive failure (n >= 1).
func (s *Scraper) backoff(n int) time.Duration {
	d := s.o.BackoffMin
	for i := 1; i < n && d < s.o.BackoffMax; i++ {
		d *= 2
	}
	return min(d, s.o.BackoffMax)
}

// store adds results to t's cache.
func (s *Scraper) store(t *tracker, results map[metainfo.Hash]Result) {
	if s.o.MaxAge < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, r := range results {
		t.cache[h] = r
	}
}

// fetch asks t about todo in batches, Concurrency at a time, and puts the
// results into out. The first failing batch cancels the others.
func (s *Scraper) fetch(ctx context.Context, t *tracker, todo []metainfo.Hash, out map[metainfo.Hash]Result) error {
	var batches [][]metainfo.Hash
	if t.udp != nil {
		batches = slices.Collect(slices.Chunk(todo, t.udp.batchSize()))
	} else {
		batches = httpBatches(t.scrapeURL, todo, s.o.HTTPBatch)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
loop:
	for _, b := range batches {
		select {
		case t.sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		if ctx.Err() != nil {
			<-t.sem
			break
		}
		wg.Go(func() {
			defer func() { <-t.sem }()
			res, err := s.batch(ctx, t, b)
			s.store(t, res)
			mu.Lock()
			defer mu.Unlock()
			maps.Copy(out, res)
			if err != nil && firstErr == nil {
				firstErr = err
				cancel(err)
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = context.Cause(ctx)
	}
	return firstErr
}

// batch asks t about one batch of hashes, a request at a time (one, unless
// a UDP tracker answers fewer rows than asked), and returns the results
// it got.
func (s *Scraper) batch(ctx context.Context, t *tracker, b []metainfo.Hash) (map[metainfo.Hash]Result, error) {
	out := make(map[metainfo.Hash]Result, len(b))
	for len(b) > 0 {
		if err := waitRate(ctx, t.lim); err != nil {
			return out, err
		}
		rctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		var n int
		var err error
		if t.udp != nil {
			n, err = t.udp.scrape(rctx, b, out, t.url)
		} else {
			n, err = s.httpScrape(rctx, t, b, out)
		}
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = fmt.Errorf("no answer within %v: %w", s.o.Timeout, err)
			}
			return out, err
		}
		b = b[n:]
	}
	return out, nil
}

// waitRate waits for a token from lim (nil: no limit) or for ctx, whose
// error it returns. Unlike rate.Limiter.Wait it does not fail early when
// the wait would pass ctx's deadline: that is the caller's deadline, not
// the tracker's failure.
func waitRate(ctx context.Context, lim *rate.Limiter) error {
	if lim == nil {
		return nil
	}
	r := lim.Reserve()
	d := r.Delay()
	if d == 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return context.Cause(ctx)
	}
}

// stripURLError drops the request URL from a net/http error: it holds
// every hash of the batch.
func stripURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s scrape: %w", ue.Op, ue.Err)
	}
	return err
}
