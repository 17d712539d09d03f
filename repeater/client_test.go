package repeater

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/config"
)

func testPeer(t testing.TB, ip string) config.Peer {
	p := config.Default().Peer
	p.Listen = config.Addr(ip + ":0")
	p.IPv6 = false
	return p
}

// makeTorrent writes size random bytes into dir and returns its metainfo.
func makeTorrent(t testing.TB, dir string, size int64, pieceLen int64) (*metainfo.MetaInfo, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	info := metainfo.Info{PieceLength: pieceLen}
	if err := info.BuildFromFilePath(path); err != nil {
		t.Fatal(err)
	}
	mi := &metainfo.MetaInfo{}
	var err error
	if mi.InfoBytes, err = bencode.Marshal(info); err != nil {
		t.Fatal(err)
	}
	return mi, data
}

// Ensure that two clients transfer a torrent through their wire layers
// and that the layers see the traffic on both sides.
func TestClientsThroughWire(t *testing.T) {
	seeder, leecher, ih, data := transferThroughWire(t, "off", "off")
	up, down := seeder.Wire.Totals(ih), leecher.Wire.Totals(ih)
	if up.BytesUp < int64(len(data)) || down.BytesDown < int64(len(data)) || up.Conns == 0 {
		t.Errorf("wire counted up %+v, down %+v; want >= %d bytes", up, down, len(data))
	}
	if s := seeder.Wire.Stats(); s.Malformed != 0 || s.Dropped != 0 {
		t.Errorf("seeder wire stats %+v", s)
	}
}

// Ensure that the wire layer reads an incoming encrypted (MSE) stream: a
// leecher that requires encryption downloads from a seeder that allows it,
// and the seeder's layer decrypted the connection and counted every byte
// it served.
func TestClientsThroughWireMSE(t *testing.T) {
	seeder, _, ih, data := transferThroughWire(t, "allow", "require")
	s := seeder.Wire.Stats()
	if s.Decrypted == 0 || s.Malformed != 0 {
		t.Errorf("seeder wire stats %+v: want a decrypted connection and nothing malformed", s)
	}
	if up := seeder.Wire.Totals(ih); up.BytesUp < int64(len(data)) {
		t.Errorf("seeder's layer counted %d bytes up, want >= %d: it did not read the stream", up.BytesUp, len(data))
	}
}

// transferThroughWire has a leecher download 8 MiB from a seeder, both
// with the wire layer and the given peer.encryption, and checks the data.
func transferThroughWire(t *testing.T, seedEnc, leechEnc string) (seeder, leecher *Client, ih metainfo.Hash, data []byte) {
	seedDir, leechDir := t.TempDir(), t.TempDir()
	mi, data := makeTorrent(t, seedDir, 8<<20, 256<<10)

	sp, lp := testPeer(t, "127.0.0.1"), testPeer(t, "127.0.0.1")
	sp.Encryption, lp.Encryption = seedEnc, leechEnc
	seeder, err := NewClient(ClientOptions{Peer: sp, Storage: storage.NewFile(seedDir)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seeder.Close() })
	leecher, err = NewClient(ClientOptions{Peer: lp, Storage: storage.NewFile(leechDir)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leecher.Close() })

	st, err := seeder.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	st.VerifyData()
	select {
	case <-st.Complete().On():
	case <-time.After(20 * time.Second):
		t.Fatal("seeder does not have the data")
	}
	lt, err := leecher.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	// Want data before adding the peer: a torrent that wants nothing
	// does not dial.
	lt.DownloadAll()
	lt.AddPeers([]torrent.PeerInfo{{Addr: seeder.listener.Addr(), Trusted: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	select {
	case <-lt.Complete().On():
	case <-ctx.Done():
		t.Fatalf("download did not finish: %d/%d bytes", lt.BytesCompleted(), lt.Length())
	}
	r := lt.NewReader()
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data differs (%v)", err)
	}
	return seeder, leecher, mi.HashInfoBytes(), data
}
