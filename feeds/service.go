package feeds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/config"
)

// Options configures a Service, and Test.
type Options struct {
	// Feeds is the [feeds] configuration: default schedule, jitter, caps,
	// timeout and the configured feeds. Zero caps, timeout and schedule
	// take the embedded defaults.
	Feeds config.Feeds
	// DB is the daemon's database, opened by store.Open. New needs it;
	// Test does not use it.
	DB *bolt.DB
	// Version goes into the User-Agent, "btslave/<version>".
	Version string
	// Logger receives fetch results and failures; nil discards them.
	Logger *slog.Logger
	// OnNew is called with each entry new to the catalog, after it is
	// committed, from the goroutine that fetched it; it must not block
	// for long.
	OnNew func(Entry)
	// Client makes the HTTP requests; nil means a client of our own. Its
	// redirect policy is replaced (http(s) only, at most 5), and its
	// *http.Transport copied to keep public feeds off private addresses
	// (another kind of RoundTripper is used as it is, unchecked).
	Client *http.Client
	// Clock is the time source; nil means the system clock.
	Clock Clock
	// Jitter returns a random delay in [0, max]; nil means uniform random.
	// Tests pass one that returns 0.
	Jitter func(max time.Duration) time.Duration
	// BackoffBase is the first retry delay of a failing feed, doubled on
	// each further failure; default 1 minute.
	BackoffBase time.Duration
	// MaxBackoff caps the retry delay (as does the feed's schedule
	// interval); default 1 hour.
	MaxBackoff time.Duration

	// isPublic classifies the addresses feeds reach; nil means publicAddr.
	// Tests set it so that a loopback server can play a public feed.
	isPublic func(netip.Addr) bool
}

// withDefaults fills in what the caller left zero.
func (o Options) withDefaults() Options {
	o.Feeds = feedDefaults(o.Feeds)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	if o.Jitter == nil {
		o.Jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max + 1)
		}
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = time.Minute
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Hour
	}
	if o.isPublic == nil {
		o.isPublic = publicAddr
	}
	o.Client = newHTTPClient(o.Client, o.isPublic)
	return o
}

// feedDefaults fills in the schedule, caps and timeout left zero.
func feedDefaults(f config.Feeds) config.Feeds {
	def := config.Default().Feeds
	if f.Schedule == "" {
		f.Schedule = def.Schedule
	}
	if f.MaxFeedSize <= 0 {
		f.MaxFeedSize = def.MaxFeedSize
	}
	if f.MaxTorrentSize <= 0 {
		f.MaxTorrentSize = def.MaxTorrentSize
	}
	if f.Timeout <= 0 {
		f.Timeout = def.Timeout
	}
	return f
}

// newFetcher returns a fetcher with o's caps.
func (o *Options) newFetcher(feeds config.Feeds) *fetcher {
	ua := "btslave"
	if o.Version != "" {
		ua += "/" + strings.TrimPrefix(o.Version, "v")
	}
	return &fetcher{
		client:     o.Client,
		userAgent:  ua,
		timeout:    feeds.Timeout.Std(),
		maxFeed:    int64(feeds.MaxFeedSize),
		maxTorrent: int64(feeds.MaxTorrentSize),
		policy:     &addrPolicy{allowAll: feeds.AllowPrivateRedirects},
	}
}

// Test fetches a feed once, as "btslave feeds test" does, and reports for
// every item whether it would be kept and why. It touches no database:
// nothing is stored, no conditional GET is made, and every .torrent is
// downloaded (up to 100).
func Test(ctx context.Context, opts Options, feed config.Feed) (*Result, error) {
	opts = opts.withDefaults()
	if err := CheckFeed(&feed, opts.Feeds); err != nil {
		return nil, err
	}
	flt, err := newFilter(&feed)
	if err != nil {
		return nil, err
	}
	r := &run{feed: feed, filter: flt, fetch: opts.newFetcher(opts.Feeds), now: opts.Clock.Now()}
	return r.do(ctx)
}

