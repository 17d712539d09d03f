package scrape

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"golang.org/x/time/rate"
)

// Ensure that New rejects inconsistent options and fills in defaults.
func TestNew_Options(t *testing.T) {
	for _, o := range []Options{
		{Rate: -1},
		{BackoffMin: time.Hour, BackoffMax: time.Minute},
		{Timeout: -time.Second},
		{UDPTimeout: -time.Second},
	} {
		if _, err := New(o); !errors.Is(err, ErrOptions) {
			t.Errorf("New(%+v): %v, want ErrOptions", o, err)
		}
	}
	s := mustNew(t, Options{})
	o := s.o
	if o.Timeout != DefaultTimeout || o.UDPTimeout != DefaultUDPTimeout || o.UDPRetries != DefaultUDPRetries ||
		o.Concurrency != DefaultConcurrency || o.MaxAge != DefaultMaxAge || o.HTTPBatch != DefaultHTTPBatch ||
		o.BackoffMin != DefaultBackoffMin || o.BackoffMax != DefaultBackoffMax || o.Rate != 0 {
		t.Errorf("defaults not filled in: %+v", o)
	}
	if s2 := mustNew(t, Options{UDPRetries: -1}); s2.o.UDPRetries != 0 {
		t.Errorf("UDPRetries -1 gave %d, want 0", s2.o.UDPRetries)
	}
}

// Ensure that the backoff doubles from BackoffMin up to BackoffMax.
func TestBackoffSchedule(t *testing.T) {
	s := mustNew(t, Options{})
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := s.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := s.backoff(1000); got != time.Hour {
		t.Errorf("backoff(1000) = %v", got)
	}
}

// Ensure that fresh results come from the cache without traffic, keep
// their At, and are fetched again once older than MaxAge; only the
// missing hashes are asked for.
func TestCache(t *testing.T) {
	f := startFakeHTTP(t, nil)
	o := fastOptions()
	o.MaxAge = 300 * time.Millisecond
	s := mustNew(t, o)
	hs := testHashes(3)
	first, err := s.Scrape(context.Background(), f.url(), hs[:2])
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Scrape(context.Background(), f.url(), hs)
	if err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || len(reqs[1].URL.Query()["info_hash"]) != 1 {
		t.Fatalf("%d requests (second with %d hashes); want 2, the second for the one new hash", len(reqs), len(reqs[1].URL.Query()["info_hash"]))
	}
	for _, h := range hs[:2] {
		if !second[h].At.Equal(first[h].At) {
			t.Errorf("cached result At changed: %v, %v", first[h].At, second[h].At)
		}
		if a := second[h].Age(); a <= 0 || a > time.Second {
			t.Errorf("Age %v", a)
		}
	}
	checkResult(t, hs[2], second[hs[2]], true)
	if st := s.Status(); len(st) != 1 || st[0].Cached != 3 {
		t.Errorf("status %+v, want 3 cached", st)
	}
	time.Sleep(o.MaxAge)
	third, err := s.Scrape(context.Background(), f.url(), hs)
	if err != nil {
		t.Fatal(err)
	}
	if reqs := f.requests(); len(reqs) != 3 || len(reqs[2].URL.Query()["info_hash"]) != 3 {
		t.Errorf("after MaxAge: %d requests; want a third for all 3 hashes", len(reqs))
	}
	if !third[hs[0]].At.After(first[hs[0]].At) {
		t.Error("stale result not refreshed")
	}
}

