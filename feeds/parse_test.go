package feeds_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/feeds"
)

func parse(t *testing.T, name string) []feeds.Item {
	t.Helper()
	items, err := feeds.ParseFeed(testdata(t, name, "http://127.0.0.1:9"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return items
}

func intp(n int) *int { return &n }

func eqInt(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// Ensure that ParseFeed takes .torrent enclosures, magnets from link and
// guid, nyaa elements, and marks items without any link.
func TestParseFeed_RSS(t *testing.T) {
	items := parse(t, "rss.xml")
	want := []feeds.Item{
		{Title: "Debian 12 amd64 netinst", Torrent: "http://127.0.0.1:9/t/debian.torrent", Categories: []string{"Linux"},
			Published: time.Date(2024, 2, 10, 12, 0, 0, 0, time.UTC)},
		{Title: "Ubuntu 24.04 desktop", Torrent: "/t/ubuntu.torrent", Published: time.Date(2024, 2, 9, 8, 30, 0, 0, time.UTC)},
		{Title: "Fedora 40 Workstation", Magnet: "magnet:?xt=urn:btih:6ae899361087e9175e5fbce838781a2ecc21b805&dn=Fedora-40&tr=udp%3A%2F%2Ftracker.example%3A6969",
			Published: time.Date(2024, 2, 8, 8, 30, 0, 0, time.UTC)},
		{Title: "Arch Linux 2024.02.01", Magnet: "magnet:?xt=urn:btih:5a36f117812e69f1a5ab7e32a43b6e3db24618b2&dn=archlinux",
			Published: time.Date(2024, 2, 1, 10, 0, 0, 0, time.UTC)},
		{Title: "Linux Mint 21.3 Cinnamon", InfoHash: "16d0d8edea271261b476a8c658e7967860ab9990",
			Magnet: "magnet:?xt=urn:btih:16d0d8edea271261b476a8c658e7967860ab9990&dn=Linux+Mint+21.3+Cinnamon",
			Size:   3006477107, Seeders: intp(42), Peers: intp(50),
			Published: time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC)},
		{Title: "Release notes (no torrent)"},
	}
	checkItems(t, items, want)
	if !errors.Is(items[5].Err, feeds.ErrNoLink) {
		t.Errorf("item without link: Err = %v, want ErrNoLink", items[5].Err)
	}
}

func checkItems(t *testing.T, got, want []feeds.Item) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d items, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Title != w.Title || g.Torrent != w.Torrent || g.Magnet != w.Magnet || g.InfoHash != w.InfoHash ||
			g.Size != w.Size || !g.Published.Equal(w.Published) || !slices.Equal(g.Categories, w.Categories) ||
			!eqInt(g.Seeders, w.Seeders) || !eqInt(g.Peers, w.Peers) {
			t.Errorf("item %d:\n got %+v\nwant %+v", i, g, w)
		}
		if (g.Err == nil) != (w.Title != "Release notes (no torrent)") {
			t.Errorf("item %d: Err = %v", i, g.Err)
		}
	}
}

