package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/buildinfo"
	"github.com/btslave/btslave/repeater"
	"github.com/btslave/btslave/tracker"
	"github.com/btslave/btslave/web"
)

// Dashboard serves the daemon's dashboard on the demo: its status is the
// demo's helper (the repeater of round 2), its tracker page the demo's
// tracker.
type Dashboard struct {
	srv     *api.Server
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time

	mu   sync.Mutex
	rep  *repeater.Repeater
	tr   *tracker.Tracker
	last Progress
	res  *Result
}

// StartDashboard listens on addr (a taken port fails at once, wrapping
// ErrPortTaken) and serves until Close.
func StartDashboard(addr string, log *slog.Logger) (*Dashboard, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{done: make(chan struct{}), started: time.Now()}
	srv, err := api.Listen(api.ServerOptions{
		Listen: addr, Token: randomToken(), Status: d.status, Logger: log, UI: web.Handler(),
		Ranking: func(context.Context) api.Ranking {
			return api.Ranking{Note: "the demo runs no autopilot: its one swarm is joined by hand", Swarms: []api.RankedSwarm{}}
		},
		Feeds: func(context.Context) []api.Feed { return []api.Feed{} },
	})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("demo dashboard on %s: %w (%w)", addr, ErrPortTaken, err)
		}
		return nil, fmt.Errorf("demo dashboard: %w", err)
	}
	d.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() { defer close(d.done); _ = srv.Serve(ctx) }()
	return d, nil
}

// LoginURL is a one-time login URL (good for api.CodeTTL).
func (d *Dashboard) LoginURL() string {
	return "http://" + d.srv.Addr().String() + d.srv.LoginCode().Path
}

// URL is the dashboard's address.
func (d *Dashboard) URL() string { return "http://" + d.srv.Addr().String() + "/" }

// Close stops serving.
func (d *Dashboard) Close() {
	d.cancel()
	<-d.done
}

// SetHelper is Options.Helper.
func (d *Dashboard) SetHelper(r *repeater.Repeater, t *tracker.Tracker) {
	d.mu.Lock()
	d.rep, d.tr = r, t
	d.mu.Unlock()
}

// SetProgress records the demo's progress (from Options.Progress).
func (d *Dashboard) SetProgress(p Progress) {
	d.mu.Lock()
	d.last = p
	d.mu.Unlock()
}

// SetResult records the demo's outcome.
func (d *Dashboard) SetResult(r Result) {
	d.mu.Lock()
	d.res = &r
	d.mu.Unlock()
}

func (d *Dashboard) status(context.Context) api.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := api.Status{Version: buildinfo.String(), StartedAt: d.started, Uptime: api.Seconds(time.Since(d.started).Seconds()),
		API: d.srv.Addr().String(), Torrents: []api.Torrent{}, Visits: []api.Visit{}, Feeds: []api.Feed{},
		Autopilot: api.Autopilot{Note: "off: this is btslave demo"}}
	st.Peer.BytesUploaded, st.Peer.BytesDownloaded = d.last.HelperUp, d.last.HelperDown
	switch {
	case d.res != nil:
		st.NextSteps = []string{fmt.Sprintf("The demo is over: the crowd completed in %s on average without help and in %s with btslave (%.0f%% sooner); btslave's ratio was %.2f.",
			d.res.Without.Mean.Round(100*time.Millisecond), d.res.With.Mean.Round(100*time.Millisecond), 100*d.res.Gain(), d.res.With.Ratio),
			"Run the real daemon with: btslave run"}
	case d.last.Round == 1:
		st.NextSteps = []string{fmt.Sprintf("Round 1 of the demo: the crowd without help, %.0fs in. btslave joins in round 2.", d.last.Elapsed.Seconds())}
	}
	if d.rep != nil && d.res == nil {
		cs := d.rep.Cache().Stats()
		st.Cache = api.Cache{Budget: cs.Budget, Backend: "memory", Held: cs.Held, Pieces: cs.Pieces, Evictions: cs.Evictions, CompressRatio: cs.Ratio()}
		for _, sw := range d.rep.Swarms() {
			t := sw.Torrent()
			tot := d.rep.Client().Wire.Totals(sw.InfoHash())
			tt := api.Torrent{InfoHash: sw.InfoHash().HexString(), Name: t.Name(), Origin: "owner",
				Peers: t.Stats().ActivePeers, BytesUploaded: tot.BytesUp, BytesDownloaded: tot.BytesDown}
			if t.Info() != nil {
				tt.Size, tt.Pieces = t.Length(), t.NumPieces()
				for i := 0; i < tt.Pieces; i++ {
					if d.rep.Has(sw.InfoHash(), i) {
						tt.PiecesHeld++
					}
				}
			}
			st.Peer.Peers += tt.Peers
			st.Torrents = append(st.Torrents, tt)
		}
	}
	if d.tr != nil {
		s := d.tr.Stats()
		st.Tracker = &api.TrackerState{AnnounceURL: s.AnnounceURL, Open: s.Open, Torrents: s.Torrents, Seeds: s.Seeds,
			PartialSeeds: s.Partial, Downloaders: s.Downloaders, AnnouncesPerSecond: s.AnnounceRate, ScrapesPerSecond: s.ScrapeRate}
	}
	return st
}
