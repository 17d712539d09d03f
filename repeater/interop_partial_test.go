package repeater_test

import (
	"context"
	"expvar"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater"
)

// missingPieceRequests is anacrolix's count of requests it received for
// pieces it lacks: each one closes a connection.
func missingPieceRequests() int64 {
	if v, ok := expvar.Get("requestsReceivedForMissingPieces").(*expvar.Int); ok {
		return v.Value()
	}
	return 0
}

// trackerless writes a copy of mi without trackers (same info hash), so
// that a seed started from it never announces and only btslave finds it.
func trackerless(t *testing.T, mi *metainfo.MetaInfo) string {
	t.Helper()
	cp := *mi
	cp.Announce, cp.AnnounceList = "", nil
	path := filepath.Join(t.TempDir(), "seed-only.torrent")
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

// Ensure the partial seed works with real clients: btslave holds a 64 MiB
// torrent (256 KiB pieces) in a 16 MiB cache and serves Transmission, aria2
// and libtorrent leechers at once, fetching from a seed only it can reach.
// Evictions happen; every leecher's file verifies; no connection is closed
// for a piece we evicted; leechers other than libtorrent hear upload_only,
// while libtorrent, which drops an uninteresting upload-only peer, sees our
// extended handshake without it. Our handshakes offer BEP 56 compression
// (the defaults) to all of them: libtorrent logs "c" in what it received,
// and every connection stays ordinary.
func TestInteropPartialSeedSmallCache(t *testing.T) {
	lab.Require(t, "opentracker", "transmission-daemon", "aria2c", lab.PythonLibtorrent)
	ot := lab.StartOpentracker(t)
	torrentPath, dataPath, ih, mi := lab.MakeTorrent(t, lab.TorrentOptions{
		Size: 64 << 20, PieceLength: 256 << 10, Announce: []string{ot.HTTPAnnounce},
	})
	if err := ot.Whitelist(ih); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	seed := lab.StartTransmission(t, lab.TransmissionOptions{DownloadDir: filepath.Dir(dataPath)})
	seedID, err := seed.AddTorrent(trackerless(t, mi), filepath.Dir(dataPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seed.WaitComplete(ctx, seedID); err != nil {
		t.Fatal(err)
	}

	const budget = 16 << 20
	cfg := config.Default()
	cfg.Cache.Size, cfg.Repeater.SwarmCache = budget, budget
	btAddr := lab.NextAddr()
	r, err := repeater.New(repeater.Options{
		Peer: peerConfig(btAddr), Cache: cfg.Cache, Repeater: cfg.Repeater, Announce: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	missingBefore := missingPieceRequests()
	sw, err := r.Join(torrent.TorrentSpecFromMetaInfo(mi))
	if err != nil {
		t.Fatal(err)
	}
	tcp := func(a netip.Addr, port int) net.Addr { return &net.TCPAddr{IP: a.AsSlice(), Port: port} }
	btPort := r.Client().LocalPort()
	// Transmission never dials loopback peers (LAB.md): btslave dials the
	// seed and the Transmission leecher.
	sw.AddPeers([]torrent.PeerInfo{{Addr: tcp(seed.Addr, seed.PeerPort), Trusted: true}})
	checkOrdinary := watchOrdinary(t, r.Client(), sw.InfoHash(), "Transmission", "aria2", "libtorrent")

	trLeech := lab.StartTransmission(t, lab.TransmissionOptions{})
	trID, err := trLeech.AddTorrent(torrentPath, "")
	if err != nil {
		t.Fatal(err)
	}
	sw.AddPeers([]torrent.PeerInfo{{Addr: tcp(trLeech.Addr, trLeech.PeerPort), Trusted: true}})
	aria := lab.StartAria2(t, lab.Aria2Options{Torrent: torrentPath})
	lt := lab.StartLibtorrent(t, lab.LibtorrentOptions{
		Torrent: torrentPath, Peers: []netip.AddrPort{netip.AddrPortFrom(btAddr, uint16(btPort))},
	})

	// Watch the budget while the leechers work.
	var peakHeld int64
	toldUploadOnly := map[string]bool{} // client name → we said upload_only to it
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for ctx.Err() == nil && !(aria.Done() && trDone(trLeech, trID) && ltDone(lt)) {
			if h := r.Cache().Stats().Held; h > peakHeld {
				peakHeld = h
			}
			for _, p := range r.Client().Wire.Peers(sw.InfoHash()) {
				if p.ClientName != "" && !p.HaveAll {
					toldUploadOnly[p.ClientName] = toldUploadOnly[p.ClientName] || p.PartialSeed
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	start := time.Now()
	tr, err := trLeech.WaitComplete(ctx, trID)
	if err != nil {
		t.Fatalf("Transmission leecher: %v", err)
	}
	if err := aria.WaitDone(ctx); err != nil {
		t.Fatalf("aria2 leecher: %v", err)
	}
	if err := lt.WaitDone(ctx); err != nil {
		t.Fatalf("libtorrent leecher: %v", err)
	}
	elapsed := time.Since(start)
	<-watchDone
	checkOrdinary()

	name := filepath.Base(dataPath)
	lab.VerifyFile(t, filepath.Join(trLeech.DownloadDir, tr.Name), dataPath)
	lab.VerifyFile(t, filepath.Join(aria.Dir, name), dataPath)
	lab.VerifyFile(t, filepath.Join(lt.SavePath, name), dataPath)

	cs := r.Cache().Stats()
	ws := r.Client().Wire.Stats()
	tot := r.Client().Wire.Totals(sw.InfoHash())
	t.Logf("3 leechers done in %v; btslave down %d up %d (ratio %.2f); cache peak %d of %d, evictions %d; wire %+v; swarm %+v",
		elapsed.Round(time.Millisecond), tot.BytesDown, tot.BytesUp, float64(tot.BytesUp)/float64(max(tot.BytesDown, 1)),
		peakHeld, budget, cs.Evictions, ws, sw.Stats())
	if cs.Evictions == 0 {
		t.Error("no evictions: the cache bound was never exercised")
	}
	if peakHeld > budget {
		t.Errorf("cache held %d bytes, over its %d budget", peakHeld, budget)
	}
	if d := missingPieceRequests() - missingBefore; d != 0 {
		t.Errorf("anacrolix saw %d requests for pieces we lack, and closed a connection for each", d)
	}
	// btslave's own announcer put it on the tracker (aria2 found it there).
	if ann := sw.Announcer(); ann == nil || len(ann.Status()) == 0 || ann.Status()[0].LastSuccess.IsZero() {
		t.Errorf("btslave's announcer did not reach the tracker: %+v", ann)
	}
	if ws.Malformed != 0 {
		t.Errorf("%d connections closed for malformed input", ws.Malformed)
	}
	if tot.BytesUp <= tot.BytesDown {
		t.Errorf("btslave uploaded %d <= downloaded %d", tot.BytesUp, tot.BytesDown)
	}
	// libtorrent logs each extended handshake it receives ("<==").
	btPeer := netip.AddrPortFrom(btAddr, uint16(btPort)).String()
	var saw []string
	for _, h := range lt.ExtendedHandshakes() {
		if strings.Contains(h.Message, "<==") && strings.HasPrefix(h.Peer, btAddr.String()+":") {
			saw = append(saw, h.Message)
			if strings.Contains(h.Message, "'upload_only': 1") {
				t.Errorf("libtorrent heard upload_only: 1 from btslave (%s): %s", btPeer, h.Message)
			}
			if !strings.Contains(h.Message, "'c': {") || !strings.Contains(h.Message, "'zstd': 2") {
				t.Errorf("libtorrent did not read BEP 56's c from btslave (%s): %s", btPeer, h.Message)
			}
		}
	}
	if len(saw) == 0 {
		t.Errorf("libtorrent logged no extended handshake from btslave (%s)", btPeer)
	}
	// The others did hear it.
	told := 0
	for name, said := range toldUploadOnly {
		if said {
			told++
		} else if !strings.Contains(name, "libtorrent") {
			t.Errorf("btslave never said upload_only to leecher %q", name)
		}
	}
	if told == 0 {
		t.Errorf("btslave said upload_only to no leecher: %v", toldUploadOnly)
	}
}

func trDone(tr *lab.Transmission, id int) bool {
	st, err := tr.Torrent(id)
	return err == nil && st.LeftUntilDone == 0 && st.PercentDone >= 1
}

func ltDone(lt *lab.Libtorrent) bool {
	st, ok := lt.Status()
	return ok && st.IsFinished
}
