package repeater_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater"
)

// Ensure the repeater leaves a swarm that no longer needs help: opentracker
// counts three seeds (announced by the test) for one aria2 downloader, so
// btslave, which serves that downloader from a seed only it can reach,
// leaves with "enough seeds" once that has lasted IdleFor.
func TestInteropLeavesWellSeededSwarm(t *testing.T) {
	lab.Require(t, "opentracker", "transmission-daemon", "aria2c")
	ot := lab.StartOpentracker(t)
	torrentPath, dataPath, ih, mi := lab.MakeTorrent(t, lab.TorrentOptions{
		Size: 8 << 20, PieceLength: 256 << 10, Announce: []string{ot.HTTPAnnounce},
	})
	if err := ot.Whitelist(ih); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	seed := lab.StartTransmission(t, lab.TransmissionOptions{DownloadDir: filepath.Dir(dataPath)})
	seedID, err := seed.AddTorrent(trackerless(t, mi), filepath.Dir(dataPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seed.WaitComplete(ctx, seedID); err != nil {
		t.Fatal(err)
	}
	// Three seeds the tracker counts (their ports are closed: the count
	// is what matters), and a slow downloader.
	for i := range 3 {
		if _, err := ot.Announce(lab.Announce{InfoHash: ih, PeerID: fmt.Sprintf("-XX0000-seed%08d", i), Port: 9 + i, Event: "started"}); err != nil {
			t.Fatal(err)
		}
	}
	lab.StartAria2(t, lab.Aria2Options{Torrent: torrentPath, DownloadLimit: 32 << 10})
	if _, err := ot.WaitScrape(ctx, ih, func(s lab.ScrapeResult) bool { return s.Complete >= 3 && s.Incomplete >= 1 }); err != nil {
		t.Fatalf("the tracker never counted the seeds and the downloader: %v", err)
	}

	visits := make(chan repeater.Visit, 1)
	cfg := config.Default()
	r, err := repeater.New(repeater.Options{
		Peer: peerConfig(lab.NextAddr()), Cache: cfg.Cache, Repeater: cfg.Repeater, Announce: true,
		OnLeave: func(v repeater.Visit) { visits <- v },
		Leave:   repeater.LeavePolicy{Grace: time.Second, IdleFor: 3 * time.Second, Sample: 250 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sw, err := r.Join(torrent.TorrentSpecFromMetaInfo(mi))
	if err != nil {
		t.Fatal(err)
	}
	sw.AddPeers([]torrent.PeerInfo{{Addr: &net.TCPAddr{IP: seed.Addr.AsSlice(), Port: seed.PeerPort}, Trusted: true}})
	select {
	case v := <-visits:
		if v.Reason != repeater.LeftSeeded {
			t.Errorf("left for %q, want %q; visit %+v; tracker %+v", v.Reason, repeater.LeftSeeded, v, sw.Announcer().Status())
		}
		t.Logf("left after %v: %q (up %d, down %d)", v.Left.Sub(v.Joined).Round(time.Millisecond), v.Reason, v.Uploaded, v.Downloaded)
	case <-ctx.Done():
		t.Fatalf("still in a swarm of 3 seeds for 1 downloader; tracker %+v", sw.Announcer().Status())
	}
}
