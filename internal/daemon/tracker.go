package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/store"
	"github.com/btslave/btslave/tracker"
)

// trackerOptions maps [tracker] to the tracker's options, its counters
// kept in db.
func trackerOptions(c config.Tracker, db *bolt.DB, log *slog.Logger) (tracker.Options, error) {
	o := tracker.Options{
		HTTPListen: c.HTTPListen,
		UDPListen:  c.UDPListen,
		PublicURL:  c.PublicURL,
		Interval:   c.Interval.Std(),
		RatePerIP:  c.RatePerIP,
		DB:         db,
		Logger:     log,
	}
	if !c.Open {
		o.Whitelist = c.Whitelist
	}
	if len(c.SyncPeers) > 0 || c.SyncMulticast {
		o.Sync = tracker.SyncOptions{Listen: c.SyncListen, Key: []byte(c.SyncKey), Multicast: c.SyncMulticast}
		for _, p := range c.SyncPeers {
			ap, err := netip.ParseAddrPort(p)
			if err != nil {
				return o, fmt.Errorf("tracker.sync_peers: %w", err)
			}
			o.Sync.Peers = append(o.Sync.Peers, ap)
		}
	}
	return o, nil
}

// startTracker builds the embedded tracker on the daemon's database; Run
// serves it.
func (a *App) startTracker() error {
	o, err := trackerOptions(a.cfg.Tracker, a.db.DB, a.log.With("component", "tracker"))
	if err != nil {
		return err
	}
	if a.tracker, err = tracker.New(o); err != nil {
		return err
	}
	return a.tracker.Register(a.reg)
}

// trackerStatus is the tracker's part of the status, nil when it is off.
func (a *App) trackerStatus() *api.TrackerState {
	if a.tracker == nil {
		return nil
	}
	sn := a.tracker.Stats()
	st := &api.TrackerState{
		AnnounceURL: sn.AnnounceURL, Open: sn.Open, Whitelisted: sn.Whitelisted,
		Torrents: sn.Torrents, Seeds: sn.Seeds, PartialSeeds: sn.Partial, Downloaders: sn.Downloaders,
		AnnouncesPerSecond: sn.AnnounceRate, ScrapesPerSecond: sn.ScrapeRate,
	}
	if sn.Sync != nil {
		st.SyncPeers = sn.Sync.Peers
	}
	return st
}

// trackerGCPercent is the garbage collector's target for a process that
// is only a tracker, unless GOGC says otherwise. Peer records hold no
// pointers, so a collection's work grows with the torrents, not the
// peers: collecting at 25% growth instead of 100% costs little CPU and
// keeps the heap near what is live (19 bytes per peer instead of 34 in
// bench/run.sh tracker).
const trackerGCPercent = 25

// RunTracker runs the embedded tracker alone ("btslave tracker"), its
// counters in the data dir's database, until ctx is done. [tracker]
// enabled need not be set; cfg must be valid with it set.
func RunTracker(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(trackerGCPercent)
	}
	db, err := store.Open(cfg.DataDir, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	o, err := trackerOptions(cfg.Tracker, db.DB, log)
	if err != nil {
		return err
	}
	tr, err := tracker.New(o)
	if err != nil {
		return err
	}
	return tr.Run(ctx)
}
