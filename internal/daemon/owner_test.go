package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/internal/rank"
	"github.com/btslave/btslave/repeater"
)

// fakeTracker answers HTTP announces with no peers and counts each info
// hash's events ("started", "stopped", "" for a regular announce).
type fakeTracker struct {
	*httptest.Server
	mu     sync.Mutex
	events map[metainfo.Hash]map[string]int
}

func newFakeTracker(t *testing.T) *fakeTracker {
	ft := &fakeTracker{events: map[metainfo.Hash]map[string]int{}}
	ft.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var ih metainfo.Hash
		copy(ih[:], q.Get("info_hash"))
		ft.mu.Lock()
		if ft.events[ih] == nil {
			ft.events[ih] = map[string]int{}
		}
		ft.events[ih][q.Get("event")]++
		ft.mu.Unlock()
		w.Write([]byte("d8:intervali1800e8:completei0e10:incompletei1e5:peers0:e"))
	}))
	t.Cleanup(ft.Close)
	return ft
}

func (ft *fakeTracker) count(ih metainfo.Hash, event string) int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.events[ih][event]
}

// trackedEntry makes a torrent announced to tracker and its catalog entry.
func trackedEntry(t *testing.T, tracker string) (feeds.Entry, metainfo.Hash, []byte) {
	t.Helper()
	path, _, ihHex, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 1 << 20, Announce: []string{tracker}})
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := feeds.ParseTorrent(raw)
	if err != nil {
		t.Fatal(err)
	}
	var ih metainfo.Hash
	if err := ih.FromHexString(ihHex); err != nil {
		t.Fatal(err)
	}
	return e, ih, raw
}

// recorded reports whether ih is in the owner's swarms bucket.
func recorded(t *testing.T, a *App, ih metainfo.Hash) bool {
	t.Helper()
	var ok bool
	if err := a.db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketTorrents).Get(ih[:]) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ok
}

// statusOf returns ih's entry in the daemon's status.
func statusOf(a *App, ih metainfo.Hash) (api.Torrent, bool) {
	for _, tt := range a.Status(context.Background()).Torrents {
		if tt.InfoHash == ih.HexString() {
			return tt, true
		}
	}
	return api.Torrent{}, false
}

// Ensure that a swarm given with "btslave repeat" outlives the leave rules
// that end an autopilot swarm with the same (idle) figures: it stays
// joined, announced (no "stopped") and recorded, status says why it is
// quiet, and it is rejoined as the owner's after a restart, where it
// outlives the rules again. "btslave leave" still forgets it.
func TestOwnerSwarmSurvivesIdleAndRestart(t *testing.T) {
	ft := newFakeTracker(t)
	tracker := ft.URL + "/announce"
	opts := appOptions{tick: 20 * time.Millisecond,
		leave: repeater.LeavePolicy{Grace: 100 * time.Millisecond, IdleFor: 200 * time.Millisecond, Sample: 20 * time.Millisecond}}
	mutate := func(c *config.Config) { c.Auto.Enabled, c.Repeater.MaxSwarms = false, 3 }
	a, stop := testAppOpts(t, mutate, opts)
	dataDir := a.cfg.DataDir

	_, ownIH, ownRaw := trackedEntry(t, tracker)
	if _, err := a.Repeat(context.Background(), api.RepeatRequest{Torrent: ownRaw}); err != nil {
		t.Fatal(err)
	}
	autoEntry, autoIH, _ := trackedEntry(t, tracker)
	if _, err := a.joinEntry(&autoEntry); err != nil {
		t.Fatal(err)
	}
	// Both swarms have no peers at all: the autopilot's is left for it.
	deadline := time.Now().Add(20 * time.Second)
	for a.rep.Swarm(autoIH) != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if a.rep.Swarm(autoIH) != nil {
		t.Fatal("the autopilot's idle swarm was never left: the idle rule did not fire")
	}
	if vs := a.recentVisits(5); len(vs) != 1 || vs[0].InfoHash != autoIH.HexString() || vs[0].Reason != repeater.LeftNoNeed {
		t.Fatalf("visits %+v, want only the autopilot's swarm left for %q", vs, repeater.LeftNoNeed)
	}
	time.Sleep(time.Second) // five times IdleFor more

	// checkKept checks the owner's swarm after the idle rules had time to
	// fire; stopped is how many "stopped" announces it may have sent (one
	// per shutdown).
	checkKept := func(a *App, run string, stopped int) {
		t.Helper()
		if a.rep.Swarm(ownIH) == nil {
			t.Fatalf("%s: the owner's swarm was left (visits %+v)", run, a.recentVisits(5))
		}
		if !recorded(t, a, ownIH) {
			t.Errorf("%s: the owner's swarm is no longer recorded", run)
		}
		tt, ok := statusOf(a, ownIH)
		if !ok || tt.Origin != string(rank.OriginOwner) || tt.Quiet != repeater.LeftNoNeed || tt.QuietSince.IsZero() {
			t.Errorf("%s: status %+v (listed %v), want the owner's swarm quiet for %q", run, tt, ok, repeater.LeftNoNeed)
		}
		if n := ft.count(ownIH, "stopped"); n != stopped {
			t.Errorf("%s: %d stopped announces for the owner's swarm, want %d", run, n, stopped)
		}
	}
	checkKept(a, "first run", 0)
	if ft.count(ownIH, "started") != 1 || ft.count(autoIH, "stopped") != 1 {
		t.Errorf("announces: owner started %d, autopilot's stopped %d", ft.count(ownIH, "started"), ft.count(autoIH, "stopped"))
	}
	stop()

	b, _ := testAppOpts(t, func(c *config.Config) { mutate(c); c.DataDir = dataDir }, opts)
	if b.rep.Swarm(ownIH) == nil || b.origin(ownIH).origin != rank.OriginOwner || !b.rep.Swarm(ownIH).Kept() {
		t.Fatal("the owner's swarm was not rejoined as the owner's after a restart")
	}
	if b.rep.Swarm(autoIH) != nil {
		t.Error("the autopilot's swarm was rejoined from a record")
	}
	time.Sleep(1500 * time.Millisecond) // grace and idle time, and more
	checkKept(b, "after restart", 1)
	if n := ft.count(ownIH, "started"); n != 2 {
		t.Errorf("%d started announces for the owner's swarm over two runs", n)
	}
	if err := b.Leave(context.Background(), ownIH.HexString()); err != nil {
		t.Fatal(err)
	}
	if b.rep.Swarm(ownIH) != nil || recorded(t, b, ownIH) {
		t.Error("btslave leave did not forget the owner's swarm")
	}
}

// Ensure that "btslave leave" forgets a recorded swarm that is not served
// (its rejoin failed: max_swarms, a record that no longer parses), and is
// a bad request for a swarm neither served nor recorded.
func TestLeaveForgetsUnservedRecord(t *testing.T) {
	a, _ := testAppWith(t, func(c *config.Config) { c.Auto.Enabled = false })
	var ih metainfo.Hash
	ih[0] = 1
	if err := a.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTorrents).Put(ih[:], []byte(`{"magnet":"bad"}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Leave(context.Background(), ih.HexString()); err != nil || recorded(t, a, ih) {
		t.Fatalf("leave of a recorded swarm not served: %v (still recorded: %v)", err, recorded(t, a, ih))
	}
	if err := a.Leave(context.Background(), ih.HexString()); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("leave of an unknown swarm: %v, want a bad request", err)
	}
}