// Status is one feed's state, for the daemon's status and API.
type Status struct {
	// Name and Kind are the feed's; Kind "" means sniffed.
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
	// Source is the feed's URL (credentials hidden) or watch folder.
	Source string `json:"source"`
	// Added is set for a feed added at run time rather than configured.
	Added bool `json:"added,omitempty"`
	// Running is set while a fetch is under way.
	Running bool `json:"running,omitempty"`
	// Fetches counts the fetches ended since the service started, and
	// FetchErrors those that failed.
	Fetches     int `json:"fetches"`
	FetchErrors int `json:"fetch_errors"`
	// LastFetch is when the last fetch ended; LastSuccess the last one
	// that did not fail.
	LastFetch   time.Time `json:"last_fetch,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// NotModified is set when the last fetch was answered 304.
	NotModified bool `json:"not_modified,omitempty"`
	// Items, Kept, New and ItemErrors count the last successful fetch's
	// items: listed, kept by the filters, new to the catalog, failed.
	Items      int `json:"items"`
	Kept       int `json:"kept"`
	New        int `json:"new"`
	ItemErrors int `json:"item_errors,omitempty"`
	// LastError is why the last fetch failed; empty after a success.
	LastError string `json:"last_error,omitempty"`
	// Failures counts fetches failed in a row.
	Failures int `json:"failures,omitempty"`
	// NextRun is when the feed is fetched next.
	NextRun time.Time `json:"next_run,omitzero"`
}

// Service fetches every feed on its schedule and keeps the catalog. Create
// it with New and run it with Run; Add, Remove, Reload, RunNow and Status
// may be called at any time, from any goroutine.
type Service struct {
	opts    Options
	log     *slog.Logger
	clock   Clock
	catalog *Catalog
	store   *Store

	wake chan struct{}

	mu      sync.Mutex // guards opts.Feeds too, which Reload replaces
	feeds   map[string]*feedRun
	started bool
}

// feedRun is one feed in the scheduler.
type feedRun struct {
	cfg    config.Feed
	filter *filter
	sched  cron.Schedule
	added  bool

	next   time.Time
	busy   bool
	cancel context.CancelFunc
	state  FeedState
	status Status
}

// New returns a Service for the configured feeds and those added at run
// time (kept in the database). A configured feed that cannot run is an
// error; a bad stored one is logged and skipped.
func New(opts Options) (*Service, error) {
	if opts.DB == nil {
		return nil, errors.New("feeds: Options.DB is nil")
	}
	opts = opts.withDefaults()
	cat, err := NewCatalog(opts.DB)
	if err != nil {
		return nil, err
	}
	st, err := NewStore(opts.DB)
	if err != nil {
		return nil, err
	}
	s := &Service{
		opts:    opts,
		log:     opts.Logger,
		clock:   opts.Clock,
		catalog: cat,
		store:   st,
		wake:    make(chan struct{}, 1),
		feeds:   map[string]*feedRun{},
	}
	runs, err := s.configured(opts.Feeds)
	if err != nil {
		return nil, err
	}
	for _, fr := range runs {
		s.feeds[fr.cfg.Name] = fr
	}
	added, err := st.ListFeeds()
	if err != nil {
		return nil, err
	}
	for _, f := range added {
		if _, taken := s.feeds[f.Name]; taken {
			s.log.Warn("feed added at run time has the name of a configured feed; the configured one runs", "feed", f.Name)
			continue
		}
		fr, err := s.newRun(f, true)
		if err != nil {
			s.log.Warn("stored feed cannot run; skipped", "feed", f.Name, "err", err)
			continue
		}
		s.feeds[f.Name] = fr
	}
	return s, nil
}

// configured checks and builds the configured feeds of cfg.
func (s *Service) configured(cfg config.Feeds) ([]*feedRun, error) {
	var errs []error
	var runs []*feedRun
	names := map[string]bool{}
	for _, f := range cfg.Feed {
		if err := CheckFeed(&f, cfg); err != nil {
			errs = append(errs, err)
			continue
		}
		if names[f.Name] {
			errs = append(errs, fmt.Errorf("feed %q: %w: the name is used twice", f.Name, ErrBadFeed))
			continue
		}
		names[f.Name] = true
		fr, err := s.newRun(f, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		runs = append(runs, fr)
	}
	return runs, errors.Join(errs...)
}

// newRun builds a scheduler entry for a checked feed, with its stored
// state.
func (s *Service) newRun(f config.Feed, added bool) (*feedRun, error) {
	if err := CheckFeed(&f, s.opts.Feeds); err != nil {
		return nil, err
	}
	flt, err := newFilter(&f)
	if err != nil {
		return nil, err
	}
	sched, err := f.Schedule.Schedule()
	if err != nil {
		return nil, fmt.Errorf("feed %q: %w: schedule: %v", f.Name, ErrBadFeed, err)
	}
	st, err := s.store.State(f.Name)
	if err != nil {
		return nil, err
	}
	if st.URL != f.URL {
		st.ETag, st.LastModified, st.Seen = "", "", nil
	}
	fr := &feedRun{cfg: f, filter: flt, sched: sched, added: added, state: st}
	fr.status = Status{
		Name: f.Name, Kind: f.Kind, Source: f.Dir, Added: added,
		LastFetch: st.LastFetch, LastSuccess: st.LastSuccess, LastError: st.LastError, Failures: st.Failures,
	}
	if f.URL != "" {
		fr.status.Source = redactURL(f.URL)
	}
	return fr, nil
}

// Catalog returns the catalog the service fills.
func (s *Service) Catalog() *Catalog { return s.catalog }

// Store returns the store of added feeds and feed state.
func (s *Service) Store() *Store { return s.store }

// Add adds a feed at run time: it is checked (CheckFeed), stored so that it
// survives restarts, and fetched at once. ErrFeedExists when a configured
// or added feed has its name.
func (s *Service) Add(f config.Feed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := CheckFeed(&f, s.opts.Feeds); err != nil {
		return err
	}
	if _, taken := s.feeds[f.Name]; taken {
		return fmt.Errorf("add feed %q: %w", f.Name, ErrFeedExists)
	}
	fr, err := s.newRun(f, true)
	if err != nil {
		return err
	}
	if err := s.store.AddFeed(fr.cfg); err != nil {
		return err
	}
	fr.next = s.clock.Now()
	fr.status.NextRun = fr.next
	s.feeds[f.Name] = fr
	s.log.Info("feed added", "feed", f.Name, "source", fr.status.Source)
	s.poke()
	return nil
}

// Remove removes a feed added at run time, with its state; a fetch under
// way is cancelled. The catalog keeps what the feed found.
// ErrConfigFeed for a configured feed, ErrFeedNotFound for an unknown name.
func (s *Service) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fr, ok := s.feeds[name]
	if !ok {
		return fmt.Errorf("remove feed %q: %w", name, ErrFeedNotFound)
	}
	if !fr.added {
		return fmt.Errorf("remove feed %q: %w; remove it there", name, ErrConfigFeed)
	}
	if err := s.store.RemoveFeed(name); err != nil {
		return err
	}
	s.drop(fr)
	s.log.Info("feed removed", "feed", name)
	s.poke()
	return nil
}

// drop takes fr out of the scheduler, cancelling its fetch.
func (s *Service) drop(fr *feedRun) {
	if fr.cancel != nil {
		fr.cancel()
	}
	delete(s.feeds, fr.cfg.Name)
}

// Reload applies a new [feeds] configuration: caps and defaults, and the
// configured feeds. Unchanged feeds keep their schedule and state; changed
// and new ones are fetched within the jitter; feeds gone from the
// configuration stop and their state is dropped. Added feeds are kept. On
// error nothing changes.
func (s *Service) Reload(cfg config.Feeds) error {
	cfg = feedDefaults(cfg)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.opts.Feeds
	s.opts.Feeds = cfg // newRun checks against the new defaults
	runs, err := s.configured(cfg)
	if err != nil {
		s.opts.Feeds = old
		return err
	}
	now := s.clock.Now()
	want := map[string]bool{}
	for _, fr := range runs {
		name := fr.cfg.Name
		want[name] = true
		cur, ok := s.feeds[name]
		if ok && !cur.added && feedEqual(cur.cfg, fr.cfg) {
			continue
		}
		if ok {
			if cur.added {
				s.log.Warn("configured feed has the name of a feed added at run time; the configured one runs", "feed", name)
			}
			s.drop(cur)
		}
		if s.started {
			fr.next = now.Add(s.opts.Jitter(jitterCap(cfg.Jitter.Std(), fr.sched, now)))
			fr.status.NextRun = fr.next
		}
		s.feeds[name] = fr
	}
	for name, fr := range s.feeds {
		if !fr.added && !want[name] {
			s.drop(fr)
			if err := s.store.deleteState(name); err != nil {
				s.log.Warn("drop feed state", "feed", name, "err", err)
			}
		}
	}
	s.poke()
	return nil
}

func feedEqual(a, b config.Feed) bool { return recordOf(a) == recordOf(b) }

// RunNow fetches a feed as soon as possible (unless a fetch is under way).
func (s *Service) RunNow(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fr, ok := s.feeds[name]
	if !ok {
		return fmt.Errorf("run feed %q: %w", name, ErrFeedNotFound)
	}
	fr.next = s.clock.Now()
	fr.status.NextRun = fr.next
	s.poke()
	return nil
}

// Status returns every feed's status, sorted by name.
func (s *Service) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.feeds))
	for _, fr := range s.feeds {
		out = append(out, fr.status)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}
