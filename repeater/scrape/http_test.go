package scrape

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
)

// Ensure that scrape URLs follow BEP 48's convention, keeping the query
// (not unescaped) and refusing what has no "announce" last segment.
func TestScrapeURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"http://example.com/announce", "http://example.com/scrape"},
		{"http://example.com/x/announce", "http://example.com/x/scrape"},
		{"http://example.com/announce.php", "http://example.com/scrape.php"},
		{"http://example.com/announce?x2%0644", "http://example.com/scrape?x2%0644"},
		{"https://t.example:8443/abcdef0123/announce?passkey=K&a=b", "https://t.example:8443/abcdef0123/scrape?passkey=K&a=b"},
		{"http://example.com/announce?x=2/4", "http://example.com/scrape?x=2/4"}, // the slash is in the query, not the path
		{"http://example.com/announce#frag", "http://example.com/scrape"},
		{"http://example.com/a%20b/announce", "http://example.com/a%20b/scrape"},
		{"http://example.com/a", ""},
		{"http://example.com/", ""},
		{"http://example.com", ""},
		{"http://example.com/x%064announce", ""},
		{"http://example.com/announce/x", ""},
		{"http://example.com/Announce", ""},
	} {
		u, err := url.Parse(c.in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := scrapeURL(u)
		if c.want == "" {
			if !errors.Is(err, ErrNoScrape) {
				t.Errorf("%s: got %q, %v; want ErrNoScrape", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// Ensure that a URL without scrape fails at once with ErrNoScrape, and a
// bad one with ErrBadURL, without a tracker state.
func TestScrape_NoScrapeAndBadURL(t *testing.T) {
	s := mustNew(t, fastOptions())
	hs := testHashes(1)
	for _, c := range []struct {
		url  string
		want error
	}{
		{"http://127.0.0.1:1/a", ErrNoScrape},
		{"ftp://127.0.0.1/announce", ErrBadURL},
		{"udp://127.0.0.1/announce", ErrBadURL},
		{"::", ErrBadURL},
		{"wss://127.0.0.1/announce", ErrBadURL},
	} {
		if _, err := s.Scrape(context.Background(), c.url, hs); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.url, err, c.want)
		}
	}
	if st := s.Status(); len(st) != 0 {
		t.Errorf("status %+v, want no trackers", st)
	}
}

// Ensure that batches stay within the hash count and the URL length.
func TestHTTPBatches(t *testing.T) {
	base := "http://example.com/scrape?passkey=" + strings.Repeat("k", 100)
	var all []metainfo.Hash
	for i := range 1000 {
		var h metainfo.Hash
		for j := range h {
			h[j] = byte(i + j*7) // mostly escaped bytes: up to 60 characters a hash
		}
		all = append(all, h)
	}
	for _, per := range []int{1, 50, 64, 200} {
		n := 0
		for _, b := range httpBatches(base, all, per) {
			if len(b) == 0 || len(b) > per {
				t.Fatalf("per %d: batch of %d", per, len(b))
			}
			if u := requestURL(base, b); len(u) > maxURLBytes {
				t.Fatalf("per %d: URL of %d bytes", per, len(u))
			}
			n += len(b)
		}
		if n != len(all) {
			t.Errorf("per %d: %d hashes in batches, want %d", per, n, len(all))
		}
	}
	if got := requestURL("http://e/scrape", all[:2]); strings.Count(got, "?") != 1 || strings.Count(got, "&") != 1 {
		t.Errorf("requestURL without query: %s", got)
	}
	if got := requestURL("http://e/scrape?k=v", all[:1]); !strings.HasPrefix(got, "http://e/scrape?k=v&info_hash=") {
		t.Errorf("requestURL with query: %s", got)
	}
}

// Ensure that an HTTP scrape batches hashes, keeps the passkey, escapes
// every byte opentracker needs, reads every figure, reports hashes missing
// from the reply as not known, and reads BEP 21 downloaders.
func TestHTTP_Scrape(t *testing.T) {
	f := startFakeHTTP(t, func(f *fakeHTTP) { f.downloaders = true })
	o := fastOptions()
	o.HTTPBatch = 20
	s := mustNew(t, o)
	hs := testHashes(50)
	unknown := unknownHash(1)
	ask := append(append([]metainfo.Hash{}, hs...), unknown, hs[0]) // and a duplicate
	announceURL := f.srv.URL + "/announce?passkey=secret"
	res, err := s.Scrape(context.Background(), announceURL, ask)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 51 {
		t.Errorf("%d results, want 51", len(res))
	}
	for _, h := range hs {
		r := res[h]
		checkResult(t, h, r, true)
		if !r.HasDownloaders || r.Downloaders != max(int64(h[2])-1, 0) {
			t.Errorf("%x: downloaders %d (%v), want %d", h[:8], r.Downloaders, r.HasDownloaders, max(int64(h[2])-1, 0))
		}
		if n, fromD := r.Demand(); !fromD || n != r.Downloaders {
			t.Errorf("Demand() = %d, %v with downloaders", n, fromD)
		}
		if r.Tracker != announceURL {
			t.Errorf("Tracker %q, want %q", r.Tracker, announceURL)
		}
	}
	if r, ok := res[unknown]; !ok || r.Known || r.Complete != 0 {
		t.Errorf("unknown hash: %+v, %v; want a result with Known false", r, ok)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Errorf("%d requests, want 3 (51 hashes, 20 a request)", len(reqs))
	}
	for _, r := range reqs {
		if r.URL.Path != "/scrape" || r.URL.Query().Get("passkey") != "secret" {
			t.Errorf("request %s: want /scrape with the passkey", r.URL)
		}
		if n := len(r.URL.Query()["info_hash"]); n > 20 {
			t.Errorf("request with %d hashes", n)
		}
		if strings.Contains(r.URL.RawQuery, "+") || !strings.Contains(r.URL.RawQuery, "%20") {
			t.Errorf("query %s: a space must go as %%20", r.URL.RawQuery)
		}
		if ua := r.Header.Get("User-Agent"); ua != DefaultUserAgent {
			t.Errorf("User-Agent %q", ua)
		}
	}
}

// Ensure that a scrape without downloaders says so, and Demand falls back
// to incomplete.
func TestHTTP_NoDownloaders(t *testing.T) {
	f := startFakeHTTP(t, nil)
	s := mustNew(t, fastOptions())
	h := testHash(1, 2, 3, 0)
	res, err := s.Scrape(context.Background(), f.url(), []metainfo.Hash{h})
	if err != nil {
		t.Fatal(err)
	}
	r := res[h]
	if r.HasDownloaders {
		t.Errorf("HasDownloaders without the key: %+v", r)
	}
	if n, fromD := r.Demand(); fromD || n != 3 {
		t.Errorf("Demand() = %d, %v; want 3 from incomplete", n, fromD)
	}
}

// Ensure that failure reasons (with 200 or another status), error
// statuses, garbage and oversized bodies are errors of the right kind.
func TestHTTP_BadReplies(t *testing.T) {
	big := "d5:filesd" + strings.Repeat("x", maxHTTPReplyBytes) + "ee"
	for _, c := range []struct {
		name    string
		status  int
		body    string
		failure string // want a *FailureError with this reason
		contain string // else want an error containing this
	}{
		{"failure", 200, "d14:failure reason12:unregisterede", "unregistered", ""},
		{"failure with 403", 403, "d14:failure reason6:bannede", "banned", ""},
		{"404", 404, "not found", "", "HTTP 404"},
		{"garbage", 200, "<html>hello</html>", "", "malformed"},
		{"no files", 200, "d8:intervali5ee", "", "no \"files\""},
		{"files not a dict", 200, "d5:filesi3ee", "", "malformed"},
		{"bad count", 200, "d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:complete3:abceee", "", "complete"},
		{"oversized", 200, big, "", "larger than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := startFakeHTTP(t, func(f *fakeHTTP) {
				f.reply = func(*http.Request) (int, string) { return c.status, c.body }
			})
			s := mustNew(t, fastOptions())
			_, err := s.Scrape(context.Background(), f.url(), testHashes(1))
			if err == nil {
				t.Fatal("no error")
			}
			var fe *FailureError
			if c.failure != "" {
				if !errors.As(err, &fe) || fe.Reason != c.failure {
					t.Fatalf("error %v, want failure reason %q", err, c.failure)
				}
				return
			}
			if errors.As(err, &fe) || !strings.Contains(err.Error(), c.contain) {
				t.Fatalf("error %v, want one containing %q", err, c.contain)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error of %d bytes: %.100s…", len(err.Error()), err)
			}
		})
	}
}

// Ensure that HTTP scrapes leave from LocalIP.
func TestHTTP_LocalIP(t *testing.T) {
	local := netip.MustParseAddr("127.0.0.3")
	var from []string
	f := startFakeHTTP(t, func(f *fakeHTTP) {
		f.reply = func(r *http.Request) (int, string) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			from = append(from, host)
			return 200, "d5:filesdee"
		}
	})
	o := fastOptions()
	o.LocalIP = local
	s := mustNew(t, o)
	if _, err := s.Scrape(context.Background(), f.url(), testHashes(1)); err != nil {
		t.Fatal(err)
	}
	if len(from) != 1 || from[0] != local.String() {
		t.Errorf("requests from %v, want %v", from, local)
	}
}
