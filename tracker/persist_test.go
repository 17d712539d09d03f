package tracker_test

import (
	"context"
	"testing"
	"time"

	"github.com/btslave/btslave/internal/store"
	"github.com/btslave/btslave/tracker"
)

// Ensure that downloaded counts survive a restart: written while running
// (every SnapshotEvery) and at stop, read at start.
func TestCountersSurviveRestart(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, b := randomHash(), randomHash()
	o := tracker.Options{HTTPListen: "127.0.0.1:0", DB: db.DB, SnapshotEvery: 50 * time.Millisecond, Logger: testLogger(t)}
	first, err := tracker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	for port := range 3 {
		httpAnnounce(t, first, ann{ih: a, port: 100 + port, left: 0, event: "completed"})
	}
	httpAnnounce(t, first, ann{ih: b, port: 100, left: 0, event: "completed"})
	httpAnnounce(t, first, ann{ih: b, port: 100, left: 0, event: "stopped"})
	// A second tracker on the same data sees what was written so far.
	waitFor(t, 5*time.Second, "a snapshot", func() bool {
		peek, err := tracker.New(tracker.Options{HTTPListen: "127.0.0.1:0", DB: db.DB})
		if err != nil {
			t.Fatal(err)
		}
		peekCtx, stop := context.WithCancel(context.Background())
		stop()
		peek.Run(peekCtx)
		return peek.Stats().Torrents == 2
	})
	httpAnnounce(t, first, ann{ih: b, port: 101, left: 0, event: "completed"})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	second := startTracker(t, o)
	files, _ := httpScrape(t, second, a, b)
	if files[a].Downloaded != 3 || files[b].Downloaded != 2 || files[a].Complete != 0 {
		t.Errorf("after restart: a %+v, b %+v", files[a], files[b])
	}
}
