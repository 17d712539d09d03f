package feeds_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/lab"
)

// serverOn is newServer listening on ip instead of 127.0.0.1.
func serverOn(t *testing.T, ip netip.Addr) *server {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	return newServerOn(t, ln)
}

// Ensure that a feed on a public address cannot aim btslave at a private
// one: not by redirecting its own URL, not with a .torrent link, not with
// a .torrent link's redirect, not with a name that resolves to loopback;
// that the refusal says why and nothing reached the private server; and
// that feeds.allow_private_redirects lets all of it through (issue #17,
// item 9). The "public" feed plays on a loopback address the test counts
// as public; 127.0.0.1 stays private.
func TestPublicFeedCannotReachPrivateAddresses(t *testing.T) {
	pubIP := lab.NextAddr()
	pub := serverOn(t, pubIP)
	priv := newServer(t) // 127.0.0.1
	tor := makeTorrent(t, "secret", 5000, false)
	priv.file("/secret.torrent", ctypeTorrent, tor.data)
	priv.file("/rss", "application/rss+xml", rssOf([2]string{"private feed", "/secret.torrent"}))
	privPort := priv.Listener.Addr().(*net.TCPAddr).Port
	byName := "http://localhost:" + strconv.Itoa(privPort) + "/secret.torrent"

	pub.handle("/to-private", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, priv.URL+"/rss", http.StatusFound) })
	pub.handle("/redir.torrent", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, priv.URL+"/secret.torrent", http.StatusFound)
	})
	pub.file("/rss", "application/rss+xml", rssOf(
		[2]string{"direct link", priv.URL + "/secret.torrent"},
		[2]string{"redirected link", "/redir.torrent"},
		[2]string{"link by name", byName},
	))
	opts := feeds.WithPublicAddrs(testOpts(), pubIP)

	// The feed's own URL redirects to a private address.
	_, err := feeds.Test(context.Background(), opts, config.Feed{URL: pub.URL + "/to-private"})
	if want := "redirect to 127.0.0.1 refused: private address from a public feed"; err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, feeds.ErrPrivateAddress) {
		t.Errorf("feed redirect: %v, want %q", err, want)
	}

	// Its items link to private addresses.
	res, err := feeds.Test(context.Background(), opts, config.Feed{URL: pub.URL + "/rss"})
	if err != nil {
		t.Fatal(err)
	}
	for title, want := range map[string]string{
		"direct link":     "link to 127.0.0.1 refused: private address from a public feed",
		"redirected link": "redirect to 127.0.0.1 refused: private address from a public feed",
		"link by name":    "link to localhost (",
	} {
		ir := findItem(t, res, title)
		if ir.Kept || !errors.Is(ir.Err, feeds.ErrPrivateAddress) || !strings.Contains(ir.Why, want) || !strings.Contains(ir.Why, "refused: private address") {
			t.Errorf("%s: kept %v, why %q; want %q", title, ir.Kept, ir.Why, want)
		}
	}
	if n := priv.hit("/rss") + priv.hit("/secret.torrent"); n != 0 {
		t.Errorf("the private server got %d requests from a public feed", n)
	}

	// The option lets it all through.
	opts.Feeds.AllowPrivateRedirects = true
	if res, err := feeds.Test(context.Background(), opts, config.Feed{URL: pub.URL + "/to-private"}); err != nil || !findItem(t, res, "private feed").Kept {
		t.Errorf("feed redirect with allow_private_redirects: %v %+v", err, res)
	}
	res, err = feeds.Test(context.Background(), opts, config.Feed{URL: pub.URL + "/rss"})
	if err != nil {
		t.Fatal(err)
	}
	for _, title := range []string{"direct link", "redirected link", "link by name"} {
		if ir := findItem(t, res, title); !ir.Kept {
			t.Errorf("%s with allow_private_redirects: %s", title, ir.Why)
		}
	}
}

// Ensure that the owner's own feed on a private address may link to
// private and public addresses alike.
func TestPrivateFeedReachesAnything(t *testing.T) {
	pubIP := lab.NextAddr()
	pub := serverOn(t, pubIP)
	priv := newServer(t)
	a, b := makeTorrent(t, "a", 5000, false), makeTorrent(t, "b", 5000, false)
	priv.file("/a.torrent", ctypeTorrent, a.data)
	pub.file("/b.torrent", ctypeTorrent, b.data)
	priv.handle("/to-public", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, pub.URL+"/b.torrent", http.StatusFound)
	})
	priv.file("/rss", "application/rss+xml", rssOf([2]string{"lan", "/a.torrent"}, [2]string{"internet", "/to-public"}))
	res, err := feeds.Test(context.Background(), feeds.WithPublicAddrs(testOpts(), pubIP), config.Feed{URL: priv.URL + "/rss"})
	if err != nil {
		t.Fatal(err)
	}
	for _, title := range []string{"lan", "internet"} {
		if ir := findItem(t, res, title); !ir.Kept {
			t.Errorf("%s: %s", title, ir.Why)
		}
	}
}

