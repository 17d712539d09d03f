package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/internal/rank"
	"github.com/btslave/btslave/repeater"
)

// labEntry makes a torrent and its catalog entry, as a feed would give it.
func labEntry(t *testing.T) (feeds.Entry, metainfo.Hash, []byte) {
	t.Helper()
	path, _, ihHex, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 1 << 20})
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := feeds.ParseTorrent(raw)
	if err != nil {
		t.Fatal(err)
	}
	var ih metainfo.Hash
	ih.FromHexString(ihHex)
	return e, ih, raw
}

// Ensure that the origin of each swarm is kept: the autopilot's swarm is
// left to make room for the owner's, the owner's is never left by the
// autopilot, and a swarm left with nothing to do cools down, also across
// a restart (from the recorded visits).
func TestOriginsRoomAndCooldown(t *testing.T) {
	a, stop := testAppWith(t, func(c *config.Config) { c.Repeater.MaxSwarms = 1 })
	autoEntry, autoIH, _ := labEntry(t)
	if _, err := a.joinEntry(&autoEntry); err != nil {
		t.Fatal(err)
	}
	if o := a.origin(autoIH); o.origin != rank.OriginAuto || o.joined.IsZero() {
		t.Fatalf("origin %+v", o)
	}
	// The owner asks for another swarm: the autopilot's makes room.
	_, ownIH, ownRaw := labEntry(t)
	got, err := a.Repeat(context.Background(), api.RepeatRequest{Torrent: ownRaw})
	if err != nil || got.Origin != "owner" {
		t.Fatalf("repeat: %+v %v", got, err)
	}
	if a.rep.Swarm(autoIH) != nil || a.rep.Swarm(ownIH) == nil {
		t.Fatalf("swarms after repeat: %d", len(a.rep.Swarms()))
	}
	vs := a.recentVisits(1)
	if len(vs) != 1 || vs[0].Reason != rank.LeftForOwner {
		t.Errorf("visit %+v", vs)
	}
	if b := a.auto.blocked(autoIH, time.Now()); b != "" {
		t.Errorf("room for the owner is no cooldown: %q", b)
	}
	a.leaveAuto(ownIH, rank.LeftOutranked)
	if a.rep.Swarm(ownIH) == nil {
		t.Fatal("the autopilot left the owner's swarm")
	}
	st := a.Status(context.Background())
	if len(st.Torrents) != 1 || st.Torrents[0].Origin != "owner" || !st.Autopilot.Enabled || st.Autopilot.Slots != 1 {
		t.Errorf("status torrents %+v autopilot %+v", st.Torrents, st.Autopilot)
	}

	// The repeater leaves a swarm with nothing to do: cooldown.
	a.onLeave(repeater.Visit{InfoHash: autoIH, Name: "x", Joined: time.Now().Add(-time.Hour), Left: time.Now(), Reason: repeater.LeftIdle})
	if b := a.auto.blocked(autoIH, time.Now()); !strings.Contains(b, "cooldown") || !strings.Contains(b, repeater.LeftIdle) {
		t.Errorf("no cooldown after %q: %q", repeater.LeftIdle, b)
	}
	dataDir := a.cfg.DataDir
	stop()
	b, _ := testAppWith(t, func(c *config.Config) { c.DataDir = dataDir })
	if bl := b.auto.blocked(autoIH, time.Now()); !strings.Contains(bl, "cooldown") {
		t.Errorf("cooldown lost across a restart: %q", bl)
	}
	if b.rep.Swarm(ownIH) == nil || b.origin(ownIH).origin != rank.OriginOwner {
		t.Error("the owner's swarm was not rejoined as the owner's")
	}
}

// Ensure the feeds API: configured and added feeds listed with their
// filters, a configured feed cannot be removed, an added one can; bad
// input is a bad request; status and metrics carry the feed and autopilot
// figures.
func TestFeedsAPIStatusMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rss+xml")
		io.WriteString(w, `<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>one</title>`+
			`<link>magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&amp;dn=one</link></item></channel></rss>`)
	}))
	defer srv.Close()
	a, _ := testAppWith(t, func(c *config.Config) {
		c.File = "/etc/btslave.toml"
		c.Feeds.Jitter = 0
		c.Feeds.Feed = []config.Feed{{Name: "conf", URL: srv.URL + "/rss", Include: "(?i)one", MaxAge: config.Duration(7 * 24 * time.Hour)}}
	})
	ctx := context.Background()
	f, err := a.AddFeed(ctx, api.FeedRequest{Name: "added", URL: srv.URL + "/other", MinSize: "1MiB", Schedule: "@every 1h"})
	if err != nil || f.Name != "added" || !f.Added || f.MinSize != 1<<20 || f.Schedule != "@every 1h" {
		t.Fatalf("add: %+v %v", f, err)
	}
	for _, bad := range []api.FeedRequest{{Name: "x"}, {URL: srv.URL, MinSize: "lots"}, {URL: srv.URL, Include: "("}, {Name: "added", URL: srv.URL}, {URL: srv.URL, Schedule: "sometimes"}} {
		if _, err := a.AddFeed(ctx, bad); !errors.Is(err, api.ErrBadRequest) {
			t.Errorf("add %+v: %v, want a bad request", bad, err)
		}
	}
	err = a.RemoveFeed(ctx, "conf")
	if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), "/etc/btslave.toml") || !strings.Contains(err.Error(), "[[feeds.feed]]") {
		t.Errorf("removing a configured feed: %v", err)
	}
	if err := a.RemoveFeed(ctx, "nope"); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("removing no feed: %v", err)
	}
	if err := a.RemoveFeed(ctx, "added"); err != nil {
		t.Errorf("remove: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var st api.Status
	for {
		st = a.Status(ctx)
		if st.Catalog == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Catalog != 1 || len(st.Feeds) != 1 || st.Feeds[0].Name != "conf" || st.Feeds[0].Added || st.Feeds[0].Include != "(?i)one" || st.Feeds[0].MaxAge != "7d" {
		t.Fatalf("status catalog %d feeds %+v", st.Catalog, st.Feeds)
	}
	// The new entry pokes the autopilot, which ranks it (no trackers: no
	// figures).
	for time.Now().Before(deadline) && len(a.Ranking(ctx).Swarms) == 0 {
		time.Sleep(50 * time.Millisecond)
	}
	rk := a.Ranking(ctx)
	if len(rk.Swarms) != 1 || rk.Swarms[0].Name != "one" || rk.Swarms[0].Source != "" || !strings.Contains(rk.Swarms[0].Error, "no tracker") {
		t.Fatalf("ranking %+v", rk)
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
	for _, want := range []string{"btslave_catalog_entries 1", `btslave_feed_fetches_total{feed="conf"} 1`, `btslave_feed_errors_total{feed="conf"} 0`,
		"btslave_feeds 1", "btslave_autopilot_rankings_total", "btslave_autopilot_ranked_swarms 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// Ensure the ranking says so when the autopilot is off.
func TestAutopilotOff(t *testing.T) {
	a, _ := testAppWith(t, func(c *config.Config) { c.Auto.Enabled = false })
	rk := a.Ranking(context.Background())
	if rk.Enabled || !strings.Contains(rk.Note, "auto.enabled = false") || a.Status(context.Background()).Autopilot.Enabled {
		t.Errorf("ranking %+v", rk)
	}
}
