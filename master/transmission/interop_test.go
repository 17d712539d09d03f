package transmission_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/master"
	"github.com/btslave/btslave/master/transmission"
)

// halfData copies the first half of data into dir/name, the rest zeros:
// the master then holds the first half of the pieces after verifying.
func halfData(t *testing.T, data, dir, name string) {
	t.Helper()
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[len(b)/2:])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Ensure that the adapter lists what a real transmission-daemon downloads
// (bitfield, metainfo, peer address), notices a torrent removed mid-way,
// refuses wrong credentials as ErrAuth and a stopped daemon as
// ErrUnreachable.
func TestTransmissionReal(t *testing.T) {
	tr := lab.StartTransmission(t, lab.TransmissionOptions{RPCUsername: "owner", RPCPassword: "s3cret"})
	torrentPath, data, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 4 << 20, PieceLength: 256 << 10})
	halfData(t, data, tr.DownloadDir, "data.bin")
	id, err := tr.AddTorrent(torrentPath, "")
	if err != nil {
		t.Fatal(err)
	}
	c := transmission.New(transmission.Options{URL: tr.RPCURL, Username: "owner", Password: "s3cret", PeerAddress: tr.Addr.String()})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	peer, err := c.PeerAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if peer.Addr() != tr.Addr || int(peer.Port()) != tr.PeerPort {
		t.Errorf("PeerAddr = %v, want %v:%d", peer, tr.Addr, tr.PeerPort)
	}
	if c.JSONRPC() {
		t.Errorf("transmission %s: speaks JSON-RPC 2.0, want the classic form", c.Version())
	}
	// Wait for the check of the half-present data.
	var got master.Torrent
	for {
		ts, err := c.Downloading(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 1 && ts[0].Progress > 0.4 && !ts[0].Stopped {
			got = ts[0]
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("master never reported half the torrent downloading: %+v", ts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got.InfoHash != ih || got.Name != "data.bin" || got.NumPieces != 16 {
		t.Errorf("torrent = %s %q %d pieces, want %s data.bin 16", got.InfoHash, got.Name, got.NumPieces, ih)
	}
	want, _ := os.ReadFile(torrentPath)
	if !bytes.Equal(got.MetaInfo, want) {
		t.Errorf("metainfo: %d bytes, not the .torrent added (%d bytes)", len(got.MetaInfo), len(want))
	}
	for i := range 16 {
		// The piece straddling the middle is zeroed in its second half.
		if has := got.HasPiece(i); has != (i < 8) {
			t.Errorf("piece %d: has = %v, want %v", i, has, i < 8)
		}
	}

	// Removed mid-way: the list is empty, no error.
	if err := tr.Remove(id, false); err != nil {
		t.Fatal(err)
	}
	if ts, err := c.Downloading(ctx); err != nil || len(ts) != 0 {
		t.Errorf("after removal: %d torrents, %v; want none", len(ts), err)
	}

	bad := transmission.New(transmission.Options{URL: tr.RPCURL, Username: "owner", Password: "wrong"})
	if _, err := bad.Downloading(ctx); !errors.Is(err, master.ErrAuth) {
		t.Errorf("wrong password: %v, want ErrAuth", err)
	}

	tr.Stop()
	if _, err := c.Downloading(ctx); !errors.Is(err, master.ErrUnreachable) {
		t.Errorf("stopped daemon: %v, want ErrUnreachable", err)
	}
}
