package qbittorrent_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/master"
	"github.com/btslave/btslave/master/qbittorrent"
)

// halfData copies the first half of data into dir/name, the rest zeros.
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

// deleteTorrent removes a torrent through the WebUI, as the owner would.
func deleteTorrent(t *testing.T, q *lab.QBittorrent, ih string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	for _, step := range []struct {
		path string
		form url.Values
	}{{"/api/v2/auth/login", url.Values{"username": {q.Username}, "password": {q.Password}}},
		{"/api/v2/torrents/delete", url.Values{"hashes": {ih}, "deleteFiles": {"false"}}}} {
		req, _ := http.NewRequest(http.MethodPost, q.URL+step.path, strings.NewReader(step.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Referer", q.URL)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", step.path, resp.Status)
		}
	}
}

// Ensure that the adapter lists what a real qbittorrent-nox downloads
// (pieces, .torrent, peer address), introduces a peer with addPeers,
// notices a torrent removed mid-way, refuses wrong credentials as ErrAuth
// and a stopped program as ErrUnreachable.
func TestQBittorrentReal(t *testing.T) {
	q := lab.StartQBittorrent(t, lab.QBittorrentOptions{})
	torrentPath, data, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 4 << 20, PieceLength: 256 << 10})
	halfData(t, data, q.SavePath, "data.bin")
	if err := q.AddTorrent(torrentPath, ""); err != nil {
		t.Fatal(err)
	}
	c := qbittorrent.New(qbittorrent.Options{URL: q.URL, Username: q.Username, Password: q.Password})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	peer, err := c.PeerAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if peer.Addr() != q.Addr || int(peer.Port()) != q.Port {
		t.Errorf("PeerAddr = %v, want %v:%d (current_interface_address, listen_port)", peer, q.Addr, q.Port)
	}
	t.Logf("WebAPI %v", c.WebAPIVersion())
	var got master.Torrent
	for {
		ts, err := c.Downloading(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 1 && ts[0].Progress > 0.4 && !ts[0].Stopped && ts[0].NumPieces > 0 {
			got = ts[0]
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("never reported half the torrent downloading: %+v", ts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got.InfoHash != ih || got.Name != "data.bin" || got.NumPieces != 16 {
		t.Errorf("torrent = %s %q %d pieces, want %s data.bin 16", got.InfoHash, got.Name, got.NumPieces, ih)
	}
	mi, err := metainfo.Load(bytes.NewReader(got.MetaInfo))
	if err != nil || mi.HashInfoBytes().HexString() != ih {
		t.Errorf("exported .torrent: %v, info hash %v", err, mi)
	}
	for i := range 16 {
		if has := got.HasPiece(i); has != (i < 8) {
			t.Errorf("piece %d: has = %v, want %v", i, has, i < 8)
		}
	}
	if len(got.Downloading) != 2 || got.Downloading[0] != 0 {
		t.Errorf("downloading %08b: want 16 pieces' bits, none of the 8 held", got.Downloading)
	}

	// addPeers: qBittorrent dials the peer introduced.
	ln, err := net.Listen("tcp", netip.AddrPortFrom(lab.NextAddr(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed := make(chan net.Conn, 1)
	go func() {
		if conn, err := ln.Accept(); err == nil {
			dialed <- conn
		}
	}()
	if err := c.AddPeers(ctx, ih, []netip.AddrPort{netip.MustParseAddrPort(ln.Addr().String())}); err != nil {
		t.Fatal(err)
	}
	select {
	case conn := <-dialed:
		conn.Close()
	case <-time.After(30 * time.Second):
		t.Error("qBittorrent did not dial the peer given by addPeers within 30s")
	}

	deleteTorrent(t, q, ih)
	if ts, err := c.Downloading(ctx); err != nil || len(ts) != 0 {
		t.Errorf("after removal: %d torrents, %v; want none", len(ts), err)
	}

	bad := qbittorrent.New(qbittorrent.Options{URL: q.URL, Username: q.Username, Password: "wrong"})
	if _, err := bad.Downloading(ctx); !errors.Is(err, master.ErrAuth) {
		t.Errorf("wrong password: %v, want ErrAuth", err)
	}

	q.Stop()
	if _, err := c.Downloading(ctx); !errors.Is(err, master.ErrUnreachable) {
		t.Errorf("stopped program: %v, want ErrUnreachable", err)
	}
}
