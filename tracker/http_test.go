package tracker_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/tracker"
)

var (
	lo  = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.IPv6Loopback()
)

// Ensure that an HTTP announce gets the counts, the intervals, a tracker
// id and compact peers without its own address, and a dictionary list
// with compact=0.
func TestHTTPAnnounce(t *testing.T) {
	tr := startTracker(t, tracker.Options{Interval: 10 * time.Minute})
	ih := randomHash()
	first := httpAnnounce(t, tr, ann{ih: ih, port: 1001, left: 0, event: "started"})
	if first.Failure != "" || first.Complete != 1 || first.Incomplete != 0 || len(first.peers) != 0 {
		t.Fatalf("first announce: %+v", first)
	}
	if first.Interval != 600 || first.MinInterval != 300 || len(first.TrackerID) != 8 {
		t.Errorf("intervals %d/%d, tracker id %q", first.Interval, first.MinInterval, first.TrackerID)
	}
	r := httpAnnounce(t, tr, ann{ih: ih, port: 1002, left: 10, event: "started"})
	if r.Complete != 1 || r.Incomplete != 1 || r.Downloaders != 1 || !slices.Equal(r.peers, []netip.AddrPort{netip.AddrPortFrom(lo, 1001)}) {
		t.Fatalf("second announce: %+v %v", r, r.peers)
	}
	d := httpAnnounce(t, tr, ann{ih: ih, port: 1003, left: 10, compact: "0"})
	if len(d.peers) != 2 || !slices.Contains(d.peers, netip.AddrPortFrom(lo, 1001)) || !slices.Contains(d.peers, netip.AddrPortFrom(lo, 1002)) {
		t.Errorf("non-compact peers %v", d.peers)
	}
	if got := httpAnnounce(t, tr, ann{ih: ih, port: 1003, left: 10, numwant: 1}); len(got.peers) != 1 {
		t.Errorf("numwant=1 gave %d peers", len(got.peers))
	}
	// stopped removes the peer.
	httpAnnounce(t, tr, ann{ih: ih, port: 1003, left: 10, event: "stopped"})
	if s := httpAnnounce(t, tr, ann{ih: ih, port: 1002, left: 10}); s.Incomplete != 1 || s.Complete != 1 {
		t.Errorf("after stopped: %+v", s)
	}
}

// Ensure BEP 21 and the intelligent peer list: a paused peer with data
// left is a partial seed, counted in incomplete but not in downloaders nor
// complete; seeds and partial seeds are given only downloaders; a
// downloader gets everyone.
func TestHTTPPartialSeeds(t *testing.T) {
	tr := startTracker(t, tracker.Options{})
	ih := randomHash()
	seed := ann{ih: ih, port: 2001, left: 0, event: "started"}
	partial := ann{ih: ih, port: 2002, left: 500, event: "paused"}
	down := ann{ih: ih, port: 2003, left: 900, event: "started"}
	for _, a := range []ann{seed, partial, down} {
		httpAnnounce(t, tr, a)
	}
	r := httpAnnounce(t, tr, partial)
	if r.Complete != 1 || r.Incomplete != 2 || r.Downloaders != 1 {
		t.Errorf("counts %+v: want complete 1, incomplete 2, downloaders 1", r)
	}
	want := []netip.AddrPort{netip.AddrPortFrom(lo, 2003)}
	if !slices.Equal(r.peers, want) {
		t.Errorf("partial seed got %v, want only the downloader %v", r.peers, want)
	}
	if s := httpAnnounce(t, tr, seed); !slices.Equal(s.peers, want) {
		t.Errorf("seed got %v, want only the downloader %v", s.peers, want)
	}
	if d := httpAnnounce(t, tr, down); len(d.peers) != 2 {
		t.Errorf("downloader got %v, want the seed and the partial seed", d.peers)
	}
	files, _ := httpScrape(t, tr, ih)
	if e := files[ih]; e.Complete != 1 || e.Incomplete != 2 || e.Downloaders != 1 {
		t.Errorf("scrape %+v", e)
	}
	// The partial seed finishes: a seed, and one download counted once.
	partial.left, partial.event = 0, "completed"
	httpAnnounce(t, tr, partial)
	httpAnnounce(t, tr, partial)
	files, _ = httpScrape(t, tr, ih)
	if e := files[ih]; e.Complete != 2 || e.Incomplete != 1 || e.Downloaders != 1 || e.Downloaded != 1 {
		t.Errorf("after completed: %+v", e)
	}
	st := tr.Stats()
	if st.Torrents != 1 || st.Seeds != 2 || st.Partial != 0 || st.Downloaders != 1 {
		t.Errorf("stats %+v", st)
	}
	// A downloader that leaves with nothing left, without a completed
	// event (as aria2 does when it exits at once), finished too; a seed
	// leaving did not.
	down.left, down.event = 0, "stopped"
	httpAnnounce(t, tr, down)
	seed.event = "stopped"
	httpAnnounce(t, tr, seed)
	files, _ = httpScrape(t, tr, ih)
	if e := files[ih]; e.Downloaded != 2 || e.Complete != 1 || e.Incomplete != 0 {
		t.Errorf("after the stops: %+v", e)
	}
}

