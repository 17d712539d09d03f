package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater/announce"
)

// trackerGet makes a request to the daemon's tracker and returns the body.
func trackerGet(t *testing.T, base, pathQuery string) string {
	t.Helper()
	resp, err := http.Get(base + pathQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "failure reason") {
		t.Fatalf("GET %s: %s %q", pathQuery, resp.Status, body)
	}
	return string(body)
}

// fakeAnnounce announces a made-up peer at port for ih.
func fakeAnnounce(t *testing.T, base string, ih metainfo.Hash, port int, left int64, event string) {
	t.Helper()
	q := fmt.Sprintf("/announce?info_hash=%s&peer_id=-XX0001-%012d&port=%d&uploaded=0&downloaded=0&left=%d&event=%s",
		announce.EscapeBytes(ih[:]), port, port, left, event)
	trackerGet(t, base, q)
}

// Ensure the daemon with [tracker] on: the tracker serves on its own
// listener, the status and the metrics show it, the autopilot's scraper
// reads BEP 21 downloaders from it so that the need score's source is
// "downloaders" (partial seeds left out), and the completed counts
// survive a restart.
func TestDaemonTracker(t *testing.T) {
	port := lab.FreePort(t, lab.Loopback)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var ih metainfo.Hash
	copy(ih[:], "btslave tracker test")
	feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rss+xml")
		fmt.Fprintf(w, `<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>ours</title>`+
			`<link>magnet:?xt=urn:btih:%s&amp;dn=ours&amp;tr=%s</link></item></channel></rss>`, ih.HexString(), base+"/announce")
	}))
	defer feed.Close()
	mutate := func(c *config.Config) {
		c.Tracker.Enabled, c.Tracker.Open = true, true
		c.Tracker.HTTPListen, c.Tracker.UDPListen = fmt.Sprintf("127.0.0.1:%d", port), ""
		c.Auto.Interval, c.Auto.ScrapeMaxAge = config.Duration(time.Second), 0
		c.Feeds.Jitter = 0
		c.Feeds.Feed = []config.Feed{{Name: "own", URL: feed.URL + "/rss"}}
	}
	a, stop := testAppWith(t, mutate)
	fakeAnnounce(t, base, ih, 1001, 0, "completed") // a seed
	fakeAnnounce(t, base, ih, 1002, 50, "started")  // downloaders
	fakeAnnounce(t, base, ih, 1003, 50, "started")
	fakeAnnounce(t, base, ih, 1004, 50, "paused") // a partial seed

	ctx := context.Background()
	var sw api.RankedSwarm
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if rk := a.Ranking(ctx); len(rk.Swarms) == 1 {
			sw = rk.Swarms[0]
			if sw.Source == "downloaders" && sw.Downloaders == 2 {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if sw.Source != "downloaders" || sw.Downloaders != 2 || sw.Seeders != 1 || sw.Tracker != base+"/announce" {
		t.Fatalf("ranked %+v: want source downloaders, 2 downloaders (the partial seed left out), 1 seeder", sw)
	}
	st := a.Status(ctx)
	if tr := st.Tracker; tr == nil || tr.AnnounceURL != base+"/announce" || tr.Torrents != 1 || tr.PartialSeeds != 1 || tr.Downloaders != 2 {
		t.Errorf("status tracker %+v", st.Tracker)
	}
	tok, _ := api.ReadToken(a.cfg.DataDir)
	req, _ := http.NewRequest("GET", "http://"+a.APIAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `btslave_tracker_peers{kind="partial_seed"} 1`) {
		t.Errorf("daemon metrics lack the tracker's")
	}
	if !strings.Contains(trackerGet(t, base, "/metrics"), "btslave_tracker_torrents 1") {
		t.Errorf("tracker's own /metrics lack btslave_tracker_torrents")
	}

	dataDir := a.cfg.DataDir
	stop()
	testAppWith(t, func(c *config.Config) { mutate(c); c.DataDir = dataDir; c.Feeds.Feed = nil })
	scrape := trackerGet(t, base, "/scrape?info_hash="+announce.EscapeBytes(ih[:]))
	if !strings.Contains(scrape, "10:downloadedi1e") {
		t.Errorf("after a restart the scrape is %q, want downloaded 1", scrape)
	}
}