func TestParseFeed_Atom(t *testing.T) {
	items := parse(t, "atom.xml")
	if len(items) != 2 {
		t.Fatalf("%d items, want 2", len(items))
	}
	if it := items[0]; it.Torrent != "http://127.0.0.1:9/t/debian.torrent" || it.Title != "Debian 12 amd64 netinst" ||
		!slices.Equal(it.Categories, []string{"Linux"}) || !it.Published.Equal(time.Date(2024, 2, 10, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("entry 0: %+v", it)
	}
	if it := items[1]; !strings.HasPrefix(it.Magnet, "magnet:?xt=urn:btih:c6f57180e462a4f1e9de24fbe811cfb2c24a0cf9") || it.Torrent != "" ||
		!it.Published.Equal(time.Date(2024, 2, 9, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("entry 1: %+v", it)
	}
}

// Ensure that torznab attributes (Jackett) are read: seeders, peers, size,
// categories, infohash and magneturl.
func TestParseFeed_TorznabJackett(t *testing.T) {
	items := parse(t, "torznab_jackett.xml")
	if len(items) != 2 {
		t.Fatalf("%d items, want 2", len(items))
	}
	deb := items[0]
	if !strings.HasPrefix(deb.Torrent, "http://127.0.0.1:9/dl/example/?jackett_apikey=SECRETKEY") || deb.Magnet != "" ||
		deb.Size != 3994091520 || !eqInt(deb.Seeders, intp(120)) || !eqInt(deb.Peers, intp(135)) ||
		!slices.Equal(deb.Categories, []string{"4000", "100001"}) {
		t.Errorf("jackett item 0: %+v", deb)
	}
	show := items[1]
	if show.InfoHash != "a7cbb57712a30b82d94197fed7d549a9ec0a6863" ||
		show.Magnet != "magnet:?xt=urn:btih:a7cbb57712a30b82d94197fed7d549a9ec0a6863&dn=Some.Show.S01E01" ||
		show.Size != 1572864000 || !eqInt(show.Seeders, intp(3)) || !eqInt(show.Peers, intp(9)) ||
		!slices.Equal(show.Categories, []string{"5040"}) {
		t.Errorf("jackett item 1: %+v", show)
	}
}

// Ensure that the newznab namespace variant (Prowlarr) is read too, and
// that an upper-case info hash is normalised.
func TestParseFeed_NewznabProwlarr(t *testing.T) {
	items := parse(t, "newznab_prowlarr.xml")
	if len(items) != 1 {
		t.Fatalf("%d items, want 1", len(items))
	}
	it := items[0]
	if it.InfoHash != "de6ff49c94538e6e13a77f75991141a4fe9af8bf" || it.Torrent != "" ||
		!strings.HasPrefix(it.Magnet, "magnet:?xt=urn:btih:de6ff49c94538e6e13a77f75991141a4fe9af8bf") ||
		it.Size != 276134947 || !eqInt(it.Seeders, intp(17)) || !eqInt(it.Peers, intp(20)) ||
		!slices.Equal(it.Categories, []string{"2000", "2040"}) {
		t.Errorf("prowlarr item: %+v", it)
	}
}

func TestParseFeed_Errors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		is               error
	}{
		{"malformed", string(testdata(t, "malformed.xml", "")), "XML syntax error on line", nil},
		{"html", "<html><body>login</body></html>", "not RSS, Atom or JSON Feed", feeds.ErrNotFeed},
		{"text", "magnet:?xt=urn:btih:6ae899361087e9175e5fbce838781a2ecc21b805", `set kind = "list"`, feeds.ErrNotFeed},
		{"empty", "", "not an XML or JSON document", feeds.ErrNotFeed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := feeds.ParseFeed([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q (items %v)", err, tc.want, items)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.is)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	items, err := feeds.ParseList(testdata(t, "list.txt", "http://127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 5 {
		t.Fatalf("%d items, want 5: %+v", len(items), items)
	}
	if items[0].Torrent != "http://127.0.0.1:9/t/debian.torrent" {
		t.Errorf("line 1: %+v", items[0])
	}
	if items[1].Magnet != "magnet:?xt=urn:btih:66a599a670b4fea4449ff9531250b83d11fe9106&dn=list-one" {
		t.Errorf("line 2: %+v", items[1])
	}
	if items[2].InfoHash != "e532ca9e292a3cc8c9b9734451780b34e7f62868" || items[2].Magnet != "magnet:?xt=urn:btih:e532ca9e292a3cc8c9b9734451780b34e7f62868" {
		t.Errorf("bare hash: %+v", items[2])
	}
	if items[3].Err == nil || !strings.Contains(items[3].Err.Error(), `line 7: "not a link at all"`) {
		t.Errorf("bad line: Err = %v", items[3].Err)
	}
	if !strings.Contains(items[4].Magnet, "urn:btmh:1220e7d1") || items[4].Err != nil {
		t.Errorf("v2 magnet: %+v", items[4])
	}
	if _, err := feeds.ParseList([]byte("\x00\x01binary")); !errors.Is(err, feeds.ErrNotFeed) {
		t.Errorf("binary list: err = %v, want ErrNotFeed", err)
	}
}
