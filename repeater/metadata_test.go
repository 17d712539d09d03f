package repeater

import (
	"context"
	"crypto/sha1"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/internal/torrentfile"
)

// Ensure a torrent joined by info hash gets its metadata through the wire
// layer's checked fetch, not the library's, and then downloads.
func TestMetadataFetchedByLayer(t *testing.T) {
	seedDir := t.TempDir()
	mi, _ := makeTorrent(t, seedDir, 1<<20, 32<<10)
	seeder, err := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(seedDir)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(seeder.Close)
	st, _ := seeder.AddTorrent(mi)
	st.VerifyData()
	<-st.Complete().On()
	leecher, err := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leecher.Close)
	lt, _ := leecher.AddTorrentInfoHash(mi.HashInfoBytes())
	lt.AddPeers([]torrent.PeerInfo{{Addr: seeder.listener.Addr(), Trusted: true}})
	select {
	case <-lt.GotInfo():
	case <-time.After(20 * time.Second):
		t.Fatal("no metadata within 20 s")
	}
	if s := leecher.Wire.Stats(); s.InfoFetched != 1 {
		t.Errorf("layer stats %+v: want the metadata fetched by the layer", s)
	}
	lt.DownloadAll()
	select {
	case <-lt.Complete().On():
	case <-time.After(30 * time.Second):
		t.Fatalf("download did not finish: %d/%d", lt.BytesCompleted(), lt.Length())
	}
}

// metadataPeer dials c as a peer of ih that offers info as its metadata
// and serves every block asked for, until the connection ends.
func metadataPeer(t *testing.T, c *Client, ih metainfo.Hash, info []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := lab.DialPeer(ctx, c.listener.Addr().String(), ih, true)
	if err != nil {
		return err
	}
	defer p.Close()
	const ourMeta = 3
	if err := p.Send(lab.ExtMsg(0, map[string]any{"m": map[string]any{"ut_metadata": ourMeta}, "metadata_size": len(info)}), lab.Msg(15)); err != nil {
		return err
	}
	theirMeta := byte(0)
	for {
		id, body, err := p.ReadMsg(30 * time.Second)
		if err != nil {
			return err
		}
		if id != 20 || len(body) < 1 {
			continue
		}
		if body[0] == 0 {
			var h struct {
				M map[string]int64 `bencode:"m"`
			}
			bencode.Unmarshal(body[1:], &h)
			theirMeta = byte(h.M["ut_metadata"])
			continue
		}
		if body[0] != ourMeta {
			continue
		}
		var req struct {
			Type  int `bencode:"msg_type"`
			Piece int `bencode:"piece"`
		}
		if err := bencode.Unmarshal(body[1:], &req); err != nil || req.Type != 0 {
			continue
		}
		begin := req.Piece * 16 << 10
		end := min(begin+16<<10, len(info))
		if begin >= len(info) {
			continue
		}
		if err := p.Send(lab.ExtMsg(theirMeta, map[string]any{"msg_type": 1, "piece": req.Piece, "total_size": len(info)}, info[begin:end]...)); err != nil {
			return err
		}
	}
}

// Ensure metadata from a peer that hashes to the info hash but nests 8
// million lists deep (16 MB) is refused with a reason and kills nothing:
// anacrolix decodes metadata before checking it, with a recursive decoder,
// and overflowed the stack of the whole process.
func TestHostileMetadataRefused(t *testing.T) {
	const depth = 8_000_000 - 8
	info := []byte("d3:zzz" + strings.Repeat("l", depth) + strings.Repeat("e", depth) + "e")
	ih := metainfo.Hash(sha1.Sum(info))
	leecher, err := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leecher.Close)
	lt, _ := leecher.AddTorrentInfoHash(ih)
	done := make(chan error, 1)
	go func() { done <- metadataPeer(t, leecher, ih, info) }()
	deadline := time.Now().Add(60 * time.Second)
	for leecher.Wire.InfoRefused(ih) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	err = leecher.Wire.InfoRefused(ih)
	if !errors.Is(err, torrentfile.ErrTooDeep) {
		t.Fatalf("InfoRefused = %v, want ErrTooDeep", err)
	}
	if lt.Info() != nil {
		t.Error("the library took the refused metadata")
	}
	if s := leecher.Wire.Stats(); s.InfoRefused != 1 || s.InfoFetched != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Ensure a peer whose metadata does not hash to the info hash is
// disconnected and its metadata never reaches the library.
func TestLyingMetadataDisconnected(t *testing.T) {
	mi, _ := makeTorrent(t, t.TempDir(), 64<<10, 16<<10)
	ih := mi.HashInfoBytes()
	leecher, err := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leecher.Close)
	lt, _ := leecher.AddTorrentInfoHash(ih)
	lie := append([]byte(nil), mi.InfoBytes...)
	lie[len(lie)/2] ^= 1
	err = metadataPeer(t, leecher, ih, lie)
	if err == nil || errors.Is(err, lab.ErrNoMessage) {
		t.Fatalf("the liar's connection was not closed: %v", err)
	}
	if lt.Info() != nil || leecher.Wire.Stats().InfoFetched != 0 {
		t.Error("metadata that does not hash reached the library")
	}
}