// Ensure that a failing tracker is backed off exponentially: Scrape
// returns ErrBackoff at once without traffic (but with fresh cached
// results), Status shows it, and a success resets it.
func TestBackoff(t *testing.T) {
	var failing atomic.Bool
	f := startFakeHTTP(t, nil)
	f.reply = func(r *http.Request) (int, string) {
		if failing.Load() {
			return 500, "boom"
		}
		return 200, f.goodBody(r)
	}
	o := fastOptions()
	o.BackoffMin, o.BackoffMax = 100*time.Millisecond, 250*time.Millisecond
	s := mustNew(t, o)
	cached := testHashes(1)
	if _, err := s.Scrape(context.Background(), f.url(), cached); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	hs := testHashes(3)[1:]
	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond} {
		n := len(f.requests())
		if _, err := s.Scrape(context.Background(), f.url(), hs); err == nil || errors.Is(err, ErrBackoff) || !strings.Contains(err.Error(), "500") {
			t.Fatalf("failure %d: %v, want the HTTP 500", i+1, err)
		}
		st := s.Status()[0]
		if st.Failures != i+1 || !strings.Contains(st.LastError, "500") {
			t.Errorf("status %+v, want %d failures and the 500", st, i+1)
		}
		if got := st.BackoffUntil.Sub(st.LastErrorAt); got != want {
			t.Errorf("failure %d: backoff %v, want %v", i+1, got, want)
		}
		start := time.Now()
		res, err := s.Scrape(context.Background(), f.url(), append(hs, cached...))
		if !errors.Is(err, ErrBackoff) || time.Since(start) > 50*time.Millisecond {
			t.Errorf("while backed off: %v after %v, want ErrBackoff at once", err, time.Since(start))
		}
		if _, ok := res[cached[0]]; !ok || len(res) != 1 {
			t.Errorf("while backed off: %d results, want the cached one", len(res))
		}
		if _, err := s.Scrape(context.Background(), f.url(), cached); err != nil {
			t.Errorf("all cached while backed off: %v, want no error", err)
		}
		if got := len(f.requests()); got != n+1 {
			t.Errorf("%d requests while backed off, want none", got-n-1)
		}
		time.Sleep(time.Until(st.BackoffUntil))
	}
	failing.Store(false)
	if _, err := s.Scrape(context.Background(), f.url(), hs); err != nil {
		t.Fatal(err)
	}
	st := s.Status()[0]
	if st.Failures != 0 || !st.BackoffUntil.IsZero() || st.LastError != "" || st.LastOK.IsZero() {
		t.Errorf("after a success: %+v", st)
	}
}

