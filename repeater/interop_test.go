package repeater_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater"
)

// peerConfig is [peer] for a btslave client on its own loopback address.
func peerConfig(ip netip.Addr) config.Peer {
	p := config.Default().Peer
	p.Listen = config.Addr(net.JoinHostPort(ip.String(), "0"))
	p.IPv6 = false
	return p
}

// Ensure that btslave's client interoperates with real programs: it
// downloads a 64 MiB torrent from a Transmission seed it finds through
// opentracker, then, with the seed gone, Transmission and aria2 download it
// back from btslave. Every copy must hash-verify. btslave offers BEP 56
// (its defaults) all along: the real clients see an ordinary connection
// and nothing is compressed.
func TestInteropDownloadAndServeBack(t *testing.T) {
	lab.Require(t, "opentracker", "transmission-daemon", "aria2c")
	ot := lab.StartOpentracker(t)
	torrentPath, dataPath, ih, mi := lab.MakeTorrent(t, lab.TorrentOptions{
		Size: 64 << 20, PieceLength: 256 << 10, Announce: []string{ot.HTTPAnnounce},
	})
	if err := ot.Whitelist(ih); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	seed := lab.StartTransmission(t, lab.TransmissionOptions{DownloadDir: filepath.Dir(dataPath)})
	seedID, err := seed.AddTorrent(torrentPath, filepath.Dir(dataPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seed.WaitComplete(ctx, seedID); err != nil {
		t.Fatalf("Transmission did not verify its seed data: %v", err)
	}
	if _, err := ot.WaitScrape(ctx, ih, func(s lab.ScrapeResult) bool { return s.Complete >= 1 }); err != nil {
		t.Fatalf("the seed never announced: %v", err)
	}

	// btslave finds the seed through the tracker (its own announce).
	dir := t.TempDir()
	cl, err := repeater.NewClient(repeater.ClientOptions{
		Peer: peerConfig(lab.NextAddr()), Storage: storage.NewFile(dir), Trackers: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	bt, err := cl.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	bt.DownloadAll()
	checkOrdinary := watchOrdinary(t, cl, bt.InfoHash(), "Transmission", "aria2")
	start := time.Now()
	waitTorrent(ctx, t, cl, bt, "btslave downloading from Transmission")
	t.Logf("btslave downloaded 64 MiB from Transmission in %v; wire %+v", time.Since(start).Round(time.Millisecond), cl.Wire.Stats())
	start = time.Now()
	got := filepath.Join(dir, filepath.Base(dataPath))
	if !lab.VerifyFile(t, got, dataPath) {
		t.Fatal("btslave's copy differs")
	}

	// Take the seed away: from now on btslave is the only source.
	if err := seed.Remove(seedID, false); err != nil {
		t.Fatal(err)
	}

	leech := lab.StartTransmission(t, lab.TransmissionOptions{})
	leechID, err := leech.AddTorrent(torrentPath, "")
	if err != nil {
		t.Fatal(err)
	}
	// Transmission never dials loopback peers (LAB.md), so btslave dials it.
	bt.AddPeers([]torrent.PeerInfo{{Addr: &net.TCPAddr{IP: leech.Addr.AsSlice(), Port: leech.PeerPort}, Trusted: true}})
	aria := lab.StartAria2(t, lab.Aria2Options{Torrent: torrentPath}) // finds btslave through the tracker

	tr, err := leech.WaitComplete(ctx, leechID)
	if err != nil {
		t.Fatalf("Transmission did not finish: %v", err)
	}
	if !lab.VerifyFile(t, filepath.Join(leech.DownloadDir, tr.Name), dataPath) {
		t.Error("Transmission's copy differs")
	}
	if err := aria.WaitDone(ctx); err != nil {
		t.Fatalf("aria2 did not finish: %v", err)
	}
	if !lab.VerifyFile(t, filepath.Join(aria.Dir, filepath.Base(dataPath)), dataPath) {
		t.Error("aria2's copy differs")
	}
	checkOrdinary()
	tot := cl.Wire.Totals(bt.InfoHash())
	// The leechers also trade with each other, but every byte came from
	// btslave at least once.
	if tot.BytesUp < 64<<20 {
		t.Errorf("btslave uploaded %d bytes, want at least one copy (%d)", tot.BytesUp, 64<<20)
	}
	t.Logf("Transmission and aria2 downloaded from btslave in %v; btslave: down %d, up %d bytes over %d connections",
		time.Since(start).Round(time.Millisecond), tot.BytesDown, tot.BytesUp, tot.Conns)
}

// watchOrdinary watches the connections of ih until the returned func is
// called, which checks that BEP 56 left real clients alone: our handshake
// offered compression to every one, none was ever compressed, none was
// closed as malformed, and clients whose names contain each of want were
// among them.
func watchOrdinary(t *testing.T, cl *repeater.Client, ih metainfo.Hash, want ...string) (check func()) {
	t.Helper()
	seen := map[string]bool{}
	var bad []string
	// A connection may show the client's extended handshake a moment
	// before ours has gone out (the client writes its own at once, as
	// qBittorrent does), so "offered" is judged over all of a
	// connection's snapshots, not each.
	type connKey struct{ remote, local string }
	unoffered := map[connKey]string{} // named, never seen offered
	offered := map[connKey]bool{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			for _, p := range cl.Wire.Peers(ih) {
				if p.ClientName == "" {
					continue // its extended handshake is not in yet
				}
				seen[p.ClientName] = true
				k := connKey{fmt.Sprint(p.Remote), fmt.Sprint(p.Local)}
				c := p.Compress
				if c.Offered {
					offered[k] = true
					delete(unoffered, k)
				} else if !offered[k] {
					unoffered[k] = fmt.Sprintf("%v (%s): %+v", p.Remote, p.ClientName, c)
				}
				if c.Out != "" || c.In != "" {
					bad = append(bad, fmt.Sprintf("%v (%s): %+v", p.Remote, p.ClientName, c))
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() {
		t.Helper()
		close(stop)
		<-done
		for _, b := range bad {
			t.Errorf("compression used with a real client: %s", b)
		}
		for _, b := range unoffered {
			t.Errorf("compression never offered to a real client: %s", b)
		}
		for _, w := range want {
			found := false
			for name := range seen {
				found = found || strings.Contains(name, w)
			}
			if !found {
				t.Errorf("no connection from %s seen (saw %v)", w, seen)
			}
		}
		if s := cl.Wire.Stats(); s.Compressed != 0 || s.CompressRefused != 0 || s.Malformed != 0 {
			t.Errorf("wire stats %+v: a real client compressed or broke", s)
		}
		t.Logf("BEP 56 offered to %v: ordinary connections", seen)
	}
}

func waitTorrent(ctx context.Context, t *testing.T, cl *repeater.Client, tt *torrent.Torrent, what string) {
	t.Helper()
	select {
	case <-tt.Complete().On():
	case <-ctx.Done():
		for _, p := range cl.Wire.Peers(tt.InfoHash()) {
			t.Logf("peer %v (%s): choking us %v, requests out %d, pieces in %d, rejects %d, outstanding %d",
				p.Remote, p.ClientName, p.PeerChoking, p.RequestsOut, p.PiecesIn, p.RejectsIn, p.Outstanding)
		}
		t.Fatalf("%s: stuck at %d/%d bytes", what, tt.BytesCompleted(), tt.Length())
	}
}
