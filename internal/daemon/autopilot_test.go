package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/rank"
	"github.com/btslave/btslave/repeater"
	"github.com/btslave/btslave/repeater/scrape"
)

const (
	trackerA = "http://127.0.0.1:1/announce"
	trackerB = "udp://127.0.0.1:2/announce"
)

// fakeScraper answers from a table: tracker → hash → (seeders, incomplete).
type fakeScraper struct {
	mu    sync.Mutex
	at    time.Time
	figs  map[string]map[metainfo.Hash][2]int64
	errs  map[string]error
	calls []map[string][]metainfo.Hash
}

func (f *fakeScraper) set(tracker string, ih metainfo.Hash, seeders, incomplete int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.figs == nil {
		f.figs = map[string]map[metainfo.Hash][2]int64{}
	}
	if f.figs[tracker] == nil {
		f.figs[tracker] = map[metainfo.Hash][2]int64{}
	}
	f.figs[tracker][ih] = [2]int64{seeders, incomplete}
}

func (f *fakeScraper) ScrapeAll(_ context.Context, by map[string][]metainfo.Hash) map[string]scrape.TrackerResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, by)
	out := map[string]scrape.TrackerResult{}
	for u, hs := range by {
		if err := f.errs[u]; err != nil {
			out[u] = scrape.TrackerResult{Err: err}
			continue
		}
		res := map[metainfo.Hash]scrape.Result{}
		for _, h := range hs {
			v, ok := f.figs[u][h]
			res[h] = scrape.Result{Complete: v[0], Incomplete: v[1], Known: ok, Tracker: u, At: f.at}
		}
		out[u] = scrape.TrackerResult{Results: res}
	}
	return out
}

type fakeCatalog struct{ entries []feeds.Entry }

func (c *fakeCatalog) ListMeta() ([]feeds.Entry, error) { return c.entries, nil }

// fakeHost serves swarms in a map and records what the autopilot did.
type fakeHost struct {
	mu      sync.Mutex
	served  map[metainfo.Hash]servedSwarm
	joinErr map[metainfo.Hash]error
	now     func() time.Time
	log     []string
}

func (h *fakeHost) servedSwarms() []servedSwarm {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []servedSwarm
	for _, s := range h.served {
		out = append(out, s)
	}
	return out
}

func (h *fakeHost) joinEntry(e *feeds.Entry) (metainfo.Hash, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ih, _ := entryHash(e)
	if err := h.joinErr[ih]; err != nil {
		return ih, err
	}
	h.served[ih] = servedSwarm{ih: ih, name: e.Name, origin: rank.OriginAuto, joined: h.now(), trackers: []string{trackerA}}
	h.log = append(h.log, "join "+e.Name)
	return ih, nil
}

func (h *fakeHost) leaveAuto(ih metainfo.Hash, why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, fmt.Sprintf("leave %s (%s)", h.served[ih].name, why))
	delete(h.served, ih)
}

func (h *fakeHost) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.log
	h.log = nil
	return l
}

// autoRig is an autopilot on fakes, with a clock the test moves.
type autoRig struct {
	ap      *autopilot
	scraper *fakeScraper
	catalog *fakeCatalog
	host    *fakeHost
	now     time.Time
	names   map[string]metainfo.Hash
}

func newAutoRig(t *testing.T, slots int, mutate func(*config.Auto)) *autoRig {
	t.Helper()
	r := &autoRig{now: time.Unix(1_700_000_000, 0), names: map[string]metainfo.Hash{}}
	r.scraper = &fakeScraper{at: r.now}
	r.catalog = &fakeCatalog{}
	r.host = &fakeHost{served: map[metainfo.Hash]servedSwarm{}, joinErr: map[metainfo.Hash]error{}, now: func() time.Time { return r.now }}
	ac := config.Default().Auto
	ac.Settle = 0
	ac.MinStay = 0
	if mutate != nil {
		mutate(&ac)
	}
	r.ap = newAutopilot(autopilotOptions{Auto: ac, Slots: slots, TargetRatio: 4, Scraper: r.scraper, Catalog: r.catalog,
		Host: r.host, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return r.now }})
	return r
}

// add puts a torrent in the catalog with its tracker figures.
func (r *autoRig) add(name string, seeders, incomplete int64) metainfo.Hash {
	var ih metainfo.Hash
	copy(ih[:], fmt.Sprintf("%-20s", name))
	r.names[name] = ih
	r.catalog.entries = append(r.catalog.entries, feeds.Entry{InfoHashV1: ih.HexString(), Name: name,
		Trackers: [][]string{{trackerA}}, FirstSeen: r.now.Add(-time.Hour), Magnet: "magnet:?xt=urn:btih:" + ih.HexString()})
	r.scraper.set(trackerA, ih, seeders, incomplete)
	return ih
}

func (r *autoRig) rank(t *testing.T, want ...string) api.Ranking {
	t.Helper()
	r.scraper.at = r.now
	r.ap.rerank(context.Background())
	got := r.host.take()
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("decisions %q, want %q\n%s", got, want, dumpRanking(r.ap.Ranking()))
	}
	return r.ap.Ranking()
}