// Ensure that a call cancelled by its caller does not back the tracker off.
func TestCancelNotAFailure(t *testing.T) {
	f := startFakeHTTP(t, func(f *fakeHTTP) { f.delay = 300 * time.Millisecond })
	s := mustNew(t, fastOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Scrape(ctx, f.url(), testHashes(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the caller's deadline", err)
	}
	if st := s.Status()[0]; st.Failures != 0 || !st.BackoffUntil.IsZero() {
		t.Errorf("status %+v: backed off for the caller's cancel", st)
	}
}

// Ensure that when one request fails, the results of the others are
// returned and cached, and the requests not yet sent are not.
func TestPartialResults(t *testing.T) {
	hs := testHashes(40)
	bad := hs[25]
	f := startFakeHTTP(t, nil)
	f.reply = func(r *http.Request) (int, string) {
		for _, v := range r.URL.Query()["info_hash"] {
			if v == string(bad[:]) {
				return 500, "boom"
			}
		}
		return 200, f.goodBody(r)
	}
	o := fastOptions()
	o.HTTPBatch, o.Concurrency = 5, 1
	s := mustNew(t, o)
	res, err := s.Scrape(context.Background(), f.url(), hs)
	if err == nil {
		t.Fatal("no error")
	}
	if len(res) != 25 {
		t.Errorf("%d results, want the 25 of the 5 batches before the bad one", len(res))
	}
	for _, h := range hs[:25] {
		checkResult(t, h, res[h], true)
	}
	if n := len(f.requests()); n != 6 {
		t.Errorf("%d requests, want 6 (none after the failure)", n)
	}
	if st := s.Status()[0]; st.Cached != 25 {
		t.Errorf("%d cached, want 25", st.Cached)
	}
}

// Ensure that at most Concurrency requests are in flight to one tracker,
// over concurrent calls.
func TestConcurrencyLimit(t *testing.T) {
	f := startFakeHTTP(t, func(f *fakeHTTP) { f.delay = 30 * time.Millisecond })
	o := fastOptions()
	o.Concurrency, o.HTTPBatch = 3, 2
	s := mustNew(t, o)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			hs := testHashes(60)[i*20 : (i+1)*20]
			if _, err := s.Scrape(context.Background(), f.url(), hs); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxInflight != 3 || len(f.reqs) != 30 {
		t.Errorf("%d in flight at most over %d requests, want 3 over 30", f.maxInflight, len(f.reqs))
	}
}

// Ensure that Rate spaces requests to one tracker.
func TestRateLimit(t *testing.T) {
	f := startFakeHTTP(t, nil)
	o := fastOptions()
	o.Rate, o.Burst, o.HTTPBatch = rate.Limit(20), 1, 1
	s := mustNew(t, o)
	start := time.Now()
	if _, err := s.Scrape(context.Background(), f.url(), testHashes(5)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Errorf("5 requests at 20/s took %v, want >= 200 ms", d)
	}

	// A caller's deadline that ends while waiting for the limiter is not
	// the tracker's failure.
	o.Rate = 1
	s = mustNew(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := s.Scrape(ctx, f.url(), testHashes(3))
	if !errors.Is(err, context.DeadlineExceeded) || len(res) != 1 {
		t.Errorf("%d results, error %v; want 1 and the caller's deadline", len(res), err)
	}
	if st := s.Status()[0]; st.Failures != 0 {
		t.Errorf("status %+v: backed off for the caller's deadline", st)
	}
}

// holdTCP listens on 127.0.0.1 and, per connection, either holds it open
// without a word or closes it at once.
func holdTCP(t *testing.T, hold bool) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !hold {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/announce"
}

// Ensure that trackers that reply garbage, hang, or close the connection
// (over HTTP and UDP) fail on their own, backed off, while good trackers
// scraped at the same time answer at their own speed.
func TestRobustness(t *testing.T) {
	goodHTTP := startFakeHTTP(t, nil)
	goodUDP := startFakeUDP(t, nil)
	garbageHTTP := startFakeHTTP(t, func(f *fakeHTTP) {
		f.reply = func(*http.Request) (int, string) { return 200, "\x00\x01d5:files garbage" }
	})
	garbageUDP := startFakeUDP(t, func(f *fakeUDP) {
		f.handle = func(f *fakeUDP, pkt []byte) [][]byte {
			n := 1 + rand.IntN(40)
			if n%12 == 0 {
				n++ // a multiple of 12 would parse as results: junk must not
			}
			junk := make([]byte, n)
			for i := range junk {
				junk[i] = byte(rand.Uint32())
			}
			// Junk, then junk after the right header.
			return [][]byte{junk, append(append([]byte(nil), pkt[8:16]...), junk...)}
		}
	})
	hangUDP := startFakeUDP(t, func(f *fakeUDP) {
		f.handle = func(*fakeUDP, []byte) [][]byte { return nil }
	})
	closedUDP := startFakeUDP(t, nil)
	closedUDPURL := closedUDP.url()
	closedUDP.pc.Close()

	goods := []string{goodHTTP.url(), goodUDP.url()}
	bads := []string{garbageHTTP.url(), holdTCP(t, true), holdTCP(t, false), garbageUDP.url(), hangUDP.url(), closedUDPURL}
	o := fastOptions()
	o.Timeout = time.Second
	o.UDPTimeout = 200 * time.Millisecond
	s := mustNew(t, o)
	hs := testHashes(100)
	by := map[string][]metainfo.Hash{}
	for _, u := range append(append([]string{}, goods...), bads...) {
		by[u] = hs
	}
	start := time.Now()
	all := s.ScrapeAll(context.Background(), by)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("ScrapeAll took %v; the hanging trackers should give up after 1 s", d)
	}
	status := map[string]TrackerStatus{}
	for _, st := range s.Status() {
		status[st.URL] = st
	}
	for _, u := range goods {
		r := all[u]
		if r.Err != nil {
			t.Errorf("%s: %v", u, r.Err)
			continue
		}
		for _, h := range hs {
			checkResult(t, h, r.Results[h], true)
		}
		if d := status[u].LastScrape.Sub(start); d > 700*time.Millisecond {
			t.Errorf("%s answered after %v, held up by the bad trackers", u, d)
		}
	}
	for _, u := range bads {
		r := all[u]
		if r.Err == nil || len(r.Results) != 0 {
			t.Errorf("%s: %d results, error %v; want an error only", u, len(r.Results), r.Err)
			continue
		}
		t.Logf("%s: %v", u, r.Err)
		if st := status[u]; st.Failures != 1 || st.BackoffUntil.IsZero() {
			t.Errorf("%s: status %+v, want backed off", u, st)
		}
	}
	// Backed off: the bad ones answer at once, the good ones from the cache.
	start = time.Now()
	all = s.ScrapeAll(context.Background(), by)
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("second ScrapeAll took %v", d)
	}
	for _, u := range bads {
		if !errors.Is(all[u].Err, ErrBackoff) {
			t.Errorf("%s: %v, want ErrBackoff", u, all[u].Err)
		}
	}
	for _, u := range goods {
		if all[u].Err != nil || len(all[u].Results) != len(hs) {
			t.Errorf("%s: %d results, %v", u, len(all[u].Results), all[u].Err)
		}
	}
}
