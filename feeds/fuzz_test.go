package feeds_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btslave/btslave/feeds"
)

// addTestdata seeds f with the testdata files whose names match glob.
func addTestdata(f *testing.F, glob string) {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(names) == 0 {
		f.Fatalf("no seeds for %s: %v", glob, err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseFeed feeds arbitrary bodies to the feed parser: it may fail,
// but never panic, and every item it returns is usable or says why not.
func FuzzParseFeed(f *testing.F) {
	addTestdata(f, "*.xml")
	f.Add([]byte(`<rss version="2.0"><channel><item><enclosure url="magnet:?xt=urn:btih:zz"/></item></channel></rss>`))
	f.Add([]byte(`{"version":"https://jsonfeed.org/version/1.1","items":[{"url":"magnet:?x"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := feeds.ParseFeed(body)
		if err != nil && items != nil {
			t.Fatalf("items with error %v", err)
		}
		for _, it := range items {
			if it.Err == nil && it.Torrent == "" && it.Magnet == "" {
				t.Fatalf("item without link or error: %+v", it)
			}
			if it.InfoHash != "" && len(it.InfoHash) != 40 && len(it.InfoHash) != 64 {
				t.Fatalf("info hash %q", it.InfoHash)
			}
			if it.Magnet != "" {
				feeds.ParseMagnet(it.Magnet) // must not panic
			}
		}
	})
}

// FuzzParseList does the same for plain lists.
func FuzzParseList(f *testing.F) {
	addTestdata(f, "*.txt")
	f.Add([]byte("magnet:?xt=urn:btmh:1220" + strings.Repeat("ab", 32)))
	f.Add([]byte("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567\r\n#x\nhttp://\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := feeds.ParseList(body)
		if err != nil {
			return
		}
		for _, it := range items {
			if it.Err == nil && it.Torrent == "" && it.Magnet == "" {
				t.Fatalf("item without link or error: %+v", it)
			}
			if it.Magnet != "" {
				feeds.ParseMagnet(it.Magnet)
			}
		}
	})
}

// FuzzParseTorrent checks that any .torrent either fails or describes a
// torrent with an info hash and data.
func FuzzParseTorrent(f *testing.F) {
	f.Add(makeTorrent(f, "a", 40_000, false, "http://t/announce").data)
	f.Add(makeTorrent(f, "h", 1_000, true).data)
	f.Add([]byte("d4:infod6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := feeds.ParseTorrent(data)
		if err != nil {
			return
		}
		if e.Key() == "" || e.Size <= 0 || e.Magnet == "" {
			t.Fatalf("accepted torrent without hash, size or magnet: %+v", e)
		}
	})
}
