package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
)

// feedServer serves an RSS feed of three items: a .torrent, a beta
// .torrent and a broken .torrent.
func feedServer(t *testing.T) *httptest.Server {
	t.Helper()
	path, _, _, _ := lab.MakeTorrent(t, lab.TorrentOptions{Name: "good.iso", Size: 1 << 20})
	good, _ := os.ReadFile(path)
	path, _, _, _ = lab.MakeTorrent(t, lab.TorrentOptions{Name: "beta.iso", Size: 1 << 20})
	beta, _ := os.ReadFile(path)
	mux := http.NewServeMux()
	mux.HandleFunc("/good.torrent", func(w http.ResponseWriter, r *http.Request) { w.Write(good) })
	mux.HandleFunc("/beta.torrent", func(w http.ResponseWriter, r *http.Request) { w.Write(beta) })
	mux.HandleFunc("/broken.torrent", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("d4:infoe")) })
	mux.HandleFunc("/rss", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rss+xml")
		var items strings.Builder
		for _, n := range []string{"Good 1.0", "Good 2.0 beta", "Broken"} {
			file := map[string]string{"Good 1.0": "good", "Good 2.0 beta": "beta", "Broken": "broken"}[n]
			fmt.Fprintf(&items, `<item><title>%s</title><enclosure url="/%s.torrent" type="application/x-bittorrent"/></item>`, n, file)
		}
		fmt.Fprintf(w, `<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>%s</channel></rss>`, items.String())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// Ensure "feeds test" works without a daemon and tells for every item
// whether it is kept and why, as text and JSON, and that its errors have
// the right exit codes.
func TestFeedsTest(t *testing.T) {
	srv := feedServer(t)
	env := testEnv(t)
	code, out, errOut := run(t, env, "feeds", "test", srv.URL+"/rss", "--exclude", "(?i)beta")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"3 items, 1 kept, 1 in error", "kept  ", "Good 1.0", "skip ", `excluded by exclude /(?i)beta/`, "error ", "bad .torrent"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, env, "feeds", "test", srv.URL+"/rss", "--json", "--min-size", "2MiB")
	var res feeds.Result
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || len(res.Items) != 3 || res.Items[0].Kept || !strings.Contains(res.Items[0].Why, "under min") {
		t.Errorf("--json: exit %d, %v:\n%s", code, err, out)
	}

	// A configured feed is tested by name, with its own filters.
	cfg := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[[feeds.feed]]\nname = \"mine\"\nurl = %q\ninclude = \"beta\"\n", srv.URL+"/rss")), 0o600)
	if code, out, errOut := run(t, env, "feeds", "test", "mine", "--config", cfg); code != 0 || !strings.Contains(out, "3 items, 1 kept") || !strings.Contains(out, "not matched by include /beta/") {
		t.Errorf("configured feed: %d %s %s", code, out, errOut)
	}

	for _, tc := range []struct {
		args []string
		code int
		say  string
	}{
		{[]string{"feeds", "test"}, exitUsage, "one URL"},
		{[]string{"feeds", "test", "ftp://x/rss"}, exitUsage, "neither an http(s) URL nor a folder"},
		{[]string{"feeds", "test", srv.URL + "/rss", "--include", "("}, exitUsage, "regexp"},
		{[]string{"feeds", "test", srv.URL + "/rss", "--min-size", "big"}, exitUsage, "min_size"},
		{[]string{"feeds", "test", "http://127.0.0.1:1/rss"}, exitFailure, "connection refused"},
		{[]string{"feeds", "test", srv.URL + "/nope"}, exitFailure, "404"},
	} {
		code, _, errOut := run(t, env, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.say) {
			t.Errorf("%v: exit %d %q, want %d and %q", tc.args, code, errOut, tc.code, tc.say)
		}
	}
}

