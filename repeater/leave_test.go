package repeater

import (
	"errors"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/config"
)

func TestShouldLeave(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := leavePolicy{grace: 10 * time.Second, idleFor: 20 * time.Second, window: 60 * time.Second, minRatio: 1, minMoved: 100, visitTime: time.Hour}
	busy := func(sec int, up, down int64) swarmSample {
		return swarmSample{at: t0.Add(time.Duration(sec) * time.Second), up: up, down: down, wanted: true, downloader: true, seeds: -1, leechers: -1}
	}
	tracker := func(sec int, seeds, leechers int64) swarmSample {
		s := busy(sec, 0, 0)
		s.seeds, s.leechers = seeds, leechers
		return s
	}
	quiet := func(sec int) swarmSample {
		s := busy(sec, 0, 0)
		s.wanted, s.downloader = false, true
		return s
	}
	noone := func(sec int) swarmSample { s := quiet(sec); s.downloader = false; return s }
	cases := []struct {
		name    string
		samples []swarmSample
		want    string
	}{
		{"busy", []swarmSample{busy(0, 0, 0), busy(30, 500, 100), busy(70, 900, 200)}, ""},
		{"in grace", []swarmSample{noone(0), noone(5)}, ""},
		{"no downloaders long enough", []swarmSample{busy(0, 0, 0), noone(15), noone(25), noone(36)}, LeftNoNeed},
		{"no downloaders too briefly", []swarmSample{busy(0, 0, 0), busy(30, 0, 0), noone(40), noone(45)}, ""},
		{"nothing wanted", []swarmSample{busy(0, 0, 0), quiet(15), quiet(25), quiet(36)}, LeftIdle},
		{"low ratio over window", []swarmSample{busy(0, 0, 0), busy(30, 50, 200), busy(61, 90, 400)}, LeftLowRatio},
		{"low ratio but little moved", []swarmSample{busy(0, 0, 0), busy(61, 10, 50)}, ""},
		{"enough seeds long enough", []swarmSample{busy(0, 0, 0), tracker(15, 4, 3), tracker(25, 5, 3), tracker(36, 4, 2)}, LeftSeeded},
		{"enough seeds too briefly", []swarmSample{busy(0, 0, 0), tracker(15, 4, 3), tracker(25, 1, 3), tracker(36, 4, 2)}, ""},
		{"one seed per downloader, us not among them", []swarmSample{busy(0, 0, 0), tracker(15, 3, 3), tracker(25, 3, 3), tracker(36, 3, 3)}, ""},
		{"visit time", []swarmSample{busy(0, 0, 0), busy(3600, 1e9, 1)}, LeftTimeLimit},
	}
	for _, tc := range cases {
		if got := shouldLeave(p, t0, tc.samples); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Ensure that the leave rules leave an autopilot swarm but never a kept
// one (the owner's): with the same figures the kept swarm goes quiet for
// the same reason instead, and visit_time does not apply to it.
func TestJudgeSwarmKeptVsAuto(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := leavePolicy{grace: 10 * time.Second, idleFor: 20 * time.Second, window: 60 * time.Second, minRatio: 1, minMoved: 100, visitTime: time.Hour}
	at := func(sec int, f func(*swarmSample)) swarmSample {
		s := swarmSample{at: t0.Add(time.Duration(sec) * time.Second), wanted: true, downloader: true, seeds: -1, leechers: -1}
		if f != nil {
			f(&s)
		}
		return s
	}
	idle := func(s *swarmSample) { s.wanted, s.downloader = false, false }
	unwanted := func(s *swarmSample) { s.wanted = false }
	seeded := func(s *swarmSample) { s.seeds, s.leechers = 5, 2 }
	for _, tc := range []struct {
		name      string
		samples   []swarmSample
		auto      string // the autopilot's swarm: left for this
		keptQuiet string // the owner's: quiet for this, never left
	}{
		{"no downloaders", []swarmSample{at(0, nil), at(15, idle), at(25, idle), at(36, idle)}, LeftNoNeed, LeftNoNeed},
		{"nothing wanted", []swarmSample{at(0, nil), at(15, unwanted), at(25, unwanted), at(36, unwanted)}, LeftIdle, LeftIdle},
		{"enough seeds", []swarmSample{at(0, nil), at(15, seeded), at(25, seeded), at(36, seeded)}, LeftSeeded, LeftSeeded},
		{"ratio too low", []swarmSample{at(0, nil), at(30, func(s *swarmSample) { s.up, s.down = 50, 200 }),
			at(61, func(s *swarmSample) { s.up, s.down = 90, 400 })}, LeftLowRatio, LeftLowRatio},
		{"visit time", []swarmSample{at(0, nil), at(3600, func(s *swarmSample) { s.up, s.down = 1e9, 1 })}, LeftTimeLimit, ""},
		{"visit time and idle", []swarmSample{at(3570, idle), at(3580, idle), at(3600, idle)}, LeftTimeLimit, LeftNoNeed},
		{"busy", []swarmSample{at(0, nil), at(30, nil), at(70, nil)}, "", ""},
	} {
		if leave, quiet := judgeSwarm(p, false, t0, tc.samples); leave != tc.auto || quiet != "" {
			t.Errorf("%s, autopilot's swarm: leave %q quiet %q, want leave %q", tc.name, leave, quiet, tc.auto)
		}
		if leave, quiet := judgeSwarm(p, true, t0, tc.samples); leave != "" || quiet != tc.keptQuiet {
			t.Errorf("%s, owner's swarm: leave %q quiet %q, want quiet %q and never leave", tc.name, leave, quiet, tc.keptQuiet)
		}
	}
}

// Ensure a swarm whose downloaders are all done is left by itself, with
// an honest visit, and that max_swarms is enforced.
func TestRepeaterLeavesAndLimits(t *testing.T) {
	seeder, mi, _ := seeding(t, 4<<20, false)

	cfg := config.Default()
	cfg.Cache.Size, cfg.Repeater.SwarmCache, cfg.Repeater.MaxSwarms = 8<<20, 8<<20, 1
	visits := make(chan Visit, 1)
	r, err := New(Options{Peer: testPeer(t, "127.0.0.1"), Cache: cfg.Cache, Repeater: cfg.Repeater, Tick: 50 * time.Millisecond,
		OnLeave: func(v Visit) { visits <- v },
		Leave:   LeavePolicy{Grace: 300 * time.Millisecond, IdleFor: 500 * time.Millisecond, Sample: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sw, err := r.Join(torrent.TorrentSpecFromMetaInfo(mi))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := makeTorrent(t, t.TempDir(), 1<<20, 256<<10)
	if _, err := r.Join(torrent.TorrentSpecFromMetaInfo(other)); !errors.Is(err, ErrTooManySwarms) {
		t.Errorf("second swarm with max_swarms 1: %v", err)
	}
	sw.AddPeers([]torrent.PeerInfo{{Addr: seeder.listener.Addr(), Trusted: true}})
	lc, _ := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(t.TempDir())})
	defer lc.Close()
	lt, _ := lc.AddTorrent(mi)
	lt.DownloadAll()
	lt.AddPeers([]torrent.PeerInfo{{Addr: r.Client().listener.Addr(), Trusted: true}})
	select {
	case v := <-visits:
		if v.Reason != LeftNoNeed || v.Uploaded < 4<<20 || v.Downloaded < 4<<20 || v.PeersServed != 1 || v.InfoHash != sw.InfoHash() {
			t.Errorf("visit %+v", v)
		}
		if !lt.Complete().Bool() {
			t.Error("left before the leecher finished")
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("never left; leecher at %d/%d", lt.BytesCompleted(), lt.Length())
	}
	if r.Swarm(sw.InfoHash()) != nil {
		t.Error("swarm still registered after leaving")
	}
	if _, err := r.Join(torrent.TorrentSpecFromMetaInfo(other)); err != nil {
		t.Errorf("room after leaving: %v", err)
	}
}

// Ensure that a kept swarm outlives the leave rules: with no peers the
// autopilot's swarm is left for "no downloaders" while the kept one goes
// quiet, fetching nothing, and joining a served swarm with Keep makes it
// kept. A downloader and a source wake the quiet swarm, which then serves.
func TestRepeaterKeptSwarmGoesQuiet(t *testing.T) {
	cfg := config.Default()
	cfg.Cache.Size, cfg.Repeater.SwarmCache, cfg.Repeater.MaxSwarms = 8<<20, 8<<20, 3
	visits := make(chan Visit, 3)
	r, err := New(Options{Peer: testPeer(t, "127.0.0.1"), Cache: cfg.Cache, Repeater: cfg.Repeater, Tick: 20 * time.Millisecond,
		OnLeave: func(v Visit) { visits <- v },
		Leave:   LeavePolicy{Grace: 100 * time.Millisecond, IdleFor: 200 * time.Millisecond, Sample: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seeder, mi, _ := seeding(t, 2<<20, false)
	kept, err := r.JoinWith(torrent.TorrentSpecFromMetaInfo(mi), JoinOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	autoMI, _ := makeTorrent(t, t.TempDir(), 1<<20, 256<<10)
	auto, err := r.Join(torrent.TorrentSpecFromMetaInfo(autoMI))
	if err != nil {
		t.Fatal(err)
	}
	laterMI, _ := makeTorrent(t, t.TempDir(), 1<<20, 256<<10)
	if _, err := r.Join(torrent.TorrentSpecFromMetaInfo(laterMI)); err != nil {
		t.Fatal(err)
	}
	later, err := r.JoinWith(torrent.TorrentSpecFromMetaInfo(laterMI), JoinOptions{Keep: true})
	if err != nil || !later.Kept() || auto.Kept() || !kept.Kept() {
		t.Fatalf("kept: %v %v %v (%v)", kept.Kept(), auto.Kept(), later != nil && later.Kept(), err)
	}
	select {
	case v := <-visits:
		if v.InfoHash != auto.InfoHash() || v.Reason != LeftNoNeed {
			t.Fatalf("visit %+v, want the autopilot's swarm left for %q", v, LeftNoNeed)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the unkept swarm was never left")
	}
	time.Sleep(time.Second) // five times IdleFor
	for _, s := range []*Swarm{kept, later} {
		if r.Swarm(s.InfoHash()) != s {
			t.Fatalf("kept swarm %s was left", s.InfoHash())
		}
		why, since := s.Quiet()
		s.mu.Lock()
		pending := len(s.pending)
		s.mu.Unlock()
		if why != LeftNoNeed || since.IsZero() || pending > 1 {
			t.Errorf("kept swarm: quiet %q since %v, %d pieces pending", why, since, pending)
		}
	}
	select {
	case v := <-visits:
		t.Fatalf("left a kept swarm: %+v", v)
	default:
	}

	// A leecher dials in; the seed is known but not dialled while quiet.
	kept.AddPeers([]torrent.PeerInfo{{Addr: seeder.listener.Addr(), Trusted: true}})
	lc, _ := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(t.TempDir())})
	defer lc.Close()
	lt, _ := lc.AddTorrent(mi)
	lt.DownloadAll()
	lt.AddPeers([]torrent.PeerInfo{{Addr: r.Client().listener.Addr(), Trusted: true}})
	select {
	case <-lt.Complete().On():
	case <-time.After(60 * time.Second):
		why, _ := kept.Quiet()
		t.Fatalf("leecher at %d/%d; kept swarm quiet: %q", lt.BytesCompleted(), lt.Length(), why)
	}
	if why, _ := kept.Quiet(); why == LeftNoNeed {
		t.Errorf("still quiet for %q with a downloader connected", why)
	}
}
