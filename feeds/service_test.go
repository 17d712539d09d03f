package feeds_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
)

func noJitter(time.Duration) time.Duration { return 0 }

// magnetRSS is an RSS feed of magnet links for the given v1 hashes.
func magnetRSS(hashes ...string) []byte {
	var b strings.Builder
	b.WriteString(`<rss version="2.0"><channel><title>m</title>`)
	for _, h := range hashes {
		b.WriteString(`<item><title>t-` + h[:6] + `</title><link>magnet:?xt=urn:btih:` + h + `</link></item>`)
	}
	b.WriteString(`</channel></rss>`)
	return []byte(b.String())
}

const (
	hashA = "66a599a670b4fea4449ff9531250b83d11fe9106"
	hashB = "e532ca9e292a3cc8c9b9734451780b34e7f62868"
)

// Ensure that a broken feed is retried with exponential backoff, capped at
// its schedule interval, while a good feed keeps its schedule.
func TestService_Backoff(t *testing.T) {
	srv := newServer(t)
	srv.file("/good", "application/rss+xml", magnetRSS(hashA))
	srv.handle("/bad", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) })
	clk := newFakeClock()
	t0 := clk.Now()
	var jmu sync.Mutex
	var jitters []time.Duration
	svc := startService(t, feeds.Options{
		DB:    openDB(t).DB,
		Clock: clk,
		Jitter: func(max time.Duration) time.Duration {
			jmu.Lock()
			defer jmu.Unlock()
			jitters = append(jitters, max)
			return 0
		},
		Feeds: config.Feeds{
			Schedule: "@every 10m",
			Jitter:   config.Duration(time.Minute),
			Feed:     []config.Feed{{Name: "good", URL: srv.URL + "/good"}, {Name: "bad", URL: srv.URL + "/bad"}},
		},
	})
	waitFetches(t, svc, "good", 1)
	bad := waitFetches(t, svc, "bad", 1)
	if bad.Failures != 1 || !strings.Contains(bad.LastError, "HTTP 500") || !bad.NextRun.Equal(t0.Add(time.Minute)) {
		t.Fatalf("bad after first fetch: %+v", bad)
	}
	type step struct {
		at          time.Duration // clock after the advance, from t0
		good, bad   int           // fetches so far
		nextBad     time.Duration // bad feed's next run, from t0
		nextGood    time.Duration
		fixBadFirst bool
	}
	steps := []step{
		{at: 1 * time.Minute, good: 1, bad: 2, nextBad: 3 * time.Minute, nextGood: 10 * time.Minute},
		{at: 3 * time.Minute, good: 1, bad: 3, nextBad: 7 * time.Minute, nextGood: 10 * time.Minute},
		{at: 7 * time.Minute, good: 1, bad: 4, nextBad: 15 * time.Minute, nextGood: 10 * time.Minute},
		{at: 10 * time.Minute, good: 2, bad: 4, nextBad: 15 * time.Minute, nextGood: 20 * time.Minute},
		{at: 15 * time.Minute, good: 2, bad: 5, nextBad: 25 * time.Minute, nextGood: 20 * time.Minute}, // 16m capped at 10m
		{at: 20 * time.Minute, good: 3, bad: 5, nextBad: 25 * time.Minute, nextGood: 30 * time.Minute},
		{at: 25 * time.Minute, good: 3, bad: 6, nextBad: 35 * time.Minute, nextGood: 30 * time.Minute},
		{at: 30 * time.Minute, good: 4, bad: 6, nextBad: 35 * time.Minute, nextGood: 40 * time.Minute},
		{at: 35 * time.Minute, good: 4, bad: 7, nextBad: 45 * time.Minute, nextGood: 40 * time.Minute, fixBadFirst: true},
	}
	now := time.Duration(0)
	next := time.Minute
	for _, s := range steps {
		// The loop must have armed its timer for the earliest run before
		// the clock moves, or the advance would be missed.
		waitFor(t, "timer at +"+next.String(), func() bool { return clk.hasTimerAt(t0.Add(next)) })
		if s.fixBadFirst {
			srv.file("/bad", "application/rss+xml", magnetRSS(hashB))
		}
		clk.Advance(s.at - now)
		now = s.at
		g := waitFetches(t, svc, "good", s.good)
		b := waitFetches(t, svc, "bad", s.bad)
		waitFor(t, "next runs", func() bool {
			g, b = status(svc, "good"), status(svc, "bad")
			return g.NextRun.Equal(t0.Add(s.nextGood)) && b.NextRun.Equal(t0.Add(s.nextBad))
		})
		if g.Fetches != s.good || b.Fetches != s.bad || g.Failures != 0 || g.LastError != "" {
			t.Fatalf("at +%v: good %+v bad %+v", s.at, g, b)
		}
		if srv.hit("/good") != s.good || srv.hit("/bad") != s.bad {
			t.Fatalf("at +%v: server saw good %d bad %d, want %d %d", s.at, srv.hit("/good"), srv.hit("/bad"), s.good, s.bad)
		}
		next = min(s.nextBad, s.nextGood)
	}
	if b := status(svc, "bad"); b.Failures != 0 || b.LastError != "" || b.Kept != 1 || b.New != 1 || b.FetchErrors != 6 {
		t.Errorf("bad feed after repair: %+v", b)
	}
	jmu.Lock()
	defer jmu.Unlock()
	if len(jitters) == 0 || slices.ContainsFunc(jitters, func(d time.Duration) bool { return d != time.Minute }) {
		t.Errorf("jitter asked for %v, want feeds.jitter (1m) each time", jitters)
	}
}

