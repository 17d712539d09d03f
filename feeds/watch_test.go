package feeds_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
)

// Ensure that a watch folder yields its .torrent and .magnet files, skips
// the rest, and is left exactly as it was.
func TestWatchFolder(t *testing.T) {
	dir := t.TempDir()
	a := makeTorrent(t, "a.iso", 40_000, false)
	files := map[string][]byte{
		"a.torrent":          a.data,
		"broken.torrent":     []byte("d4:infoi1ee"),
		"links.magnet":       []byte("# two magnets\nmagnet:?xt=urn:btih:" + hashA + "&dn=from-magnet-file\n\n" + hashB + "\nrubbish\n"),
		".hidden.torrent":    makeTorrent(t, "hidden", 100, false).data,
		"notes.txt":          []byte("magnet:?xt=urn:btih:" + v1a),
		"sub/nested.torrent": makeTorrent(t, "nested", 100, false).data,
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, dir)

	res, err := feeds.Test(context.Background(), testOpts(), config.Feed{Name: "w", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, ir := range res.Items {
		if ir.Kept {
			kept = append(kept, ir.Entry.Name)
		}
	}
	if got := strings.Join(kept, ","); got != "from-magnet-file,,a.iso" {
		t.Errorf("kept %q", got)
	}
	if _, _, errs := res.Counts(); errs != 2 {
		t.Errorf("%d errors, want 2 (broken.torrent, rubbish): %+v", errs, res.Items)
	}
	broken := findItem(t, res, "broken.torrent")
	if !errors.Is(broken.Err, feeds.ErrBadTorrent) || !strings.Contains(broken.Why, "broken.torrent") {
		t.Errorf("broken: %+v", broken)
	}

	// Run by the service twice: the second run finds nothing new.
	clk := newFakeClock()
	svc := startService(t, feeds.Options{DB: openDB(t).DB, Clock: clk, Jitter: noJitter,
		Feeds: config.Feeds{Schedule: "@hourly", Feed: []config.Feed{{Name: "w", Dir: dir}}}})
	if st := waitFetches(t, svc, "w", 1); st.New != 3 || st.ItemErrors != 2 {
		t.Errorf("first run: %+v", st)
	}
	if st := fetchNow(t, svc, "w"); st.New != 0 || st.Kept != 3 {
		t.Errorf("second run: %+v", st)
	}
	if e, ok, _ := svc.Catalog().Get(a.v1); !ok || !bytes.Equal(e.Torrent, a.data) {
		t.Errorf("a.torrent not in the catalog with its bytes")
	}
	after := snapshot(t, dir)
	if len(after) != len(before) {
		t.Fatalf("folder changed: %v -> %v", before, after)
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed: %s -> %s", k, v, after[k])
		}
	}

	if _, err := feeds.Test(context.Background(), testOpts(), config.Feed{Dir: filepath.Join(dir, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing folder: %v", err)
	}
}

// snapshot records every file's content and modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		out[p] = string(b) + "|" + fi.ModTime().Format(time.RFC3339Nano)
		return nil
	})
	return out
}
