package feeds_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
)

const ctypeTorrent = "application/x-bittorrent"

func testOpts() feeds.Options {
	return feeds.Options{Version: "1.2.3", Feeds: config.Feeds{Timeout: config.Duration(5 * time.Second)}}
}

// rssOf makes an RSS feed with one item per (title, enclosure URL).
func rssOf(items ...[2]string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>`)
	for _, it := range items {
		fmt.Fprintf(&b, `<item><title>%s</title><enclosure url="%s" type="application/x-bittorrent" length="1"/></item>`, it[0], it[1])
	}
	b.WriteString(`</channel></rss>`)
	return []byte(b.String())
}

func TestTest_RSS(t *testing.T) {
	srv := newServer(t)
	deb := makeTorrent(t, "debian-12.iso", 200_000, false, "http://tracker.example/announce")
	ubu := makeTorrent(t, "ubuntu-24.04.iso", 300_000, false)
	srv.file("/rss", "application/rss+xml", testdata(t, "rss.xml", srv.URL))
	srv.file("/t/debian.torrent", ctypeTorrent, deb.data)
	srv.file("/t/ubuntu.torrent", ctypeTorrent, ubu.data)

	res, err := feeds.Test(context.Background(), testOpts(), config.Feed{Name: "isos", URL: srv.URL + "/rss", Kind: "rss"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 6 {
		t.Fatalf("%d items, want 6", len(res.Items))
	}
	for _, c := range []struct{ title, hash string }{
		{"Debian", deb.v1}, {"Ubuntu", ubu.v1},
		{"Fedora", "6ae899361087e9175e5fbce838781a2ecc21b805"},
		{"Arch", "5a36f117812e69f1a5ab7e32a43b6e3db24618b2"},
		{"Mint", "16d0d8edea271261b476a8c658e7967860ab9990"},
	} {
		ir := findItem(t, res, c.title)
		if !ir.Kept || ir.Entry == nil || ir.Entry.InfoHashV1 != c.hash || ir.Why != "kept" {
			t.Errorf("%s: kept %v why %q entry %+v, want kept with %s", c.title, ir.Kept, ir.Why, ir.Entry, c.hash)
		}
	}
	if e := findItem(t, res, "Debian").Entry; e.Name != "debian-12.iso" || e.Size != 200_000 || string(e.Torrent) != string(deb.data) ||
		e.Title != "Debian 12 amd64 netinst" || len(e.Trackers) != 1 || e.Feeds[0] != "isos" {
		t.Errorf("debian entry %+v", e)
	}
	if e := findItem(t, res, "Mint").Entry; e.Size != 3006477107 || *e.Seeders != 42 {
		t.Errorf("mint entry keeps the feed's size and seeders: %+v", e)
	}
	notes := findItem(t, res, "Release notes")
	if notes.Kept || !errors.Is(notes.Err, feeds.ErrNoLink) || !strings.HasPrefix(notes.Why, "error: no .torrent link") {
		t.Errorf("notes: %+v", notes)
	}
	if kept, isNew, errs := res.Counts(); kept != 5 || isNew != 0 || errs != 1 {
		t.Errorf("counts %d %d %d, want 5 0 1", kept, isNew, errs)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, ua := range srv.agents {
		if ua != "btslave/1.2.3" {
			t.Errorf("User-Agent %q", ua)
		}
	}
}

func TestTest_TorznabJackett(t *testing.T) {
	srv := newServer(t)
	deb := makeTorrent(t, "debian", 50_000, false)
	srv.file("/torznab", "application/rss+xml", testdata(t, "torznab_jackett.xml", srv.URL))
	srv.handle("/dl/example/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("jackett_apikey") != "SECRETKEY" {
			http.Error(w, "bad key", http.StatusUnauthorized)
			return
		}
		switch r.URL.Query().Get("path") {
		case "debian":
			w.Write(deb.data)
		case "show": // a magnet-only torrent: Jackett redirects to the magnet
			http.Redirect(w, r, "magnet:?xt=urn:btih:a7cbb57712a30b82d94197fed7d549a9ec0a6863&dn=Some.Show.S01E01", http.StatusFound)
		}
	})
	res, err := feeds.Test(context.Background(), testOpts(), config.Feed{URL: srv.URL + "/torznab?apikey=SECRETKEY&t=search", Category: "5000"})
	if err != nil {
		t.Fatal(err)
	}
	debian := findItem(t, res, "Debian")
	if debian.Kept || debian.Why != "category 4000, 100001 is not 5000" {
		t.Errorf("debian: kept %v why %q", debian.Kept, debian.Why)
	}
	if srv.hit("/dl/example/") != 1 {
		t.Errorf("%d downloads; the excluded item's .torrent must not be fetched", srv.hit("/dl/example/"))
	}
	show := findItem(t, res, "Some.Show")
	if !show.Kept || show.Entry.InfoHashV1 != "a7cbb57712a30b82d94197fed7d549a9ec0a6863" || *show.Entry.Seeders != 3 || *show.Entry.Peers != 9 {
		t.Errorf("show: %+v %+v", show, show.Entry)
	}
}

func TestTest_NewznabProwlarr(t *testing.T) {
	srv := newServer(t)
	srv.file("/api", "application/rss+xml", testdata(t, "newznab_prowlarr.xml", srv.URL))
	res, err := feeds.Test(context.Background(), testOpts(), config.Feed{URL: srv.URL + "/api", Category: "2000", MinSize: 100 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ir := res.Items[0]
	if !ir.Kept || ir.Entry.InfoHashV1 != "de6ff49c94538e6e13a77f75991141a4fe9af8bf" || ir.Entry.Size != 276134947 ||
		ir.Entry.Name != "Big Buck Bunny" || len(ir.Entry.Trackers) != 1 {
		t.Errorf("%+v %+v", ir, ir.Entry)
	}
}

// Ensure that a bad .torrent fails its item only, with the reason.
func TestTest_BadTorrentItem(t *testing.T) {
	srv := newServer(t)
	good := makeTorrent(t, "good", 70_000, false)
	srv.file("/good.torrent", ctypeTorrent, good.data)
	srv.file("/garbage.torrent", ctypeTorrent, []byte("<html>Login required</html>"))
	srv.file("/missing-pieces.torrent", ctypeTorrent, []byte("d4:infod6:lengthi100000e4:name1:x12:piece lengthi32768e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"))
	srv.file("/rss", "application/rss+xml", rssOf(
		[2]string{"Good", srv.URL + "/good.torrent"},
		[2]string{"Garbage", srv.URL + "/garbage.torrent"},
		[2]string{"Inconsistent", srv.URL + "/missing-pieces.torrent"},
		[2]string{"Gone", srv.URL + "/404.torrent"},
	))
	res, err := feeds.Test(context.Background(), testOpts(), config.Feed{URL: srv.URL + "/rss"})
	if err != nil {
		t.Fatal(err)
	}
	if g := findItem(t, res, "Good"); !g.Kept || g.Entry.InfoHashV1 != good.v1 {
		t.Errorf("good: %+v", g)
	}
	for _, c := range []struct {
		title, why string
		is         error
	}{
		{"Garbage", "bad .torrent: not bencoded metainfo", feeds.ErrBadTorrent},
		{"Inconsistent", "1 piece hashes for 100000 bytes in 32768-byte pieces (want 4)", feeds.ErrBadTorrent},
		{"Gone", "HTTP 404 Not Found", feeds.ErrHTTPStatus},
	} {
		ir := findItem(t, res, c.title)
		if ir.Kept || !errors.Is(ir.Err, c.is) || !strings.Contains(ir.Why, c.why) || !strings.HasPrefix(ir.Why, "error: ") {
			t.Errorf("%s: kept %v err %v why %q; want %q", c.title, ir.Kept, ir.Err, ir.Why, c.why)
		}
	}
}

// Ensure that an item whose .torrent fails falls back to its magnet link,
// and that a .torrent whose hash differs from the feed's is refused.
func TestTest_FallbackAndMismatch(t *testing.T) {
	srv := newServer(t)
	tt := makeTorrent(t, "x", 1000, false)
	srv.file("/x.torrent", ctypeTorrent, tt.data)
	const other = "6ae899361087e9175e5fbce838781a2ecc21b805"
	srv.file("/rss", "application/rss+xml", []byte(`<rss version="2.0" xmlns:torznab="http://torznab.com/schemas/2015/feed"><channel><title>t</title>
<item><title>Fallback</title><enclosure url="/broken.torrent" type="application/x-bittorrent" length="1"/><torznab:attr name="magneturl" value="magnet:?xt=urn:btih:`+other+`"/></item>
<item><title>Mismatch</title><enclosure url="/x.torrent" type="application/x-bittorrent" length="1"/><torznab:attr name="infohash" value="`+other+`"/></item>
</channel></rss>`))
	res, err := feeds.Test(context.Background(), testOpts(), config.Feed{URL: srv.URL + "/rss"})
	if err != nil {
		t.Fatal(err)
	}
	fb := findItem(t, res, "Fallback")
	if !fb.Kept || fb.Entry.InfoHashV1 != other || !strings.Contains(fb.Why, "using the magnet link: .torrent failed") || !strings.Contains(fb.Why, "HTTP 404") {
		t.Errorf("fallback: %+v", fb)
	}
	mm := findItem(t, res, "Mismatch")
	if mm.Kept || !errors.Is(mm.Err, feeds.ErrHashMismatch) {
		t.Errorf("mismatch: %+v", mm)
	}
}

// endless serves an endless body (optionally declaring a 2 GiB length)
// and records how much it wrote.
func endless(written *atomic.Int64, done chan<- struct{}, declare bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		if declare {
			w.Header().Set("Content-Length", strconv.Itoa(2<<30))
		}
		buf := []byte(strings.Repeat("<item>", 32<<10/6))
		for written.Load() < 2<<30 {
			n, err := w.Write(buf)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}
}

// Ensure that a server streaming 2 GiB is cut at the cap at once.
func TestTest_FeedBodyCap(t *testing.T) {
	for _, declare := range []bool{false, true} {
		t.Run(fmt.Sprintf("content-length=%v", declare), func(t *testing.T) {
			srv := newServer(t)
			var written atomic.Int64
			done := make(chan struct{}, 1)
			srv.handle("/feed", endless(&written, done, declare))
			opts := testOpts()
			opts.Feeds.MaxFeedSize = 1 << 20
			start := time.Now()
			_, err := feeds.Test(context.Background(), opts, config.Feed{URL: srv.URL + "/feed"})
			took := time.Since(start)
			want := "feed body over 1 MiB cap"
			if declare {
				want = "feed body is 2 GiB, over the 1 MiB cap"
			}
			if !errors.Is(err, feeds.ErrTooLarge) || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want ErrTooLarge %q", err, want)
			}
			if took > 5*time.Second {
				t.Errorf("took %v to give up", took)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("server still writing 10 s after the client gave up")
			}
			// What the server wrote includes the kernel's socket buffers.
			if n := written.Load(); n > 1<<20+32<<20 {
				t.Errorf("server wrote %d bytes; the client read on past the cap", n)
			}
		})
	}
}

// Ensure that a .torrent over its cap fails its item only.
func TestTest_TorrentCap(t *testing.T) {
	srv := newServer(t)
	var written atomic.Int64
	done := make(chan struct{}, 1)
	srv.handle("/huge.torrent", endless(&written, done, false))
	small := makeTorrent(t, "small", 1000, false)
	srv.file("/small.torrent", ctypeTorrent, small.data)
	srv.file("/rss", "application/rss+xml", rssOf([2]string{"Huge", "/huge.torrent"}, [2]string{"Small", "/small.torrent"}))
	opts := testOpts()
	opts.Feeds.MaxTorrentSize = 64 << 10
	res, err := feeds.Test(context.Background(), opts, config.Feed{URL: srv.URL + "/rss"})
	if err != nil {
		t.Fatal(err)
	}
	huge := findItem(t, res, "Huge")
	if huge.Kept || !errors.Is(huge.Err, feeds.ErrTooLarge) || !strings.Contains(huge.Why, ".torrent over 64 KiB cap") {
		t.Errorf("huge: %+v", huge)
	}
	if s := findItem(t, res, "Small"); !s.Kept {
		t.Errorf("small: %+v", s)
	}
	<-done
}

func TestTest_FeedErrors(t *testing.T) {
	srv := newServer(t)
	srv.file("/malformed", "application/rss+xml", testdata(t, "malformed.xml", ""))
	srv.handle("/503", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", http.StatusServiceUnavailable) })
	srv.handle("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv.handle("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	srv.handle("/tofile", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	srv.file("/list", "text/plain", testdata(t, "list.txt", srv.URL))
	for _, tc := range []struct {
		name string
		feed config.Feed
		want string
		is   error
	}{
		{"malformed XML", config.Feed{URL: srv.URL + "/malformed"}, "parse feed: XML syntax error on line", nil},
		{"503", config.Feed{URL: srv.URL + "/503?apikey=SECRETKEY"}, "apikey=REDACTED: HTTP 503 Service Unavailable", feeds.ErrHTTPStatus},
		{"timeout", config.Feed{URL: srv.URL + "/slow"}, "timed out after 200ms", nil},
		{"redirect loop", config.Feed{URL: srv.URL + "/loop"}, "stopped after 5 redirects", nil},
		{"redirect to file", config.Feed{URL: srv.URL + "/tofile"}, "redirect to file:///etc/passwd", feeds.ErrBadURL},
		{"list as rss", config.Feed{URL: srv.URL + "/list", Kind: "rss"}, `set kind = "list"`, feeds.ErrNotFeed},
		{"not http", config.Feed{URL: "file:///etc/passwd"}, "is not an http(s) URL", feeds.ErrBadFeed},
		{"watch without dir", config.Feed{URL: srv.URL + "/list", Kind: "watch"}, `kind "watch" needs dir`, feeds.ErrBadFeed},
		{"bad regexp", config.Feed{URL: srv.URL + "/list", Include: "("}, "include: error parsing regexp", feeds.ErrBadFeed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOpts()
			opts.Feeds.Timeout = config.Duration(200 * time.Millisecond)
			_, err := feeds.Test(context.Background(), opts, tc.feed)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("err = %v, want %q (%v)", err, tc.want, tc.is)
			}
			if err != nil && strings.Contains(err.Error(), "SECRETKEY") {
				t.Errorf("error shows the API key: %v", err)
			}
		})
	}
}

// Ensure that kind "" sniffs a list and "list" parses one.
func TestTest_List(t *testing.T) {
	srv := newServer(t)
	deb := makeTorrent(t, "debian", 5000, false)
	srv.file("/t/debian.torrent", ctypeTorrent, deb.data)
	srv.file("/list", "text/plain", testdata(t, "list.txt", srv.URL))
	for _, kind := range []string{"", "list"} {
		res, err := feeds.Test(context.Background(), testOpts(), config.Feed{URL: srv.URL + "/list", Kind: kind, Include: "^(debian|list-one|v2-only)$"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ir := range res.Items {
			s := "-"
			if ir.Kept {
				s = ir.Entry.Key()[:8]
			}
			got = append(got, s)
		}
		want := []string{deb.v1[:8], "66a599a6", "-", "-", "e7d14d45"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("kind %q: kept %v, want %v", kind, got, want)
		}
		if why := res.Items[2].Why; why != "not matched by include /^(debian|list-one|v2-only)$/" {
			t.Errorf("bare hash why %q", why)
		}
		if res.Items[3].Err == nil {
			t.Errorf("bad line has no error")
		}
	}
}