// Ensure that the first fetch waits for the jitter, and no longer.
func TestService_FirstRunWithinJitter(t *testing.T) {
	srv := newServer(t)
	srv.file("/f", "application/rss+xml", magnetRSS(hashA))
	clk := newFakeClock()
	t0 := clk.Now()
	svc := startService(t, feeds.Options{
		DB:     openDB(t).DB,
		Clock:  clk,
		Jitter: func(max time.Duration) time.Duration { return max / 2 },
		Feeds:  config.Feeds{Schedule: "@hourly", Jitter: config.Duration(time.Minute), Feed: []config.Feed{{Name: "f", URL: srv.URL + "/f"}}},
	})
	waitFor(t, "first timer", func() bool { return clk.hasTimerAt(t0.Add(30 * time.Second)) })
	if srv.hit("/f") != 0 {
		t.Fatal("fetched before the jitter elapsed")
	}
	clk.Advance(30 * time.Second)
	st := waitFetches(t, svc, "f", 1)
	// @hourly from 10:00:30 is 11:00, plus half the jitter.
	if want := t0.Add(time.Hour + 30*time.Second); !st.NextRun.Equal(want) {
		t.Errorf("next run %v, want %v", st.NextRun, want)
	}
}

// Ensure that one hybrid torrent offered by v1 (.torrent) in one feed and
// by v2 (magnet) in another is one catalog entry, announced once.
func TestService_DedupeAcrossFeeds(t *testing.T) {
	srv := newServer(t)
	hyb := makeTorrent(t, "hybrid.iso", 20_000, true, "http://tracker.example/announce")
	srv.file("/h.torrent", ctypeTorrent, hyb.data)
	srv.file("/rss", "application/rss+xml", rssOf([2]string{"Hybrid ISO", "/h.torrent"}))
	srv.file("/list", "text/plain", []byte("magnet:?xt=urn:btmh:1220"+hyb.v2+"&dn=hybrid-v2&tr=udp://other.example:6969\n"))
	var mu sync.Mutex
	var news []feeds.Entry
	clk := newFakeClock()
	svc := startService(t, feeds.Options{
		DB: openDB(t).DB, Clock: clk, Jitter: noJitter,
		OnNew: func(e feeds.Entry) { mu.Lock(); news = append(news, e); mu.Unlock() },
		Feeds: config.Feeds{Schedule: "@hourly", Feed: []config.Feed{
			{Name: "v2-list", URL: srv.URL + "/list", Kind: "list"},
			{Name: "rss", URL: srv.URL + "/rss"},
		}},
	})
	waitFetches(t, svc, "v2-list", 1)
	waitFetches(t, svc, "rss", 1)
	// And the other way round: the v1 .torrent is known, a v2 sighting
	// comes again.
	fetchNow(t, svc, "v2-list")

	list, err := svc.Catalog().List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("catalog has %d entries, want 1: %+v", len(list), list)
	}
	e := list[0]
	slices.Sort(e.Feeds)
	if e.InfoHashV1 != hyb.v1 || e.InfoHashV2 != hyb.v2 || e.Key() != hyb.v1 || string(e.Torrent) != string(hyb.data) ||
		e.Name != "hybrid.iso" || !slices.Equal(e.Feeds, []string{"rss", "v2-list"}) || len(e.Trackers) != 2 {
		t.Errorf("entry %+v", e)
	}
	for _, h := range []string{hyb.v1, hyb.v2, strings.ToUpper(hyb.v2)} {
		if g, ok, err := svc.Catalog().Get(h); err != nil || !ok || g.Key() != hyb.v1 {
			t.Errorf("Get(%s) = %v %v %v", h, g.Key(), ok, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(news) != 1 {
		t.Errorf("OnNew called %d times, want 1", len(news))
	}
}

// Ensure that feeds are fetched with conditional GET, that 304 means
// nothing new, and that a .torrent is downloaded once.
func TestService_ConditionalGET(t *testing.T) {
	srv := newServer(t)
	tt := makeTorrent(t, "x", 1000, false)
	srv.file("/x.torrent", ctypeTorrent, tt.data)
	var mu sync.Mutex
	etag, body := `"v1"`, rssOf([2]string{"X", "/x.torrent"})
	var notModified int
	srv.handle("/rss", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		const lastMod = "Mon, 12 Feb 2024 10:00:00 GMT"
		if r.Header.Get("If-None-Match") == etag && r.Header.Get("If-Modified-Since") == lastMod {
			notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", lastMod)
		w.Write(body)
	})
	dir := t.TempDir()
	db := openDBAt(t, dir)
	clk := newFakeClock()
	opts := feeds.Options{DB: db.DB, Clock: clk, Jitter: noJitter,
		Feeds: config.Feeds{Schedule: "@hourly", Feed: []config.Feed{{Name: "f", URL: srv.URL + "/rss"}}}}
	svc := startService(t, opts)

	st := waitFetches(t, svc, "f", 1)
	if st.NotModified || st.New != 1 {
		t.Fatalf("first fetch: %+v", st)
	}
	st = fetchNow(t, svc, "f")
	mu.Lock()
	n := notModified
	mu.Unlock()
	if !st.NotModified || st.New != 0 || n != 1 {
		t.Fatalf("second fetch: %+v; %d 304s", st, n)
	}

	// A changed feed listing the same .torrent: 200, no new download.
	mu.Lock()
	etag, body = `"v2"`, rssOf([2]string{"X", "/x.torrent"}, [2]string{"X again", "/x.torrent"})
	mu.Unlock()
	st = fetchNow(t, svc, "f")
	if st.NotModified || st.Items != 2 || st.Kept != 2 || st.New != 0 {
		t.Fatalf("third fetch: %+v", st)
	}
	if n := srv.hit("/x.torrent"); n != 1 {
		t.Errorf(".torrent downloaded %d times, want 1", n)
	}
	if n := srv.hit("/rss"); n != 3 {
		t.Errorf("feed fetched %d times, want 3", n)
	}

	// The validators survive a restart.
	state, err := svc.Store().State("f")
	if err != nil || state.ETag != `"v2"` || state.LastModified == "" || len(state.Seen) != 1 {
		t.Errorf("stored state %+v %v", state, err)
	}
}

// Ensure that feeds added at run time are fetched at once, kept across
// restarts, and removable; configured feeds are not.
func TestService_AddRemove(t *testing.T) {
	srv := newServer(t)
	srv.file("/a", "application/rss+xml", magnetRSS(hashA))
	srv.file("/b", "application/rss+xml", magnetRSS(hashB))
	dir := t.TempDir()
	db := openDBAt(t, dir)
	clk := newFakeClock()
	opts := feeds.Options{DB: db.DB, Clock: clk, Jitter: noJitter,
		Feeds: config.Feeds{Schedule: "@hourly", Feed: []config.Feed{{Name: "conf", URL: srv.URL + "/a"}}}}
	svc := startService(t, opts)
	waitFetches(t, svc, "conf", 1)

	if err := svc.Add(config.Feed{Name: "added", URL: srv.URL + "/b", Include: "t-"}); err != nil {
		t.Fatal(err)
	}
	if st := waitFetches(t, svc, "added", 1); !st.Added || st.New != 1 {
		t.Errorf("added feed: %+v", st)
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{svc.Add(config.Feed{Name: "added", URL: srv.URL + "/a"}), feeds.ErrFeedExists},
		{svc.Add(config.Feed{Name: "conf", URL: srv.URL + "/a"}), feeds.ErrFeedExists},
		{svc.Add(config.Feed{Name: "x", URL: "ftp://example.org/"}), feeds.ErrBadFeed},
		{svc.Remove("conf"), feeds.ErrConfigFeed},
		{svc.Remove("nope"), feeds.ErrFeedNotFound},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("err = %v, want %v", tc.err, tc.want)
		}
	}
	added, err := svc.Store().ListFeeds()
	if err != nil || len(added) != 1 || added[0].Name != "added" || added[0].Include != "t-" || added[0].Schedule != "@hourly" {
		t.Fatalf("stored feeds %+v %v", added, err)
	}
	// A second service on the same database runs the added feed too.
	svc2, err := feeds.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if names := statusNames(svc2); !slices.Equal(names, []string{"added", "conf"}) {
		t.Errorf("restarted service runs %v", names)
	}

	if err := svc.Remove("added"); err != nil {
		t.Fatal(err)
	}
	if names := statusNames(svc); !slices.Equal(names, []string{"conf"}) {
		t.Errorf("after remove: %v", names)
	}
	if added, _ := svc.Store().ListFeeds(); len(added) != 0 {
		t.Errorf("stored feeds after remove: %v", added)
	}
	if n, _ := svc.Catalog().Len(); n != 2 {
		t.Errorf("catalog has %d entries; removing a feed keeps what it found", n)
	}
}

func statusNames(svc *feeds.Service) []string {
	var names []string
	for _, s := range svc.Status() {
		names = append(names, s.Name)
	}
	return names
}

// Ensure that Reload starts new feeds, restarts changed ones and stops
// removed ones.
func TestService_Reload(t *testing.T) {
	srv := newServer(t)
	srv.file("/a", "application/rss+xml", magnetRSS(hashA))
	srv.file("/b", "application/rss+xml", magnetRSS(hashB))
	clk := newFakeClock()
	cfg := config.Feeds{Schedule: "@hourly", Feed: []config.Feed{{Name: "a", URL: srv.URL + "/a"}}}
	svc := startService(t, feeds.Options{DB: openDB(t).DB, Clock: clk, Jitter: noJitter, Feeds: cfg})
	waitFetches(t, svc, "a", 1)

	bad := cfg
	bad.Feed = []config.Feed{{Name: "a", URL: srv.URL + "/a", Include: "("}}
	if err := svc.Reload(bad); !errors.Is(err, feeds.ErrBadFeed) {
		t.Fatalf("Reload with a bad regexp: %v", err)
	}
	if st := status(svc, "a"); st.Fetches != 1 {
		t.Errorf("a failed reload changed feed a: %+v", st)
	}

	cfg.Feed = []config.Feed{{Name: "a", URL: srv.URL + "/a"}, {Name: "b", URL: srv.URL + "/b"}}
	if err := svc.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	waitFetches(t, svc, "b", 1)
	if st := status(svc, "a"); st.Fetches != 1 {
		t.Errorf("unchanged feed a was restarted: %+v", st)
	}
	cfg.Feed = []config.Feed{{Name: "b", URL: srv.URL + "/b", Include: "nothing"}}
	if err := svc.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if names := statusNames(svc); !slices.Equal(names, []string{"b"}) {
		t.Errorf("after reload: %v", names)
	}
	st := waitFetches(t, svc, "b", 1) // a changed feed starts afresh
	if st.Kept != 0 || st.Items != 1 {
		t.Errorf("changed feed b: %+v", st)
	}
}

// Ensure that an item that failed for now (a 503 on its .torrent) is
// tried again at the next run although the feed is unchanged: its ETag is
// not kept, so the server does not answer 304.
func TestService_RetryTransientItem(t *testing.T) {
	srv := newServer(t)
	tt := makeTorrent(t, "x", 1000, false)
	var mu sync.Mutex
	down := true
	srv.handle("/x.torrent", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			http.Error(w, "later", http.StatusServiceUnavailable)
			return
		}
		w.Write(tt.data)
	})
	srv.handle("/rss", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"same"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"same"`)
		w.Write(rssOf([2]string{"X", "/x.torrent"}))
	})
	svc := startService(t, feeds.Options{DB: openDB(t).DB, Clock: newFakeClock(), Jitter: noJitter,
		Feeds: config.Feeds{Schedule: "@hourly", Feed: []config.Feed{{Name: "f", URL: srv.URL + "/rss"}}}})
	if st := waitFetches(t, svc, "f", 1); st.ItemErrors != 1 || st.LastError != "" {
		t.Fatalf("first run: %+v", st)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if st := fetchNow(t, svc, "f"); st.NotModified || st.New != 1 {
		t.Fatalf("second run: %+v", st)
	}
	if st := fetchNow(t, svc, "f"); !st.NotModified {
		t.Errorf("third run, all items done, should be a 304: %+v", st)
	}
}

// Ensure that one run downloads at most 100 .torrent files and leaves the
// rest for the next run.
func TestService_TorrentFetchesPerRun(t *testing.T) {
	srv := newServer(t)
	var list strings.Builder
	for i := range 103 {
		tt := makeTorrent(t, fmt.Sprint("t", i), 100, false)
		path := fmt.Sprintf("/t/%d.torrent", i)
		srv.file(path, ctypeTorrent, tt.data)
		fmt.Fprintf(&list, "%s%s\n", srv.URL, path)
	}
	srv.file("/list", "text/plain", []byte(list.String()))
	svc := startService(t, feeds.Options{DB: openDB(t).DB, Clock: newFakeClock(), Jitter: noJitter,
		Feeds: config.Feeds{Schedule: "@hourly", Feed: []config.Feed{{Name: "l", URL: srv.URL + "/list", Kind: "list"}}}})
	if st := waitFetches(t, svc, "l", 1); st.New != 100 || st.Kept != 100 || st.Items != 103 {
		t.Fatalf("first run: %+v", st)
	}
	if st := fetchNow(t, svc, "l"); st.New != 3 || st.Kept != 103 {
		t.Fatalf("second run: %+v", st)
	}
	res, err := feeds.Test(t.Context(), testOpts(), config.Feed{URL: srv.URL + "/list", Kind: "list"})
	if err != nil {
		t.Fatal(err)
	}
	if last := res.Items[102]; last.Kept || !strings.HasPrefix(last.Why, "put off to the next run") {
		t.Errorf("item 103 in Test: %+v", last)
	}
}
