package helper_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/master"
	"github.com/btslave/btslave/master/helper"
	"github.com/btslave/btslave/master/transmission"
	"github.com/btslave/btslave/repeater"
)

func trackerless(t *testing.T, mi *metainfo.MetaInfo) string {
	t.Helper()
	cp := *mi
	cp.Announce, cp.AnnounceList = "", nil
	path := filepath.Join(t.TempDir(), "no-tracker.torrent")
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

// Ensure that the helper brings a real Transmission master every piece it
// lacks: the master cannot reach the seed (Transmission never dials
// loopback peers and the seed does not either), so all it gets comes
// through the helper, which the daemon's Watcher/Sync path sets up from
// the master's own RPC. The master's copy verifies; the helper's counters
// show the bytes forwarded; pins are released once the master has the
// pieces; the helper leaves after the linger.
func TestHelpTransmissionMaster(t *testing.T) {
	lab.Require(t, "transmission-daemon")
	torrentPath, dataPath, ih, mi := lab.MakeTorrent(t, lab.TorrentOptions{Size: 8 << 20, PieceLength: 256 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	seed := lab.StartTransmission(t, lab.TransmissionOptions{DownloadDir: filepath.Dir(dataPath)})
	seedID, err := seed.AddTorrent(trackerless(t, mi), filepath.Dir(dataPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seed.WaitComplete(ctx, seedID); err != nil {
		t.Fatal(err)
	}
	mst := lab.StartTransmission(t, lab.TransmissionOptions{})
	mID, err := mst.AddTorrent(torrentPath, "")
	if err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.Cache.Size, cfg.Repeater.SwarmCache = 32<<20, 32<<20
	p := cfg.Peer
	p.Listen = config.Addr(net.JoinHostPort(lab.NextAddr().String(), "0"))
	p.IPv6 = false
	r, err := repeater.New(repeater.Options{Peer: p, Cache: cfg.Cache, Repeater: cfg.Repeater})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Nobody but the master downloads here: nothing to give back to.
	h := helper.New(helper.Options{Repeater: r, Linger: time.Second, Source: "owner", NoGiveBack: true})

	client := transmission.New(transmission.Options{URL: mst.RPCURL, PeerAddress: mst.Addr.String()})
	w := master.NewWatcher(master.WatchOptions{Client: client, Interval: 500 * time.Millisecond,
		OnPoll: func(ctx context.Context, ts []master.Torrent, peer netip.AddrPort) {
			h.Sync(ctx, ts, peer, nil, netip.AddrPort{})
		}})
	wctx, wcancel := context.WithCancel(ctx)
	wdone := make(chan struct{})
	go func() { w.Run(wctx); close(wdone) }()
	defer func() { wcancel(); <-wdone }()

	// The seed is the helper's alone to reach.
	var sw *repeater.Swarm
	for sw == nil && ctx.Err() == nil {
		sw = r.Swarm(mi.HashInfoBytes())
		time.Sleep(100 * time.Millisecond)
	}
	if sw == nil {
		t.Fatalf("the helper never joined the master's torrent; master state %+v", w.State())
	}
	sw.AddPeers([]torrent.PeerInfo{{Addr: &net.TCPAddr{IP: seed.Addr.AsSlice(), Port: seed.PeerPort}, Trusted: true}})

	start := time.Now()
	if _, err := mst.WaitComplete(ctx, mID); err != nil {
		t.Fatalf("master: %v; helper %+v", err, h.Stats())
	}
	t.Logf("master complete in %v through the helper", time.Since(start).Round(100*time.Millisecond))
	if !lab.VerifyFile(t, filepath.Join(mst.DownloadDir, "data.bin"), dataPath) {
		t.Error("the master's copy does not verify")
	}
	ms, ok := sw.Master()
	if !ok {
		t.Fatal("swarm helps no master")
	}
	t.Logf("helper: %+v", ms)
	if ms.ToMaster < 8<<20 {
		t.Errorf("forwarded %d bytes to the master, want the whole 8 MiB", ms.ToMaster)
	}
	// The master's completion is seen on the wire, pins released, then
	// the helper leaves after the linger.
	for ctx.Err() == nil && r.Swarm(mi.HashInfoBytes()) != nil {
		time.Sleep(200 * time.Millisecond)
	}
	if r.Swarm(mi.HashInfoBytes()) != nil {
		t.Errorf("still in the swarm after the master completed; stats %+v", h.Stats())
	}
	if st := w.State(); st.State != master.StateOK {
		t.Errorf("master state %+v", st)
	}
	if len(h.Stats()) != 0 {
		t.Errorf("helper still lists %+v", h.Stats())
	}
	_ = ih
}
