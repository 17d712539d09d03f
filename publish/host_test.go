package publish_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/publish"
)

func publishInto(t *testing.T, reg *publish.Registry, dir string, v publish.Version) (*publish.Torrent, publish.Record) {
	t.Helper()
	tr, err := publish.Create(context.Background(), dir, publish.Options{Version: v})
	if err != nil {
		t.Fatal(err)
	}
	rec := publish.NewRecord(tr, time.Now())
	if err := reg.Add(tr, rec); err != nil {
		t.Fatal(err)
	}
	return tr, rec
}

// Ensure that the registry survives a reopen, finds records by either
// infohash, and forgets them on Remove.
func TestRegistry(t *testing.T) {
	dir := t.TempDir()
	reg, err := publish.OpenRegistry(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := publishInto(t, reg, writeTree(t, 10, map[string]int{"x": 1000}), publish.Hybrid)
	b, _ := publishInto(t, reg, writeTree(t, 11, map[string]int{"y": 2000, "z/w": 10}), publish.V2)
	os.WriteFile(filepath.Join(dir, "junk.json"), []byte(`{"infohash":"zz"}`), 0o644)
	reg, err = publish.OpenRegistry(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(reg.List()); n != 2 {
		t.Fatalf("%d records after reopen, want 2", n)
	}
	for _, ih := range []string{a.InfoHashV1, a.InfoHashV2, b.InfoHashV2, b.InfoHashV2[:40]} {
		if _, ok := reg.Get(ih); !ok {
			t.Errorf("%s not found", ih)
		}
	}
	if got, err := reg.TorrentFile(a.InfoHashV2); err != nil || string(got) != string(a.Bytes) {
		t.Errorf("torrent by v2 hash: %v", err)
	}
	if _, err := reg.Remove(a.InfoHashV1); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.Get(a.InfoHashV2); ok {
		t.Error("removed torrent still found by its v2 hash")
	}
	if _, err := reg.Remove(a.InfoHashV1); err == nil {
		t.Error("second remove succeeded")
	}
}

// Ensure that Record.Check catches a file modified, resized, replaced or
// removed after publishing, and passes untouched files.
func TestRecordCheck(t *testing.T) {
	for _, change := range []string{"none", "touch", "append", "replace", "remove"} {
		t.Run(change, func(t *testing.T) {
			dir := writeTree(t, 12, map[string]int{"a": 5000, "b/c": 7000})
			tr, err := publish.Create(context.Background(), dir, publish.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rec := publish.NewRecord(tr, time.Now())
			p := filepath.Join(dir, "b", "c")
			switch change {
			case "touch":
				later := time.Now().Add(time.Hour)
				os.Chtimes(p, later, later)
			case "append":
				f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
				f.Write([]byte("x"))
				f.Close()
			case "replace":
				st, _ := os.Stat(p)
				b, _ := os.ReadFile(p)
				// As editors save: a new file renamed over the old one.
				os.WriteFile(p+".new", b, 0o644)
				os.Chtimes(p+".new", st.ModTime(), st.ModTime())
				os.Rename(p+".new", p)
			case "remove":
				os.Remove(p)
			}
			err = rec.Check()
			if (err == nil) != (change == "none") {
				t.Fatalf("Check after %s: %v", change, err)
			}
			if change == "remove" && !strings.Contains(err.Error(), "gone") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// Ensure that the host serves published torrents and a feed that
// btslave's feed reader takes with the .torrent, infohash and size, and
// nothing else.
func TestHost(t *testing.T) {
	reg, err := publish.OpenRegistry(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := publishInto(t, reg, writeTree(t, 13, map[string]int{"x": 1000, "y/z": 50000}), publish.Hybrid)
	b, _ := publishInto(t, reg, writeTree(t, 14, map[string]int{"q": 3000}), publish.V1)
	srv := httptest.NewServer(&publish.Host{Registry: reg})
	defer srv.Close()
	get := func(path string) (int, string, http.Header) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	for _, ih := range []string{a.InfoHashV1, a.InfoHashV2, b.InfoHashV1} {
		code, body, h := get("/t/" + ih + ".torrent")
		if code != 200 || h.Get("Content-Type") != "application/x-bittorrent" || (body != string(a.Bytes) && body != string(b.Bytes)) {
			t.Errorf("/t/%s.torrent: %d %s", ih, code, h.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/t/" + strings.Repeat("0", 40) + ".torrent", "/t/../x.torrent", "/", "/t/" + strings.ToUpper(a.InfoHashV1) + ".torrent"} {
		if code, _, _ := get(path); code != 404 {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}
	resp, err := http.Post(srv.URL+"/feed.xml", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}

	code, body, _ := get("/feed.xml")
	if code != 200 {
		t.Fatalf("/feed.xml: %d", code)
	}
	items, err := feeds.ParseFeed([]byte(body))
	if err != nil {
		t.Fatalf("btslave's feed reader: %v\n%s", err, body)
	}
	if len(items) != 2 {
		t.Fatalf("%d items, want 2:\n%s", len(items), body)
	}
	want := map[string]*publish.Torrent{a.InfoHashV1: a, b.InfoHashV1: b}
	for _, it := range items {
		tr := want[it.InfoHash]
		if tr == nil || it.Size != tr.Size || it.Torrent != srv.URL+"/t/"+it.InfoHash+".torrent" || it.Title != tr.Name || it.Magnet != tr.Magnet {
			t.Errorf("item %+v", it)
		}
	}
}