// Ensure a multi-hash scrape (BEP 48), with zeros for a known-nothing
// hash and a failure for a full scrape or a bad query.
func TestHTTPScrape(t *testing.T) {
	tr := startTracker(t, tracker.Options{})
	a, b, none := randomHash(), randomHash(), randomHash()
	httpAnnounce(t, tr, ann{ih: a, port: 1, left: 0})
	httpAnnounce(t, tr, ann{ih: b, port: 1, left: 5})
	httpAnnounce(t, tr, ann{ih: b, port: 2, left: 5, event: "paused"})
	files, fail := httpScrape(t, tr, a, b, none, a)
	if fail != "" || len(files) != 3 {
		t.Fatalf("scrape: %q %v", fail, files)
	}
	if files[a] != (scrapeEntry{Complete: 1}) || files[b] != (scrapeEntry{Incomplete: 2, Downloaders: 1}) || files[none] != (scrapeEntry{}) {
		t.Errorf("scrape %+v", files)
	}
	if _, fail := httpScrape(t, tr); !strings.Contains(fail, "full scrape") {
		t.Errorf("full scrape: %q", fail)
	}
	for _, q := range []string{"info_hash=short", "info_hash=%zz", "port=1"} {
		body := httpGet(t, httpClient(netip.Addr{}), "http://"+tr.HTTPAddr().String()+"/announce?"+q)
		if !strings.Contains(string(body), "failure reason") {
			t.Errorf("announce?%s: %q", q, body)
		}
	}
}

// Ensure that IPv6 peers are kept apart and given as peers6 (BEP 7).
func TestHTTPIPv6(t *testing.T) {
	tr := startTracker(t, tracker.Options{HTTPListen: "[::]:0"})
	if !tr.HTTPAddr().Addr().Is6() {
		t.Skipf("no IPv6 listener: %v", tr.HTTPAddr())
	}
	ih := randomHash()
	httpAnnounce(t, tr, ann{ih: ih, port: 3001, left: 0, from: lo6})
	r := httpAnnounce(t, tr, ann{ih: ih, port: 3002, left: 1, from: lo})
	if !slices.Equal(r.peers, []netip.AddrPort{netip.AddrPortFrom(lo6, 3001)}) || len(r.Peers6) != 18 {
		t.Errorf("v4 downloader got %v (peers6 %d bytes), want the v6 seed", r.peers, len(r.Peers6))
	}
	r6 := httpAnnounce(t, tr, ann{ih: ih, port: 3003, left: 1, from: lo6})
	if len(r6.peers) != 2 || r6.Complete != 1 || r6.Incomplete != 2 {
		t.Errorf("v6 downloader got %v, counts %+v", r6.peers, r6)
	}
}
