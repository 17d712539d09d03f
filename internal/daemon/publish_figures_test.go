package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
)

// announceTo sends one HTTP announce for ih to the tracker at announceURL
// as peer id (20 bytes) with left bytes to go and event.
func announceTo(t *testing.T, announceURL string, ih metainfo.Hash, id string, port int, left int64, event string) {
	t.Helper()
	q := url.Values{"peer_id": {id}, "port": {fmt.Sprint(port)}, "uploaded": {"0"}, "downloaded": {"0"},
		"left": {fmt.Sprint(left)}, "compact": {"1"}}
	if event != "" {
		q.Set("event", event)
	}
	u := announceURL + "?info_hash=" + url.QueryEscape(string(ih[:])) + "&" + q.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("announce: %s", resp.Status)
	}
}

// Ensure that "btslave published" shows the embedded tracker's figures
// for a published torrent, completed included, and the bytes the
// everseed served: an in-process client downloads the torrent from the
// everseed, and two peers announce to the tracker, one completed.
func TestPublishedFigures(t *testing.T) {
	dir := writeFiles(t, map[string]int{"a.mkv": 400000, "b.txt": 3000})
	a, _ := testAppWith(t, func(c *config.Config) {
		c.Auto.Enabled = false
		c.Tracker.Enabled, c.Tracker.Open = true, true
		c.Tracker.HTTPListen, c.Tracker.UDPListen = fmt.Sprintf("127.0.0.1:%d", lab.FreePort(t, lab.Loopback)), ""
		c.Publish.Listen = "127.0.0.1:0"
	})
	ctx := context.Background()
	p, err := a.Publish(ctx, api.PublishRequest{Path: dir, PieceLength: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var ih metainfo.Hash
	ih.FromHexString(p.InfoHash)
	announceURL := a.tracker.AnnounceURL()
	announceTo(t, announceURL, ih, "-XX0001-aaaaaaaaaaaa", 6001, 0, "completed")
	announceTo(t, announceURL, ih, "-XX0001-bbbbbbbbbbbb", 6002, 1000, "started")

	// A downloader that knows only the everseed (no tracker).
	cc := loopbackClientConfig(t)
	cc.DefaultStorage = storage.NewFileByInfoHash(cc.DataDir)
	cc.Logger = cc.Logger.WithFilterLevel(alog.Disabled)
	c, err := torrent.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := http.Get(p.TorrentURL)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Load(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	mi.AnnounceList, mi.Announce = nil, ""
	dl, err := c.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	dl.AddPeers([]torrent.PeerInfo{{Addr: net.TCPAddrFromAddrPort(a.selfAddr()), Trusted: true}})
	<-dl.GotInfo()
	dl.DownloadAll()
	deadline := time.Now().Add(30 * time.Second)
	for !dl.Complete().Bool() {
		if time.Now().After(deadline) {
			t.Fatalf("download from the everseed: %d of %d bytes", dl.BytesCompleted(), dl.Length())
		}
		time.Sleep(50 * time.Millisecond)
	}

	p = publishedOf(t, a, p.InfoHash)
	if !p.Tracked || p.Completed != 1 || p.Downloaders < 1 || p.Seeds < 1 {
		t.Errorf("tracker figures: tracked %v, seeds %d, downloaders %d, completed %d (want tracked, ≥1, ≥1, 1)",
			p.Tracked, p.Seeds, p.Downloaders, p.Completed)
	}
	if p.BytesServed < p.Size {
		t.Errorf("served %d B of %d", p.BytesServed, p.Size)
	}
}
