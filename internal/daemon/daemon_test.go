package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
)

func testApp(t *testing.T) *App {
	t.Helper()
	a, _ := testAppWith(t, nil)
	return a
}

// testAppWith runs an App on loopback with a small cache, the config
// changed by mutate; stop stops it (also done at cleanup).
func testAppWith(t *testing.T, mutate func(*config.Config)) (_ *App, stop func()) {
	t.Helper()
	return testAppOpts(t, mutate, appOptions{})
}

// testAppOpts is testAppWith with the daemon's test options.
func testAppOpts(t *testing.T, mutate func(*config.Config), o appOptions) (_ *App, stop func()) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Peer.Listen, cfg.Peer.IPv6 = "127.0.0.1:0", false
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Cache.Size = 8 << 20
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return a, stop
}

// Ensure a swarm handed to the daemon shows in status and in per-swarm
// metrics, behind the token, and that bad requests are bad requests.
func TestRepeatStatusMetrics(t *testing.T) {
	a := testApp(t)
	torrentPath, _, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 1 << 20})
	raw, _ := os.ReadFile(torrentPath)
	if _, err := a.Repeat(context.Background(), api.RepeatRequest{Torrent: raw}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []api.RepeatRequest{{}, {Torrent: []byte("nope")}, {InfoHash: "xyz"}, {Torrent: raw, Magnet: "magnet:?xt=urn:btih:" + ih}} {
		if _, err := a.Repeat(context.Background(), bad); !errors.Is(err, api.ErrBadRequest) {
			t.Errorf("%+v: %v, want a bad request", bad, err)
		}
	}
	st := a.Status(context.Background())
	if len(st.Torrents) != 1 || st.Torrents[0].InfoHash != ih {
		t.Fatalf("status torrents %+v", st.Torrents)
	}
	tok, err := api.ReadToken(a.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+a.APIAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"btslave_swarms 1", `btslave_swarm_uploaded_bytes{infohash="` + ih + `"`, "btslave_cache_budget_bytes 8.388608e+06",
		`btslave_bep56_saved_bytes_total{direction="up"} 0`, `btslave_bep56_saved_bytes_total{direction="down"} 0`, "btslave_bep56_connections_total 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if err := a.Leave(context.Background(), ih); err != nil {
		t.Fatal(err)
	}
	if v := a.recentVisits(5); len(v) != 1 || v[0].Reason != "left by owner" || v[0].InfoHash != ih {
		t.Errorf("visits %+v", v)
	}
	if _, err := os.Stat(filepath.Join(a.cfg.DataDir, api.AddrFile)); err != nil {
		t.Errorf("api.addr: %v", err)
	}
}