func dumpRanking(rk api.Ranking) string {
	var b strings.Builder
	for _, s := range rk.Swarms {
		self, seen := "", ""
		if s.SelfSubtracted {
			self = " -us"
		}
		if s.Seen != nil {
			seen = fmt.Sprintf(", seen s/p/d %d/%d/%d", s.Seen.Seeds, s.Seen.PartialSeeds, s.Seen.Downloaders)
		}
		fmt.Fprintf(&b, "  %d %s score %.3f (S %d D %d %s%s%s) serving %v: %s %s\n", s.Rank, s.Name, s.Score,
			s.Seeders, s.Downloaders, s.Source, self, seen, s.Serving, s.State, s.Error)
	}
	return b.String()
}

func row(t *testing.T, rk api.Ranking, name string) api.RankedSwarm {
	t.Helper()
	for _, s := range rk.Swarms {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("%s not in the ranking:\n%s", name, dumpRanking(rk))
	return api.RankedSwarm{}
}

// Ensure the autopilot joins the neediest swarm, keeps it against a
// slightly needier one (hysteresis), moves when a newcomer beats it by the
// factor, and shows every score's parts.
func TestAutopilotJoinHysteresisMove(t *testing.T) {
	r := newAutoRig(t, 1, nil)
	r.add("healthy", 2, 1)
	needy := r.add("needy", 1, 3)
	middle := r.add("middle", 1, 2)
	rk := r.rank(t, "join needy")
	if rk.Swarms[0].Name != "needy" || rk.Swarms[0].State != "joining" || rk.AutoSwarms != 1 {
		t.Fatalf("ranking:\n%s", dumpRanking(rk))
	}
	n := row(t, rk, "needy")
	if n.Seeders != 1 || n.Downloaders != 3 || n.Source != "incomplete" || n.Need != 1.5 || n.Reach != 0.75 || n.Age != 1 || n.Score != 1.125 ||
		n.Tracker != trackerA || !n.ScrapedAt.Equal(r.now) || !n.Serving || n.Origin != "auto" {
		t.Errorf("needy row %+v", n)
	}
	if h := row(t, rk, "healthy"); !strings.Contains(h.State, "under min_score") || h.Serving || h.Score != 1.0/12 {
		t.Errorf("healthy row %+v", h)
	}

	// Our own announce now counts us at the tracker: it must not raise
	// the score.
	r.now = r.now.Add(time.Minute)
	r.host.mu.Lock()
	s := r.host.served[needy]
	s.announced = map[string]announceState{trackerA: {lastSuccess: r.now.Add(-30 * time.Second), lastEvent: "paused"}}
	r.host.served[needy] = s
	r.host.mu.Unlock()
	r.scraper.set(trackerA, needy, 1, 4)
	rk = r.rank(t)
	if n := row(t, rk, "needy"); !n.SelfSubtracted || n.Downloaders != 3 || n.Score != 1.125 || !strings.HasPrefix(n.State, "serving") {
		t.Errorf("needy with ourselves counted: %+v", n)
	}

	// Middle becomes needier, but not by the hysteresis: we stay.
	r.scraper.set(trackerA, middle, 2, 4) // 4/3 · 1 = 1.33 < 1.125 · 1.5
	r.now = r.now.Add(time.Minute)
	r.rank(t)
	r.scraper.set(trackerA, middle, 1, 4) // 2 · 1 = 2 > 1.6875
	r.now = r.now.Add(time.Minute)
	rk = r.rank(t, "leave needy (outranked)", "join middle")
	if n := row(t, rk, "needy"); !strings.Contains(n.State, "outranked by") {
		t.Errorf("needy state %q", n.State)
	}
	// Outranked is no cooldown: when middle's need goes, needy comes back.
	r.ap.noteLeft(needy, rank.LeftOutranked, r.now)
	r.scraper.set(trackerA, middle, 3, 0)
	r.now = r.now.Add(time.Minute)
	r.rank(t, "leave middle (need gone)", "join needy")
}

// Ensure a swarm left with nothing to do is not rejoined inside its
// cooldown, and is after it.
func TestAutopilotCooldown(t *testing.T) {
	r := newAutoRig(t, 1, func(a *config.Auto) { a.Cooldown = config.Duration(time.Hour) })
	a := r.add("a", 0, 5)
	r.add("b", 1, 2)
	r.rank(t, "join a")
	// The repeater leaves a by itself: no downloaders connected.
	r.host.leaveAuto(a, repeater.LeftNoNeed)
	r.host.take()
	r.ap.noteLeft(a, repeater.LeftNoNeed, r.now)
	r.now = r.now.Add(10 * time.Minute)
	rk := r.rank(t, "join b")
	if st := row(t, rk, "a").State; !strings.Contains(st, "cooldown 50m0s more") || !strings.Contains(st, "no downloaders") {
		t.Errorf("a's state %q", st)
	}
	r.now = r.now.Add(51 * time.Minute)
	r.rank(t, "leave b (outranked)", "join a")
}

// Ensure the owner's swarms are never left, take their slots first, and a
// swarm that cannot be joined is not tried again at every round.
func TestAutopilotOwnerAndFailures(t *testing.T) {
	r := newAutoRig(t, 2, nil)
	own := r.add("own", 5, 0) // nobody needs it; the owner wants it anyway
	r.host.served[own] = servedSwarm{ih: own, name: "own", origin: rank.OriginOwner, trackers: []string{trackerA}}
	broken := r.add("broken", 0, 9)
	r.host.joinErr[broken] = errors.New("bad .torrent")
	r.add("ok", 0, 4)
	r.add("also", 0, 3)
	rk := r.rank(t, "join ok")
	if st := row(t, rk, "broken").State; !strings.Contains(st, "join failed") {
		t.Errorf("broken state %q", st)
	}
	if st := row(t, rk, "own").State; st != "serving for the owner" {
		t.Errorf("own state %q", st)
	}
	if rk.OwnerSwarms != 1 || rk.AutoSwarms != 1 {
		t.Errorf("owner %d auto %d", rk.OwnerSwarms, rk.AutoSwarms)
	}
	r.now = r.now.Add(time.Minute)
	rk = r.rank(t)
	if st := row(t, rk, "broken").State; !strings.Contains(st, "cooldown") || !strings.Contains(st, "bad .torrent") {
		t.Errorf("broken not cooling down: %q", st)
	}
	// The owner adds another swarm: the autopilot's one makes room.
	other := r.add("other-own", 9, 0)
	r.host.served[other] = servedSwarm{ih: other, name: "other-own", origin: rank.OriginOwner}
	r.rank(t, "leave ok (room for the owner's swarms)")
	if ih, ok := r.ap.weakest(); ok {
		t.Errorf("weakest %x with no autopilot swarm", ih)
	}
}

// Ensure figures come from the tracker that sees the most, a failing
// tracker spoils nothing else, torznab figures stand in when no tracker
// answers, and what we see of our peers corrects an incomplete count.
func TestAutopilotFigures(t *testing.T) {
	r := newAutoRig(t, 0, nil) // no slots: rank only
	x := r.add("x", 1, 1)
	r.catalog.entries[0].Trackers = [][]string{{trackerA}, {trackerB}}
	r.scraper.set(trackerB, x, 2, 6)
	r.add("y", 0, 0)
	r.catalog.entries[1].Trackers = [][]string{{trackerB + "?y"}}
	r.scraper.errs = map[string]error{trackerB + "?y": errors.New("connection refused")}
	seeders, peers := 3, 10
	r.catalog.entries[1].Seeders, r.catalog.entries[1].Peers = &seeders, &peers
	var z metainfo.Hash
	copy(z[:], "z: the owner's, no feed")
	r.host.served[z] = servedSwarm{ih: z, name: "z", origin: rank.OriginOwner, seen: &rank.Seen{Seeds: 1, PartialSeeds: 1, Downloaders: 3}}
	rk := r.rank(t)
	if !strings.Contains(rk.Note, "max_swarms = 0") {
		t.Errorf("note %q", rk.Note)
	}
	if s := row(t, rk, "x"); s.Tracker != trackerB || s.Seeders != 2 || s.Downloaders != 6 {
		t.Errorf("x %+v", s)
	}
	if s := row(t, rk, "y"); s.Source != "feed" || s.Seeders != 3 || s.Downloaders != 7 || !strings.Contains(s.Error, "connection refused") {
		t.Errorf("y %+v", s)
	}
	if s := row(t, rk, "z"); s.Source != "seen" || s.Seen == nil || s.Downloaders != 3 || s.Seeders != 1 || s.InFeed != -1 {
		t.Errorf("z %+v", s)
	}
	st := r.ap.status()
	if st.Ranked != 3 || st.Scored != 3 || st.Trackers != 3 || st.Failing != 1 {
		t.Errorf("status %+v", st)
	}
}

// Ensure our standing at a tracker is read right: counted once an
// announce succeeded before the scrape, among downloaders while it said
// started.
func TestAnnounceCounted(t *testing.T) {
	at := time.Unix(1000, 0)
	for _, tc := range []struct {
		st         announceState
		self, down bool
	}{
		{announceState{}, false, false},
		{announceState{lastSuccess: at.Add(-time.Second), lastEvent: "started"}, true, true},
		{announceState{lastSuccess: at.Add(time.Second), lastEvent: "started"}, false, false},
		{announceState{lastSuccess: at.Add(time.Second), lastEvent: "paused"}, true, false},
		{announceState{lastSuccess: at.Add(-time.Second), lastEvent: ""}, true, false},
		{announceState{lastSuccess: at.Add(-time.Second), lastEvent: "", pausedRefused: true}, true, true},
	} {
		if self, down := tc.st.counted(at); self != tc.self || down != tc.down {
			t.Errorf("%+v: %v %v, want %v %v", tc.st, self, down, tc.self, tc.down)
		}
	}
}
