package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Ensure a daemon with no feed and no swarm says what to do next, once in
// its log and in its status; with a feed it says nothing of the kind.
func TestNextSteps(t *testing.T) {
	for _, withFeed := range []bool{false, true} {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.Peer.Listen, cfg.Peer.IPv6 = "127.0.0.1:0", false
		cfg.API.Listen = "127.0.0.1:0"
		cfg.Cache.Size = 8 << 20
		if withFeed {
			cfg.Feeds.Feed = []config.Feed{{Name: "f", URL: "http://127.0.0.1:1/rss"}}
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		var log lockedBuffer
		a, err := newApp(cfg, slog.New(slog.NewTextHandler(&log, nil)), appOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- a.Run(ctx) }()
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(log.String(), "btslave running") && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		st := a.Status(ctx)
		a.Status(ctx) // asking again logs nothing more
		time.Sleep(100 * time.Millisecond)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		logged := strings.Count(log.String(), "btslave feeds add URL")
		if withFeed {
			if len(st.NextSteps) != 0 || logged != 0 {
				t.Errorf("with a feed: status %q, logged %d times", st.NextSteps, logged)
			}
			continue
		}
		all := strings.Join(st.NextSteps, "\n")
		for _, want := range []string{"btslave feeds add URL", "btslave repeat FILE", "http://" + a.APIAddr() + "/", "btslave web"} {
			if !strings.Contains(all, want) {
				t.Errorf("next steps lack %q: %q", want, all)
			}
		}
		if logged != 1 {
			t.Errorf("logged the next steps %d times, want once:\n%s", logged, log.String())
		}
	}
}

// Ensure the daemon's feed test validates as "feeds add" does.
func TestTestFeedBadRequest(t *testing.T) {
	a := testApp(t)
	for _, req := range []api.FeedRequest{{}, {URL: "ftp://x/"}, {URL: "http://x/", MinSize: "lots"}} {
		if _, err := a.TestFeed(context.Background(), req); err == nil || !strings.Contains(err.Error(), api.ErrBadRequest.Error()) {
			t.Errorf("%+v: err %v, want a bad request", req, err)
		}
	}
}
