package repeater_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater"
)

// Ensure that qBittorrent sees btslave's BEP 56 offer as an ordinary
// connection: it reads our extended handshake (with c, cp and
// m.lt_compress) and seeds a text torrent to us, uncompressed and intact.
func TestInteropQBittorrentOrdinary(t *testing.T) {
	lab.Require(t, "qbittorrent-nox")
	torrentPath, dataPath, ih, mi := lab.MakeTorrent(t, lab.TorrentOptions{Size: 4 << 20, Text: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q := lab.StartQBittorrent(t, lab.QBittorrentOptions{})
	if err := q.AddTorrent(torrentPath, filepath.Dir(dataPath)); err != nil {
		t.Fatal(err)
	}
	if _, err := q.WaitComplete(ctx, ih); err != nil {
		t.Fatalf("qBittorrent did not verify its seed data: %v", err)
	}

	dir := t.TempDir()
	cl, err := repeater.NewClient(repeater.ClientOptions{Peer: peerConfig(lab.NextAddr()), Storage: storage.NewFile(dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	bt, err := cl.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	bt.DownloadAll()
	checkOrdinary := watchOrdinary(t, cl, bt.InfoHash(), "qBittorrent")
	// qBittorrent may not listen yet when it says the torrent is
	// complete, and anacrolix never redials a failed peer: dial until
	// connected.
	qAddr := &net.TCPAddr{IP: q.Addr.AsSlice(), Port: q.Port}
	for len(cl.Wire.Peers(bt.InfoHash())) == 0 && !bt.Complete().Bool() && ctx.Err() == nil {
		bt.AddPeers([]torrent.PeerInfo{{Addr: qAddr, Trusted: true}})
		time.Sleep(500 * time.Millisecond)
	}
	waitTorrent(ctx, t, cl, bt, "btslave downloading from qBittorrent")
	checkOrdinary()
	lab.VerifyFile(t, filepath.Join(dir, filepath.Base(dataPath)), dataPath)
}
