package announce_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/repeater/announce"
)

// fakeTracker is an HTTP tracker on 127.0.0.1 whose replies come from
// reply; it records every request's query.
type fakeTracker struct {
	srv   *httptest.Server
	reply func(q url.Values) (status int, body string)

	mu   sync.Mutex
	reqs []url.Values
	at   []time.Time
}

func startFake(t testing.TB, reply func(q url.Values) (int, string)) *fakeTracker {
	t.Helper()
	f := &fakeTracker{reply: reply}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r.URL.Query())
		f.at = append(f.at, time.Now())
		f.mu.Unlock()
		status, body := f.reply(r.URL.Query())
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTracker) url() string { return f.srv.URL + "/announce" }

func (f *fakeTracker) requests() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func (f *fakeTracker) events() []string {
	var out []string
	for _, q := range f.requests() {
		out = append(out, q.Get("event"))
	}
	return out
}

// okReply is a tracker reply with an interval of 1800 s (capped by the
// test options) and the given compact IPv4 peers.
func okReply(peers ...netip.AddrPort) string {
	var b []byte
	for _, p := range peers {
		a := p.Addr().As4()
		b = append(b, a[:]...)
		b = append(b, byte(p.Port()>>8), byte(p.Port()))
	}
	return "d8:completei3e10:incompletei4e8:intervali1800e5:peers" + itoa(len(b)) + ":" + string(b) + "e"
}

func itoa(n int) string { return strconv.Itoa(n) }

func failReply(reason string) string {
	return "d14:failure reason" + itoa(len(reason)) + ":" + reason + "e"
}

var testHash = metainfo.Hash{0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 0x2b}

// fastOptions are Options with millisecond schedules for tests.
func fastOptions(trackers ...string) announce.Options {
	o := announce.Options{
		InfoHash:        testHash,
		PeerID:          [20]byte([]byte("-BL0001-abcdefghijkl")),
		Port:            6881,
		Stats:           func() (int64, int64, int64) { return 1234, 567, 89000 },
		PartialSeed:     func() bool { return true },
		MinInterval:     50 * time.Millisecond,
		MaxInterval:     100 * time.Millisecond,
		DefaultInterval: 100 * time.Millisecond,
		BackoffMin:      50 * time.Millisecond,
		BackoffMax:      200 * time.Millisecond,
		AnnounceTimeout: 300 * time.Millisecond,
		StopTimeout:     500 * time.Millisecond,
	}
	for _, tr := range trackers {
		o.Trackers = append(o.Trackers, []string{tr})
	}
	return o
}

// runFor runs a for d, cancels it and returns how long Run took to return
// after the cancel.
func runFor(t *testing.T, a *announce.Announcer, d time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	time.Sleep(d)
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return 5 s after cancel")
	}
	return time.Since(start)
}

