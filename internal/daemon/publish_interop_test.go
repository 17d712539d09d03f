package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
)

// fetchTo downloads url into a file in dir.
func fetchTo(t *testing.T, url, dir, name string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameFiles fails unless every file of src is under dst with the same
// bytes.
func sameFiles(t *testing.T, who, src, dst string) {
	t.Helper()
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		want, _ := os.ReadFile(p)
		if len(want) == 0 && who == "transmission" {
			return nil // Transmission 3 creates no empty files
		}
		got, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %s differs (%v)", who, rel, err)
		}
		return nil
	})
}

// Ensure the publishing loop with real programs: a directory published by
// one daemon is downloaded from its everseed alone, through the embedded
// tracker and the hosted .torrent, by libtorrent, Transmission 3 and
// aria2, every file verifying; a
// second daemon subscribed to the first's /feed.xml (AddFeed, what
// `btslave feeds add URL` calls) with its autopilot joins the swarm and
// repeats it: it fetches pieces and serves them to the downloaders.
//
// libtorrent downloads the hybrid (v1+v2) torrent of the directory (see
// wire.PieceLengths for what that takes); aria2 and Transmission the v1
// one: aria2 1.36 computes a hybrid's infohash wrong (it drops the file
// tree's "" keys) and Transmission 3 cannot read v2 file trees, see
// docs/publish.md.
func TestInterop_PublishEverseed(t *testing.T) {
	lab.Require(t, "aria2c", lab.PythonLibtorrent, "transmission-daemon")
	dir := writeFiles(t, map[string]int{"movie.mkv": 1500000, "extras/making-of.mkv": 700000, "readme.txt": 1234, "empty": 0})
	trackerPort := lab.FreePort(t, lab.Loopback)
	a, _ := testAppWith(t, func(c *config.Config) {
		c.Auto.Enabled = false
		c.Tracker.Enabled, c.Tracker.Open = true, true
		c.Tracker.HTTPListen, c.Tracker.UDPListen = fmt.Sprintf("127.0.0.1:%d", trackerPort), ""
		c.Tracker.Interval = config.Duration(5 * time.Second)
		c.Publish.Listen = "127.0.0.1:0"
	})
	ctx := context.Background()
	hybrid, err := a.Publish(ctx, api.PublishRequest{Path: dir, PieceLength: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := a.Publish(ctx, api.PublishRequest{Path: dir, Version: "v1", PieceLength: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	feedURL := "http://" + a.PublishAddr().String() + "/feed.xml"

	// The second daemon follows the feed; its autopilot ranks the swarms
	// by the embedded tracker's scrapes.
	b, _ := testAppWith(t, func(c *config.Config) {
		c.Auto.Interval, c.Auto.ScrapeMaxAge, c.Auto.MinScore, c.Auto.Settle = config.Duration(time.Second), 0, 0.01, 0
		c.Feeds.Jitter = 0
		c.Feeds.AllowPrivateRedirects = true
	})
	if _, err := b.AddFeed(ctx, api.FeedRequest{Name: "friend", URL: feedURL}); err != nil {
		t.Fatal(err)
	}

	work := t.TempDir()
	hybridFile := fetchTo(t, hybrid.TorrentURL, work, "hybrid.torrent")
	v1File := fetchTo(t, v1.TorrentURL, work, "v1.torrent")
	const limit = 400 << 10 // slow enough that the second daemon finds demand
	ar := lab.StartAria2(t, lab.Aria2Options{Torrent: v1File, DownloadLimit: limit})
	lt := lab.StartLibtorrent(t, lab.LibtorrentOptions{Torrent: hybridFile, DownloadLimit: limit})
	tr := lab.StartTransmission(t, lab.TransmissionOptions{DownloadLimit: limit})
	tid, err := tr.AddTorrent(v1File, "")
	if err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	// What the second daemon did in the publisher's swarms, polled until
	// the downloads end: joined, and the most it fetched and served.
	type repeated struct {
		joined     bool
		down, up   int64
		swarm, how string
	}
	seen := make(chan repeated, 1)
	go func() {
		var r repeated
		defer func() { seen <- r }()
		for wctx.Err() == nil {
			for _, sw := range b.Status(ctx).Torrents {
				if sw.InfoHash == hybrid.InfoHash || sw.InfoHash == v1.InfoHash {
					r.joined, r.swarm, r.how = true, sw.InfoHash, sw.Origin
					r.down, r.up = max(r.down, sw.BytesDownloaded), max(r.up, sw.BytesUploaded)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	if err := ar.WaitDone(wctx); err != nil {
		t.Fatalf("aria2: %v; published: %+v", err, a.Published(ctx))
	}
	if err := lt.WaitDone(wctx); err != nil {
		t.Fatalf("libtorrent: %v", err)
	}
	if _, err := tr.WaitComplete(wctx, tid); err != nil {
		t.Fatalf("transmission: %v", err)
	}
	sameFiles(t, "aria2", dir, filepath.Join(ar.Dir, "release"))
	sameFiles(t, "libtorrent", dir, filepath.Join(lt.SavePath, "release"))
	sameFiles(t, "transmission", dir, filepath.Join(tr.DownloadDir, "release"))

	for _, p := range a.Published(ctx) {
		if !p.Seeding || p.BytesServed < p.Size || p.Verified == 0 {
			t.Errorf("%s %s: seeding %v, served %d of %d, %d pieces verified", p.Version, p.InfoHash, p.Seeding, p.BytesServed, p.Size, p.Verified)
		}
	}
	cancel()
	r := <-seen
	switch {
	case !r.joined:
		t.Errorf("the daemon following the feed never joined the swarm; its ranking: %+v", b.Ranking(ctx))
	case r.how != "auto" || r.down == 0 || r.up == 0:
		t.Errorf("the daemon following the feed joined %s (origin %q) but repeated nothing: fetched %d B, served %d B", r.swarm, r.how, r.down, r.up)
	default:
		t.Logf("the daemon following the feed repeated %s: fetched %d B from the swarm, served %d B", r.swarm, r.down, r.up)
	}
}