// Ensure that the daemon's feeds show the refusal in the feed's error.
func TestService_PublicFeedRedirectRefused(t *testing.T) {
	pubIP := lab.NextAddr()
	pub := serverOn(t, pubIP)
	priv := newServer(t)
	priv.file("/rss", "application/rss+xml", magnetRSS(hashA))
	pub.handle("/rss", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, priv.URL+"/rss", http.StatusFound) })
	opts := feeds.WithPublicAddrs(feeds.Options{DB: openDB(t).DB, Jitter: noJitter,
		Feeds: config.Feeds{Feed: []config.Feed{{Name: "pub", URL: pub.URL + "/rss"}}}}, pubIP)
	st := waitFetches(t, startService(t, opts), "pub", 1)
	if !strings.Contains(st.LastError, "redirect to 127.0.0.1 refused: private address from a public feed") || priv.hit("/rss") != 0 {
		t.Errorf("status %+v, private hits %d", st, priv.hit("/rss"))
	}
}

// Ensure that through an HTTP proxy on the owner's machine (a private
// address the guard must still dial) a public feed's public links work and
// its private ones are refused before the proxy is asked.
func TestPublicFeedThroughProxy(t *testing.T) {
	pubIP := lab.NextAddr()
	pub := serverOn(t, pubIP)
	priv := newServer(t)
	a, b := makeTorrent(t, "a", 5000, false), makeTorrent(t, "b", 5000, false)
	priv.file("/a.torrent", ctypeTorrent, a.data)
	pub.file("/b.torrent", ctypeTorrent, b.data)
	pub.file("/rss", "application/rss+xml", rssOf([2]string{"private", priv.URL + "/a.torrent"}, [2]string{"public", "/b.torrent"}))
	var mu sync.Mutex
	var asked []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.String())
		mu.Unlock()
		out := r.Clone(r.Context())
		out.RequestURI = ""
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(proxy.Close)
	proxyURL, _ := url.Parse(proxy.URL)
	opts := feeds.WithPublicAddrs(testOpts(), pubIP)
	opts.Client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	res, err := feeds.Test(context.Background(), opts, config.Feed{URL: pub.URL + "/rss"})
	if err != nil {
		t.Fatal(err)
	}
	if ir := findItem(t, res, "public"); !ir.Kept {
		t.Errorf("public link through the proxy: %s", ir.Why)
	}
	if ir := findItem(t, res, "private"); ir.Kept || !strings.Contains(ir.Why, "link to 127.0.0.1 refused: private address from a public feed") {
		t.Errorf("private link through the proxy: %s", ir.Why)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 || strings.Contains(strings.Join(asked, " "), priv.URL) {
		t.Errorf("the proxy was asked for %q; want the feed and the public link only", asked)
	}
}

func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		public bool
	}{
		{"1.1.1.1", true}, {"93.184.216.34", true}, {"2606:4700::1111", true}, {"::ffff:8.8.8.8", true},
		{"127.0.0.1", false}, {"127.9.9.9", false}, {"::1", false}, {"::ffff:127.0.0.1", false},
		{"10.1.2.3", false}, {"172.16.0.1", false}, {"172.31.255.255", false}, {"192.168.1.1", false},
		{"fc00::1", false}, {"fd12:3456::1", false},
		{"169.254.169.254", false}, {"fe80::1", false},
		{"0.0.0.0", false}, {"0.1.2.3", false}, {"::", false},
		{"100.64.0.1", false}, {"100.127.255.254", false}, {"100.128.0.1", true},
		{"224.0.0.1", false}, {"239.255.255.250", false}, {"ff02::1", false}, {"ff0e::1", false},
		{"255.255.255.255", false}, {"240.0.0.1", false},
		{"64:ff9b::7f00:1", false}, {"64:ff9b::808:808", true},
	} {
		if got := feeds.PublicAddr(netip.MustParseAddr(tc.ip)); got != tc.public {
			t.Errorf("publicAddr(%s) = %v, want %v", tc.ip, got, tc.public)
		}
	}
}
