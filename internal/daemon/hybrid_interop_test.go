package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
)

// hybridSeed publishes files as a hybrid torrent on a daemon with an
// embedded tracker and returns the hosted .torrent.
func hybridSeed(t *testing.T, files map[string]int) (dir, torrent string) {
	t.Helper()
	dir = writeFiles(t, files)
	trackerPort := lab.FreePort(t, lab.Loopback)
	a, _ := testAppWith(t, func(c *config.Config) {
		c.Auto.Enabled = false
		c.Tracker.Enabled, c.Tracker.Open = true, true
		c.Tracker.HTTPListen, c.Tracker.UDPListen = fmt.Sprintf("127.0.0.1:%d", trackerPort), ""
		c.Tracker.Interval = config.Duration(5 * time.Second)
		c.Publish.Listen = "127.0.0.1:0"
	})
	p, err := a.Publish(context.Background(), api.PublishRequest{Path: dir, PieceLength: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != "hybrid" {
		t.Fatalf("published %s, want hybrid", p.Version)
	}
	return dir, fetchTo(t, p.TorrentURL, t.TempDir(), "hybrid.torrent")
}

// Ensure libtorrent downloads a hybrid torrent from the everseed alone,
// with files whose ends fall inside a 16 KiB block (so the block at each
// file's end reaches into the v1 padding).
func TestInterop_HybridLibtorrent(t *testing.T) {
	lab.Require(t, lab.PythonLibtorrent)
	dir, tf := hybridSeed(t, map[string]int{"movie.mkv": 300000, "extras/b.mkv": 100000, "readme.txt": 1234})
	lt := lab.StartLibtorrent(t, lab.LibtorrentOptions{Torrent: tf})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := lt.WaitDone(ctx); err != nil {
		st, _ := lt.Status()
		t.Fatalf("libtorrent: %v; progress %.3f, errors %v", err, st.Progress, lt.Errors())
	}
	sameFiles(t, "libtorrent", dir, filepath.Join(lt.SavePath, "release"))
}
