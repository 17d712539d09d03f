package tracker_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater"
	"github.com/btslave/btslave/repeater/announce"
	"github.com/btslave/btslave/tracker"
)

// withAnnounce writes a copy of mi announcing to url only (same info
// hash), so that each client of one swarm can use the protocol it has.
func withAnnounce(t *testing.T, mi *metainfo.MetaInfo, url string) string {
	t.Helper()
	cp := *mi
	cp.Announce, cp.AnnounceList = url, nil
	path := filepath.Join(t.TempDir(), "t.torrent")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := cp.Write(f); err != nil {
		t.Fatal(err)
	}
	return path
}

func udpURL(tr *tracker.Tracker) string { return "udp://" + tr.UDPAddr().String() + "/announce" }

// Ensure real clients work with the tracker, sharing one Transmission
// seed: Transmission, aria2, libtorrent and qBittorrent finish a swarm
// through it (libtorrent and qBittorrent over UDP, the others over
// HTTP), and two synced trackers serve one swarm, a client of one
// finding its peers through the other, their scrapes agreeing within a
// sync round.
func TestInterop(t *testing.T) {
	t.Parallel() // beside TestInteropRepeaterPaused, which mostly waits
	lab.Require(t, "transmission-daemon", "aria2c", "qbittorrent-nox", lab.PythonLibtorrent)
	// Cancelled at cleanup, after the parallel subtests.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	seed := lab.StartTransmission(t, lab.TransmissionOptions{})

	t.Run("Swarm", func(t *testing.T) {
		t.Parallel()
		tr := startTracker(t, tracker.Options{})
		httpURL := tr.AnnounceURL()
		_, dataPath, ihHex, mi := lab.MakeTorrent(t, lab.TorrentOptions{Size: 2 << 20})
		var ih metainfo.Hash
		ih.FromHexString(ihHex)
		if _, err := seed.AddTorrent(withAnnounce(t, mi, httpURL), filepath.Dir(dataPath)); err != nil {
			t.Fatal(err)
		}
		// Leechers only once the seed is listed: Transmission dials no
		// loopback peer, they must find it.
		waitFor(t, 30*time.Second, "the seed's announce", func() bool {
			f, _ := httpScrape(t, tr, ih)
			return f[ih].Complete == 1
		})
		aria := lab.StartAria2(t, lab.Aria2Options{Torrent: withAnnounce(t, mi, httpURL)})
		lt := lab.StartLibtorrent(t, lab.LibtorrentOptions{Torrent: withAnnounce(t, mi, udpURL(tr))})
		qb := lab.StartQBittorrent(t, lab.QBittorrentOptions{})
		if err := qb.AddTorrent(withAnnounce(t, mi, udpURL(tr)), ""); err != nil {
			t.Fatal(err)
		}
		if err := aria.WaitDone(ctx); err != nil {
			t.Fatal(err)
		}
		if err := lt.WaitDone(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := qb.WaitComplete(ctx, ihHex); err != nil {
			t.Fatal(err)
		}
		lab.VerifyFile(t, filepath.Join(aria.Dir, "data.bin"), dataPath)
		lab.VerifyFile(t, filepath.Join(lt.SavePath, "data.bin"), dataPath)
		lab.VerifyFile(t, filepath.Join(qb.SavePath, "data.bin"), dataPath)
		// Three downloads counted, over both protocols.
		waitFor(t, 30*time.Second, "three completions", func() bool {
			f, _ := httpScrape(t, tr, ih)
			return f[ih].Downloaded == 3
		})
		st := tr.Stats()
		if st.UDPAnnounces == 0 || st.HTTPAnnounces == 0 || st.Malformed != 0 || st.BadConnID != 0 {
			t.Errorf("tracker stats %+v", st)
		}
	})

	t.Run("SyncedTrackers", func(t *testing.T) {
		t.Parallel()
		a, b := syncPair(t, []byte("the interop test's sync group key"), nil)
		_, dataPath, ihHex, mi := lab.MakeTorrent(t, lab.TorrentOptions{Size: 1 << 20})
		var ih metainfo.Hash
		ih.FromHexString(ihHex)
		if _, err := seed.AddTorrent(withAnnounce(t, mi, a.AnnounceURL()), filepath.Dir(dataPath)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the seed, announced to a, at b", func() bool {
			f, _ := httpScrape(t, b, ih)
			return f[ih].Complete == 1
		})
		// aria2 knows only b.
		aria := lab.StartAria2(t, lab.Aria2Options{Torrent: withAnnounce(t, mi, b.AnnounceURL())})
		if err := aria.WaitDone(ctx); err != nil {
			t.Fatal(err)
		}
		lab.VerifyFile(t, filepath.Join(aria.Dir, "data.bin"), dataPath)
		waitFor(t, 10*time.Second, "aria2's download counted at b", func() bool {
			f, _ := httpScrape(t, b, ih)
			return f[ih].Downloaded == 1
		})
		time.Sleep(2 * syncRound)
		waitFor(t, 2*time.Second, "equal scrapes", func() bool { _, _, ok := sameCounts(t, a, b, ih); return ok })
		ea, eb, _ := sameCounts(t, a, b, ih)
		if ea.Downloaded != 1 || ea.Complete < 1 {
			t.Errorf("scrapes a %+v b %+v: want aria2's download counted at both", ea, eb)
		}
	})
}

// Ensure that a btslave repeater, a partial seed, is counted as one once
// its announces say paused (from its second announce on: the first is
// "started"), and as a downloader before.
func TestInteropRepeaterPaused(t *testing.T) {
	t.Parallel()
	tr := startTracker(t, tracker.Options{Interval: 10 * time.Second})
	_, _, ihHex, mi := lab.MakeTorrent(t, lab.TorrentOptions{Size: 4 << 20})
	var ih metainfo.Hash
	ih.FromHexString(ihHex)
	cfg := config.Default()
	cfg.Cache.Size, cfg.Repeater.SwarmCache = 1<<20, 1<<20
	peer := cfg.Peer
	peer.Listen, peer.IPv6 = config.Addr(net.JoinHostPort(lab.NextAddr().String(), "0")), false
	r, err := repeater.New(repeater.Options{Peer: peer, Cache: cfg.Cache, Repeater: cfg.Repeater, Announce: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mi.Announce, mi.AnnounceList = tr.AnnounceURL(), nil
	sw, err := r.Join(torrent.TorrentSpecFromMetaInfo(mi))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the repeater's started announce", func() bool {
		f, _ := httpScrape(t, tr, ih)
		return f[ih].Downloaders == 1
	})
	// The announcer's shortest interval is 30 s.
	waitFor(t, 45*time.Second, "the repeater counted as a partial seed", func() bool {
		f, _ := httpScrape(t, tr, ih)
		return f[ih] == scrapeEntry{Incomplete: 1}
	})
	// The tracker counts the announce before the announcer has read the
	// reply and recorded it, so its status may lag a moment.
	var st []announce.TrackerStatus
	waitFor(t, 5*time.Second, "the announcer to record its paused announce", func() bool {
		st = sw.Announcer().Status()
		return len(st) == 1 && st[0].LastEvent == "paused"
	})
	if len(st) != 1 || st[0].LastEvent != "paused" || st[0].PausedRefused {
		t.Errorf("announcer status %+v", st)
	}
	if s := tr.Stats(); s.Partial != 1 || s.Downloaders != 0 {
		t.Errorf("tracker stats %+v", s)
	}
}
