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
