package repeater

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/config"
)

// textTorrent writes size bytes of text-like data (about 4:1 with zstd)
// into dir and returns its metainfo.
func textTorrent(t testing.TB, dir string, size int) (*metainfo.MetaInfo, []byte) {
	t.Helper()
	words := []string{"the", "swarm", "peer", "piece", "block", "seed", "leech", "tracker", "announce", "choke",
		"have", "bitfield", "request", "metadata", "repeater", "upload", "download", "of", "and", "to", "a", "in"}
	r := rand.New(rand.NewPCG(uint64(size), 7))
	data := make([]byte, 0, size+100)
	for len(data) < size {
		for k := 60 + r.IntN(20); k > 0; k -= 5 {
			data = append(append(data, words[r.IntN(len(words))]...), ' ')
		}
		data = append(strconv.AppendInt(data, int64(r.IntN(10000)), 10), '\n')
	}
	data = data[:size]
	path := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	info := metainfo.Info{PieceLength: 256 << 10}
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

// Ensure BEP 56 between btslaves end to end: a plain client seeds text to
// a repeater (partial seed, pieces held zstd-compressed), which serves a
// leecher. Both connections are compressed (zstd: the repeater's cp),
// the repeater sends cached blocks as the frames it holds, the data
// verifies, and text crosses the wire at under 40% of its size.
func TestRepeaterCompressed(t *testing.T) {
	seedDir := t.TempDir()
	mi, data := textTorrent(t, seedDir, 8<<20)
	seeder, err := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(seedDir)})
	if err != nil {
		t.Fatal(err)
	}
	defer seeder.Close()
	st, _ := seeder.AddTorrent(mi)
	st.VerifyData()
	<-st.Complete().On()

	cfg := config.Default()
	cfg.Cache.Compress = true
	cfg.Cache.Size, cfg.Repeater.SwarmCache = 32<<20, 32<<20
	r, err := New(Options{Peer: testPeer(t, "127.0.0.1"), Cache: cfg.Cache, Repeater: cfg.Repeater, Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sw, err := r.Join(torrent.TorrentSpecFromMetaInfo(mi))
	if err != nil {
		t.Fatal(err)
	}
	sw.AddPeers([]torrent.PeerInfo{peerAddr(seeder)})

	lc, err := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	lt, _ := lc.AddTorrent(mi)
	lt.DownloadAll()
	lt.AddPeers([]torrent.PeerInfo{{Addr: r.Client().listener.Addr(), Trusted: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	select {
	case <-lt.Complete().On():
	case <-ctx.Done():
		t.Fatalf("leecher stuck at %d/%d; swarm %+v wire %+v", lt.BytesCompleted(), lt.Length(), sw.Stats(), r.Client().Wire.Stats())
	}
	rd := lt.NewReader()
	got, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("leecher data differs (%v)", err)
	}
	// The connections may be closed by now (seed to seed): the layer's
	// counters include closed ones.
	ws := r.Client().Wire.Stats()
	t.Logf("wire %+v", ws)
	if ws.Compressed != 2 || ws.FramesSpliced < int64(len(data))/(16<<10)/2 || ws.Malformed != 0 || ws.CompressRefused != 0 {
		t.Errorf("wire stats %+v: want both connections compressed, at least half the blocks sent as cached frames, nothing refused", ws)
	}
	if min(ws.SavedUp, ws.SavedDown) < int64(len(data))*6/10 {
		t.Errorf("saved %d bytes up and %d down of %d each way: want at least 60%%", ws.SavedUp, ws.SavedDown, len(data))
	}
}
