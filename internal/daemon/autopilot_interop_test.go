package daemon

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/internal/rank"
)

// labTorrent is one of the acceptance test's torrents.
type labTorrent struct {
	name, path, data, ih string
}

// servedLog polls the daemon's swarms and records when each was served.
type servedLog struct {
	mu    sync.Mutex
	first map[string]time.Duration // info hash → first seen served, since start
	now   []string
}

func (l *servedLog) watch(ctx context.Context, a *App, start time.Time) {
	for ctx.Err() == nil {
		var cur []string
		for _, s := range a.rep.Swarms() {
			cur = append(cur, s.InfoHash().HexString())
		}
		l.mu.Lock()
		for _, ih := range cur {
			if _, ok := l.first[ih]; !ok {
				l.first[ih] = time.Since(start)
			}
		}
		l.now = cur
		l.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitServing waits until exactly ih is served.
func (l *servedLog) waitServing(ctx context.Context, ih string) bool {
	for ctx.Err() == nil {
		l.mu.Lock()
		ok := slices.Equal(l.now, []string{ih})
		l.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

func (l *servedLog) ever(ih string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.first[ih]
	return ok
}

// Ensure the autopilot with real programs on loopback: a local RSS feed
// lists three torrents whose swarms (opentracker, a Transmission seed,
// aria2 and libtorrent clients) differ in seeders and leechers; the
// daemon, with only that feed and one slot, joins the neediest swarm and
// never the healthy one, then moves when another swarm's need grows past
// the hysteresis.
//
//	healthy: 2 seeds (Transmission, aria2) + 1 leecher  → 1/3 · 1/4 = 0.08
//	needy:   1 seed + 3 leechers                        → 3/2 · 3/4 = 1.13
//	middle:  1 seed + 1 leecher, later + 3 leechers     → 1/2 · 1/4 = 0.13, then 4/2 · 1 = 2.0 > 1.13 · 1.5
//
// Every leecher is download-capped so that none finishes during the test.
func TestInteropAutopilot(t *testing.T) {
	lab.Require(t, "opentracker", "transmission-daemon", "aria2c", lab.PythonLibtorrent)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ot := lab.StartOpentracker(t)

	tors := map[string]*labTorrent{}
	var hashes []string
	for _, name := range []string{"healthy", "needy", "middle"} {
		tp, dp, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Name: name + ".bin", Size: 16 << 20, Announce: []string{ot.HTTPAnnounce}})
		tors[name] = &labTorrent{name: name, path: tp, data: dp, ih: ih}
		hashes = append(hashes, ih)
	}
	if err := ot.Whitelist(hashes...); err != nil {
		t.Fatal(err)
	}

	// One Transmission seeds all three; aria2 seeds healthy too.
	seed := lab.StartTransmission(t, lab.TransmissionOptions{UploadLimit: 96 << 10})
	for _, name := range []string{"healthy", "needy", "middle"} {
		tr := tors[name]
		id, err := seed.AddTorrent(tr.path, filepath.Dir(tr.data))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := seed.WaitComplete(ctx, id); err != nil {
			t.Fatalf("Transmission did not verify %s: %v", name, err)
		}
	}
	lab.StartAria2(t, lab.Aria2Options{Torrent: tors["healthy"].path, Dir: filepath.Dir(tors["healthy"].data),
		SeedTime: lab.SeedForever, UploadLimit: 32 << 10})
	for name, want := range map[string]int{"healthy": 2, "needy": 1, "middle": 1} {
		if _, err := ot.WaitScrape(ctx, tors[name].ih, func(s lab.ScrapeResult) bool { return s.Complete >= want }); err != nil {
			t.Fatalf("%s: the seeds never announced: %v", name, err)
		}
	}
	// Leechers start after the seeds announced (else they would not hear
	// of them until their next announce).
	const leechDown, leechUp = 24 << 10, 8 << 10
	leech := func(name string, useLibtorrent bool) {
		t.Helper()
		if useLibtorrent {
			lab.StartLibtorrent(t, lab.LibtorrentOptions{Torrent: tors[name].path, DownloadLimit: leechDown, UploadLimit: leechUp})
		} else {
			lab.StartAria2(t, lab.Aria2Options{Torrent: tors[name].path, DownloadLimit: leechDown, UploadLimit: leechUp})
		}
	}
	leech("healthy", false)
	leech("needy", false)
	leech("needy", true)
	leech("needy", false)
	leech("middle", true)
	for name, want := range map[string]int{"healthy": 1, "needy": 3, "middle": 1} {
		if _, err := ot.WaitScrape(ctx, tors[name].ih, func(s lab.ScrapeResult) bool { return s.Incomplete >= want }); err != nil {
			t.Fatalf("%s: the leechers never announced: %v", name, err)
		}
	}
	setup := time.Since(start)

	// The feed: an RSS with the three .torrent files as enclosures.
	mux := http.NewServeMux()
	var items strings.Builder
	for _, name := range []string{"healthy", "needy", "middle"} {
		raw, err := os.ReadFile(tors[name].path)
		if err != nil {
			t.Fatal(err)
		}
		mux.HandleFunc("/t/"+name+".torrent", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-bittorrent")
			w.Write(raw)
		})
		fmt.Fprintf(&items, `<item><title>%s</title><enclosure url="/t/%s.torrent" type="application/x-bittorrent" length="%d"/></item>`,
			html.EscapeString(name), name, len(raw))
	}
	mux.HandleFunc("/rss", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rss+xml")
		fmt.Fprintf(w, `<?xml version="1.0"?><rss version="2.0"><channel><title>lab</title>%s</channel></rss>`, items.String())
	})
	feed := httptest.NewServer(mux) // on 127.0.0.1
	defer feed.Close()

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Peer.Listen, cfg.Peer.IPv6 = config.Addr(net.JoinHostPort(lab.NextAddr().String(), "0")), false
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Cache.Size = 32 << 20
	cfg.Repeater.MaxSwarms = 1
	cfg.Feeds.Jitter = 0
	cfg.Feeds.Feed = []config.Feed{{Name: "lab", URL: feed.URL + "/rss", Schedule: "@every 1m"}}
	cfg.Auto.Interval = config.Duration(2 * time.Second)
	cfg.Auto.MinStay = config.Duration(3 * time.Second)
	cfg.Auto.Settle = 0
	cfg.Auto.ScrapeMaxAge = 0
	cfg.Auto.ScrapeRate = 0
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuffer
	a, err := New(cfg, slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", logBuf.String())
		}
	}()
	daemonStart := time.Now()
	var served servedLog
	served.first = map[string]time.Duration{}
	go served.watch(runCtx, a, daemonStart)

	// 1. The neediest swarm is joined.
	if !served.waitServing(ctx, tors["needy"].ih) {
		t.Fatalf("the daemon never served only the needy swarm; ranking:\n%s", dumpRanking(a.Ranking(ctx)))
	}
	joined := time.Since(daemonStart)
	t.Logf("joined the needy swarm %.1fs after the daemon started; ranking:\n%s", joined.Seconds(), dumpRanking(a.Ranking(ctx)))
	rk := a.Ranking(ctx)
	if len(rk.Swarms) != 3 || rk.Swarms[0].InfoHash != tors["needy"].ih {
		t.Fatalf("ranking:\n%s", dumpRanking(rk))
	}
	for _, s := range rk.Swarms {
		if s.Source != "incomplete" || s.Tracker != ot.HTTPAnnounce {
			t.Errorf("%s: source %q tracker %q, want opentracker's incomplete", s.Name, s.Source, s.Tracker)
		}
	}
	// Once our own announce counts at the tracker, it is taken out, and
	// what we see of the peers joins in: the score stays.
	for {
		rk = a.Ranking(ctx)
		if n := rk.Swarms[0]; n.InfoHash == tors["needy"].ih && n.SelfSubtracted && n.Seen != nil && n.Seen.Downloaders > 0 {
			if n.Seeders != 1 || n.Downloaders != 3 || n.Score != 1.125 {
				t.Errorf("needy while served: %+v", n)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("our announce was never taken out of the needy swarm's figures:\n%s", dumpRanking(rk))
		}
		time.Sleep(200 * time.Millisecond)
	}
	counted := time.Since(daemonStart)
	t.Logf("needy while served, %.1fs after the start:\n%s", counted.Seconds(), dumpRanking(rk))

	// 2. Three more leechers make the middle swarm the neediest by more
	// than the hysteresis: the daemon moves there.
	leech("middle", false)
	leech("middle", true)
	leech("middle", false)
	if _, err := ot.WaitScrape(ctx, tors["middle"].ih, func(s lab.ScrapeResult) bool { return s.Incomplete >= 4 }); err != nil {
		t.Fatalf("middle: the new leechers never announced: %v", err)
	}
	needMoved := time.Since(daemonStart)
	if !served.waitServing(ctx, tors["middle"].ih) {
		t.Fatalf("the daemon did not move to the middle swarm; ranking:\n%s", dumpRanking(a.Ranking(ctx)))
	}
	moved := time.Since(daemonStart)
	rk = a.Ranking(ctx)
	t.Logf("moved to the middle swarm %.1fs after its leechers announced (%.1fs after start); ranking:\n%s",
		(moved - needMoved).Seconds(), moved.Seconds(), dumpRanking(rk))

	if served.ever(tors["healthy"].ih) {
		t.Error("the daemon served the healthy swarm")
	}
	var visit *api.Visit
	for _, v := range a.recentVisits(10) {
		if v.InfoHash == tors["needy"].ih {
			visit = &v
			break
		}
	}
	if visit == nil || visit.Reason != rank.LeftOutranked {
		t.Errorf("the needy swarm's visit %+v, want left %q", visit, rank.LeftOutranked)
	}
	if st := a.Status(ctx).Autopilot; st.Joins != 2 || st.Leaves != 1 {
		t.Errorf("autopilot status %+v, want 2 joins and 1 leave", st)
	}
	t.Logf("figures: setup %.1fs; daemon joined needy at +%.1fs, was counted there at +%.1fs; middle's need grew at +%.1fs, moved at +%.1fs; test %.1fs",
		setup.Seconds(), joined.Seconds(), counted.Seconds(), needMoved.Seconds(), moved.Seconds(), time.Since(start).Seconds())
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)