// Ensure feeds list/add/remove and swarms through a running daemon.
func TestFeedsAndSwarmsThroughDaemon(t *testing.T) {
	srv := feedServer(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	cfgPath := filepath.Join(t.TempDir(), "btslave.toml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`[peer]
listen = "127.0.0.1:0"
[api]
listen = "127.0.0.1:0"
[cache]
size = "8MiB"
[feeds]
jitter = "0s"
[[feeds.feed]]
name = "conf"
url = %q
`, srv.URL+"/rss")), 0o600)
	env := testEnv(t)
	cli := func(args ...string) (int, string, string) {
		return run(t, env, append(args, "--config", cfgPath, "--data-dir", dataDir)...)
	}
	startDaemon(t, cfgPath, dataDir)

	if code, out, errOut := cli("feeds", "add", srv.URL+"/rss?second", "--name", "extra", "--min-size", "1MiB", "--exclude", "beta"); code != 0 || !strings.Contains(out, `added feed "extra"`) {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := cli("feeds", "add", srv.URL+"/rss", "--name", "extra"); code != exitUsage || !strings.Contains(errOut, "already exists") {
		t.Errorf("adding twice: %d %q", code, errOut)
	}
	if code, _, errOut := cli("feeds", "add", srv.URL+"/rss", "--schedule", "often"); code != exitUsage || !strings.Contains(errOut, "cron") {
		t.Errorf("bad schedule: %d %q", code, errOut)
	}
	code, out, _ := cli("feeds", "list")
	if code != 0 || !strings.Contains(out, "conf") || !strings.Contains(out, "config") || !strings.Contains(out, "extra") || !strings.Contains(out, "added") ||
		!strings.Contains(out, `extra: filters exclude "beta", min_size 1.0 MiB`) {
		t.Errorf("list:\n%s", out)
	}
	code, out, errOut := cli("feeds", "remove", "conf")
	if code != exitUsage || !strings.Contains(errOut, cfgPath) || !strings.Contains(errOut, "[[feeds.feed]]") || strings.Count(errOut, "bad request") > 1 {
		t.Errorf("removing a configured feed: %d %q %q", code, out, errOut)
	}
	if code, out, errOut := cli("feeds", "remove", "extra"); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("remove: %d %q %q", code, out, errOut)
	}
	var fs []api.Feed
	code, out, _ = cli("feeds", "list", "--json")
	if err := json.Unmarshal([]byte(out), &fs); code != 0 || err != nil || len(fs) != 1 || fs[0].Name != "conf" {
		t.Errorf("list --json: %d %v %s", code, err, out)
	}

	// The feed's two good torrents reach the catalog and the ranking
	// (no tracker: no figures).
	var rk api.Ranking
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, out, _ = cli("swarms", "--json")
		if err := json.Unmarshal([]byte(out), &rk); code != 0 || err != nil {
			t.Fatalf("swarms --json: %d %v %s", code, err, out)
		}
		if len(rk.Swarms) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !rk.Enabled || rk.Slots != 3 || len(rk.Swarms) != 2 || rk.Swarms[0].Source != "" {
		t.Fatalf("ranking %+v", rk)
	}
	code, out, _ = cli("swarms")
	if code != 0 || !strings.Contains(out, "autopilot: 0 of 3 slots used") || !strings.Contains(out, "NEED") || !strings.Contains(out, "good.iso") || !strings.Contains(out, "no tracker to scrape") {
		t.Errorf("swarms:\n%s", out)
	}
	code, out, _ = cli("status")
	if code != 0 || !strings.Contains(out, "2 torrents in the catalog") || !strings.Contains(out, "autopilot") {
		t.Errorf("status:\n%s", out)
	}
}

// Ensure the ranking's text shows each score's parts, the data source,
// the corrections and the scrape's age.
func TestPrintRanking(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	rk := &api.Ranking{Enabled: true, At: now.Add(-3 * time.Second), Next: now.Add(57 * time.Second), Slots: 2, OwnerSwarms: 1, AutoSwarms: 1,
		MinScore: 0.5, Hysteresis: 1.5, Swarms: []api.RankedSwarm{
			{Rank: 1, InfoHash: "0123456789abcdef0123456789abcdef01234567", Name: "needy", Score: 1.125, Need: 1.5, Reach: 0.75, Age: 1,
				Seeders: 1, Downloaders: 3, Source: "incomplete", SelfSubtracted: true, Seen: &api.SeenPeers{Seeds: 1, Downloaders: 3},
				ScrapedAt: now.Add(-4 * time.Second), ScrapeAge: 4, Serving: true, Origin: "auto", State: "serving"},
			{Rank: 2, InfoHash: "89abcdef0123456789abcdef0123456789abcdef", Name: "bep21", Score: 2, Need: 2, Reach: 1, Age: 1,
				Seeders: 1, Downloaders: 4, Source: "downloaders", PartialSubtracted: 2, State: "no free slot"},
			{Rank: 3, InfoHash: "fedcba9876543210fedcba9876543210fedcba98", Name: "dark", State: "no figures", Error: "tracker x: timeout"},
		}}
	var b bytes.Buffer
	printRanking(&b, rk, 2, now)
	out := b.String()
	for _, want := range []string{"2 of 2 slots used (1 by the owner, 1 by the autopilot)", "ranked 3s ago", "next in 57s",
		"1.125", "1.5", "0.75", "1.00", "3 incomplete -us", "1/0/3", "4s ago", "auto", "01234567", "needy",
		"4 downloaders -2p", "... and 1 more"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printRanking(&b, rk, 0, now)
	if !strings.Contains(b.String(), "no figures (tracker x: timeout)") {
		t.Errorf("--limit 0:\n%s", b.String())
	}
	b.Reset()
	printRanking(&b, &api.Ranking{Note: "the autopilot is off (auto.enabled = false)"}, 0, now)
	if !strings.Contains(b.String(), "autopilot: the autopilot is off") {
		t.Errorf("off: %s", b.String())
	}
}

// Ensure that status says why an owner's swarm is quiet, and since when.
func TestPrintStatusQuiet(t *testing.T) {
	st := &api.Status{Version: "x", Torrents: []api.Torrent{
		{InfoHash: "0123456789abcdef0123456789abcdef01234567", Name: "mine", Origin: "owner", Pieces: 4, PiecesHeld: 1,
			Quiet: "no downloaders", QuietSince: time.Now().Add(-90 * time.Second)},
		{InfoHash: "89abcdef0123456789abcdef0123456789abcdef", Name: "busy", Origin: "owner", Pieces: 4}}}
	var b bytes.Buffer
	printStatus(&b, st)
	lines := strings.Split(b.String(), "\n")
	var mine, busy string
	for _, l := range lines {
		switch {
		case strings.Contains(l, "mine"):
			mine = l
		case strings.Contains(l, "busy"):
			busy = l
		}
	}
	if !strings.Contains(mine, "quiet for 1m30s (no downloaders), fetching nothing new") || strings.Contains(busy, "quiet") {
		t.Errorf("status:\n%s", b.String())
	}
}
