package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/api"
)

// writeFiles makes files (relative path -> size) of varied bytes under a
// new directory "release".
func writeFiles(t *testing.T, files map[string]int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "release")
	for name, size := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i*7 + len(name) + i/997)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func publishedOf(t *testing.T, a *App, ih string) api.Published {
	t.Helper()
	for _, p := range a.Published(context.Background()) {
		if p.InfoHash == ih {
			return p
		}
	}
	t.Fatalf("%s not published", ih)
	return api.Published{}
}

// Ensure that a published torrent is seeded with every piece complete,
// listed on the public listener's feed, resumed after a restart without
// reading its data (no piece verified yet), stopped with the reason when
// a file changes, and forgotten on unpublish.
func TestPublishResumeAndChange(t *testing.T) {
	dir := writeFiles(t, map[string]int{"a.mkv": 300000, "sub/b.srt": 5000, "empty": 0})
	mutate := func(c *config.Config) {
		c.Auto.Enabled = false
		c.Publish.Listen = "127.0.0.1:0"
	}
	a, stop := testAppWith(t, mutate)
	ctx := context.Background()
	if _, err := a.Publish(ctx, api.PublishRequest{Path: "relative"}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("relative path: %v", err)
	}
	p, err := a.Publish(ctx, api.PublishRequest{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Seeding || p.Files != 3 || p.Size != 305000 || p.Version != "hybrid" || p.TorrentURL == "" {
		t.Fatalf("published %+v", p)
	}
	var ih metainfo.Hash
	ih.FromHexString(p.InfoHash)
	tt, ok := a.client.Torrent(ih)
	if !ok || tt.Stats().PiecesComplete != tt.NumPieces() || !a.rep.Has(ih, 0) {
		t.Fatalf("everseed not in the client with all pieces")
	}
	resp, err := http.Get("http://" + a.PublishAddr().String() + "/feed.xml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	items, err := feeds.ParseFeed(body)
	if err != nil || len(items) != 1 || items[0].InfoHash != p.InfoHash || items[0].Size != p.Size {
		t.Fatalf("feed: %v %+v", err, items)
	}

	dataDir := a.cfg.DataDir
	stop()
	a, stop = testAppWith(t, func(c *config.Config) { mutate(c); c.DataDir = dataDir })
	p = publishedOf(t, a, p.InfoHash)
	if !p.Seeding || p.Verified != 0 {
		t.Fatalf("after restart: seeding %v (%s), %d pieces verified (want 0: no rehash)", p.Seeding, p.Stopped, p.Verified)
	}
	if tt, ok := a.client.Torrent(ih); !ok || tt.Stats().PiecesComplete != tt.NumPieces() {
		t.Fatal("resumed everseed lacks pieces")
	}

	// Modified after publishing: caught by the periodic check.
	f, _ := os.OpenFile(filepath.Join(dir, "sub", "b.srt"), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("one more line"))
	f.Close()
	a.recheck()
	p = publishedOf(t, a, p.InfoHash)
	if p.Seeding || !strings.Contains(p.Stopped, "changed") {
		t.Fatalf("after a change: seeding %v, stopped %q", p.Seeding, p.Stopped)
	}
	if _, ok := a.client.Torrent(ih); ok || a.rep.Has(ih, 0) {
		t.Error("a changed torrent is still in the client")
	}

	// Restart with the file still changed: listed as stopped, not seeded.
	stop()
	a, _ = testAppWith(t, func(c *config.Config) { mutate(c); c.DataDir = dataDir })
	if p = publishedOf(t, a, p.InfoHash); p.Seeding || !strings.Contains(p.Stopped, "size") {
		t.Fatalf("restart after a change: seeding %v, stopped %q", p.Seeding, p.Stopped)
	}
	if err := a.Unpublish(ctx, p.InfoHash); err != nil {
		t.Fatal(err)
	}
	if len(a.Published(ctx)) != 0 {
		t.Error("unpublished torrent still listed")
	}
	if err := a.Unpublish(ctx, p.InfoHash); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("second unpublish: %v", err)
	}
}
