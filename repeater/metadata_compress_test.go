package repeater

import (
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/config"
)

// Ensure a repeater that joins by info hash gets the metadata from a
// btslave seed with BEP 56 compression on both sides. The repeater holds
// its extended handshake (partial-seed mode) until the seed's HAVE ALL; when
// that had already arrived, the handshake went out at once and the layer's
// metadata fetch was never started (only the release timer started it).
func TestMetadataFromCompressingSeed(t *testing.T) {
	for _, pieceLen := range []int64{32 << 10, 256 << 10} {
		seedDir := t.TempDir()
		mi, _ := makeTorrent(t, seedDir, 1<<20, pieceLen)
		seeder, err := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(seedDir)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(seeder.Close)
		st, _ := seeder.AddTorrent(mi)
		st.VerifyData()
		<-st.Complete().On()

		cfg := config.Default()
		cfg.Cache.Size, cfg.Repeater.SwarmCache = 4<<20, 4<<20
		r, err := New(Options{Peer: testPeer(t, "127.0.0.1"), Cache: cfg.Cache, Repeater: cfg.Repeater, Tick: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		sw, err := r.Join(&torrent.TorrentSpec{AddTorrentOpts: torrent.AddTorrentOpts{InfoHash: mi.HashInfoBytes()}})
		if err != nil {
			t.Fatal(err)
		}
		sw.AddPeers([]torrent.PeerInfo{peerAddr(seeder)})
		select {
		case <-sw.Torrent().GotInfo():
		case <-time.After(10 * time.Second):
			t.Fatalf("piece length %d: no metadata within 10 s; peers %+v; wire %+v", pieceLen,
				r.Client().Wire.Peers(mi.HashInfoBytes()), r.Client().Wire.Stats())
		}
		ws := r.Client().Wire.Stats()
		if ws.InfoFetched != 1 || ws.Compressed == 0 {
			t.Errorf("piece length %d: wire %+v: want the metadata fetched by the layer on a compressed connection", pieceLen, ws)
		}
	}
}