func mustNew(t *testing.T, o announce.Options) *announce.Announcer {
	t.Helper()
	a, err := announce.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Ensure that a tracker accepting paused gets started, then paused on every
// periodic announce, then stopped, with honest figures.
func TestHTTP_PausedAccepted(t *testing.T) {
	f := startFake(t, func(url.Values) (int, string) { return 200, okReply() })
	a := mustNew(t, fastOptions(f.url()))
	runFor(t, a, 450*time.Millisecond)

	ev := f.events()
	if len(ev) < 4 {
		t.Fatalf("got %d announces %q, want >= 4", len(ev), ev)
	}
	if ev[0] != "started" || ev[len(ev)-1] != "stopped" {
		t.Errorf("events %q: want started first and stopped last", ev)
	}
	for _, e := range ev[1 : len(ev)-1] {
		if e != "paused" {
			t.Errorf("events %q: periodic announce without paused", ev)
			break
		}
	}
	for i, q := range f.requests() {
		want := map[string]string{
			"info_hash": string(testHash[:]), "peer_id": "-BL0001-abcdefghijkl", "port": "6881",
			"uploaded": "1234", "downloaded": "567", "left": "89000", "compact": "1",
		}
		for k, v := range want {
			if q.Get(k) != v {
				t.Errorf("request %d: %s=%q, want %q", i, k, q.Get(k), v)
			}
		}
		if q.Get("key") == "" || q.Get("numwant") == "" {
			t.Errorf("request %d: no key or numwant: %v", i, q)
		}
	}
	if a.PausedRefused(f.url()) {
		t.Error("PausedRefused after the tracker accepted paused")
	}
	st := a.Status()[0]
	if st.Seeders != 3 || st.Leechers != 4 || st.LastError != "" || st.LastEvent != "stopped" {
		t.Errorf("status %+v", st)
	}
}

// Ensure that a tracker replying "failure reason" to paused gets the
// announce again at once without paused, is remembered, and gets no
// paused afterwards.
func TestHTTP_PausedRefused(t *testing.T) {
	f := startFake(t, func(q url.Values) (int, string) {
		if q.Get("event") == "paused" {
			return 200, failReply("unknown event: 'paused'")
		}
		return 200, okReply()
	})
	a := mustNew(t, fastOptions(f.url()))
	runFor(t, a, 450*time.Millisecond)

	ev := f.events()
	if len(ev) < 5 || ev[0] != "started" || ev[1] != "paused" || ev[2] != "" {
		t.Fatalf("events %q: want started, paused, \"\" (retry), ...", ev)
	}
	if n := strings.Count(strings.Join(ev, ","), "paused"); n != 1 {
		t.Errorf("events %q: paused sent %d times, want once", ev, n)
	}
	if ev[len(ev)-1] != "stopped" {
		t.Errorf("events %q: want stopped last", ev)
	}
	f.mu.Lock()
	gap := f.at[2].Sub(f.at[1])
	f.mu.Unlock()
	if gap > 40*time.Millisecond { // the schedule's floor is 50 ms
		t.Errorf("retry without paused came %v after the refusal, want at once", gap)
	}
	if !a.PausedRefused(f.url()) || !a.Status()[0].PausedRefused {
		t.Error("refusal of paused not remembered")
	}
}

// Ensure that HTTP 400 to paused counts as a refusal too (anacrolix's
// tracker server), and that a refusal that is not about paused (failure
// for every announce) is not remembered and backs off.
func TestHTTP_RefusalKinds(t *testing.T) {
	bad := startFake(t, func(q url.Values) (int, string) {
		if q.Get("event") == "paused" {
			return 400, "bad event"
		}
		return 200, okReply()
	})
	never := startFake(t, func(q url.Values) (int, string) {
		return 200, failReply("torrent not allowed")
	})
	a := mustNew(t, fastOptions(bad.url(), never.url()))
	runFor(t, a, 450*time.Millisecond)
	if !a.PausedRefused(bad.url()) {
		t.Errorf("HTTP 400 to paused not remembered; events %q", bad.events())
	}
	if a.PausedRefused(never.url()) {
		t.Error("a tracker refusing everything was marked as refusing paused")
	}
	ev := never.events()
	// Backoff 50, 100, 200, 200 ms: about 4 started in 450 ms, never more
	// than 6.
	if len(ev) > 6 {
		t.Errorf("failing tracker got %d announces in 450 ms: %q", len(ev), ev)
	}
	for _, e := range ev[:len(ev)-1] {
		if e != "started" {
			t.Errorf("failing tracker events %q: want only started, then stopped", ev)
			break
		}
	}
	st := a.Status()[1]
	if st.LastError == "" || st.Failures < 2 || !strings.Contains(st.LastError, "torrent not allowed") {
		t.Errorf("failing tracker status %+v", st)
	}
}

// Ensure that garbage, hanging and closing trackers record errors and back
// off without disturbing a good tracker, and that shutdown stays bounded.
func TestHTTP_BrokenTrackers(t *testing.T) {
	good := startFake(t, func(url.Values) (int, string) { return 200, okReply() })
	garbage := startFake(t, func(url.Values) (int, string) { return 200, "<html>not bencode" })
	huge := startFake(t, func(url.Values) (int, string) { return 200, strings.Repeat("x", 2<<20) })
	var hangs atomic.Int32
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangs.Add(1)
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	var closes atomic.Int32
	closer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		closes.Add(1)
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	t.Cleanup(closer.Close)
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/announce"
	l.Close()

	a := mustNew(t, fastOptions(good.url(), garbage.url(), huge.url(), hang.URL+"/announce", closer.URL+"/announce", refused))
	stopIn := runFor(t, a, 700*time.Millisecond)
	if stopIn > 900*time.Millisecond { // StopTimeout 500 ms
		t.Errorf("Run took %v to return after cancel, want <= StopTimeout", stopIn)
	}
	if n := len(good.events()); n < 4 {
		t.Errorf("good tracker got %d announces in 700 ms, want >= 4 (one every 100 ms)", n)
	}
	for i, st := range a.Status()[1:] {
		if st.LastError == "" || st.Failures == 0 {
			t.Errorf("tracker %d (%s): no error recorded: %+v", i+1, st.URL, st)
		}
	}
	for name, n := range map[string]int{"garbage": len(garbage.events()), "huge": len(huge.events()), "closer": int(closes.Load())} {
		// 50+100+200+200 ms backoff: at most about 5 attempts (+1 stopped).
		if n > 7 {
			t.Errorf("%s tracker: %d requests in 700 ms, backoff not applied", name, n)
		}
	}
	// 300 ms timeout + 50, 100 ms backoff: at most 3 attempts + stopped.
	if n := hangs.Load(); n > 4 {
		t.Errorf("hanging tracker: %d requests", n)
	}
}

// Ensure that peers reach OnPeers without the repeater's own address.
func TestHTTP_Peers(t *testing.T) {
	self := netip.MustParseAddrPort("127.0.0.1:6881")
	other := netip.MustParseAddrPort("10.1.2.3:51413")
	f := startFake(t, func(url.Values) (int, string) { return 200, okReply(self, other) })
	o := fastOptions(f.url())
	o.LocalIP = netip.MustParseAddr("127.0.0.1")
	var mu sync.Mutex
	var got [][]netip.AddrPort
	o.OnPeers = func(p []netip.AddrPort) {
		mu.Lock()
		got = append(got, slices.Clone(p))
		mu.Unlock()
	}
	a := mustNew(t, o)
	runFor(t, a, 150*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("OnPeers never called")
	}
	if !slices.Equal(got[0], []netip.AddrPort{other}) {
		t.Errorf("OnPeers got %v, want [%v]", got[0], other)
	}
}

func TestNew_Invalid(t *testing.T) {
	cases := []struct {
		name string
		edit func(*announce.Options)
	}{
		{"no stats", func(o *announce.Options) { o.Stats = nil }},
		{"port 0", func(o *announce.Options) { o.Port = 0 }},
		{"zero hash", func(o *announce.Options) { o.InfoHash = metainfo.Hash{} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := fastOptions("http://127.0.0.1:1/announce")
			c.edit(&o)
			if _, err := announce.New(o); err == nil {
				t.Error("New accepted invalid options")
			}
		})
	}
}

// Ensure a new swarm asks the tracker again soon after joining (the
// early announces), never sooner than the tracker's min interval, and
// then keeps the tracker's interval.
func TestHTTP_EarlyAnnounces(t *testing.T) {
	f := startFake(t, func(url.Values) (int, string) {
		return 200, "d8:completei1e10:incompletei1e8:intervali1800e12:min intervali0e5:peers0:e"
	})
	o := fastOptions(f.url())
	o.MinInterval, o.MaxInterval = 40*time.Millisecond, time.Hour
	o.EarlyAnnounces = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	runFor(t, mustNew(t, o), 900*time.Millisecond)
	f.mu.Lock()
	at := slices.Clone(f.at)
	f.mu.Unlock()
	// started, two early ones, then nothing until the 1800 s interval; and stopped.
	if len(at) != 4 {
		t.Fatalf("%d announces (%v), want started, 2 early and stopped", len(at), f.events())
	}
	if d := at[1].Sub(at[0]); d < 90*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("first early announce after %v, want ~100ms", d)
	}
	if d := at[2].Sub(at[1]); d < 190*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("second early announce after %v, want ~200ms", d)
	}

	// A tracker's min interval wins over an early announce.
	g := startFake(t, func(url.Values) (int, string) {
		return 200, "d8:intervali1800e12:min intervali1e5:peers0:e"
	})
	o = fastOptions(g.url())
	o.MinInterval, o.MaxInterval = 40*time.Millisecond, time.Hour
	o.EarlyAnnounces = []time.Duration{50 * time.Millisecond}
	runFor(t, mustNew(t, o), 600*time.Millisecond)
	if ev := g.events(); len(ev) != 2 {
		t.Errorf("announces %v within 0.6 s despite a 1 s min interval, want started and stopped", ev)
	}
}
