// Package daemon wires btslave's parts into one running daemon and owns its
// lifecycle: open the state, start the BitTorrent client, the feeds, the
// autopilot and the local API, run until the context ends, then stop
// everything in order within a bounded time.
//
// # Autopilot
//
// With auto.enabled the daemon chooses swarms by itself: every
// auto.interval (and soon after a feed finds a new torrent or a swarm is
// left) it scrapes the trackers of the newest catalog entries, scores each
// swarm by need (package rank) and serves the neediest within
// repeater.max_swarms, leaving those that fell behind. Swarms the owner
// gave with "btslave repeat" are recorded with their origin and never left
// by the autopilot or by the repeater's leave rules (they go quiet
// instead), only by "btslave leave"; a swarm left with nothing to do is
// not rejoined for auto.cooldown (the visits say why each swarm was left).
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/buildinfo"
	"github.com/btslave/btslave/internal/store"
	"github.com/btslave/btslave/repeater"
	"github.com/btslave/btslave/repeater/scrape"
	"github.com/btslave/btslave/tracker"
	"github.com/btslave/btslave/web"
)

// StopTimeout bounds a graceful stop: announce stopped, flush state, close
// the database.
const StopTimeout = 5 * time.Second

// App is one running daemon.
type App struct {
	cfg     *config.Config
	log     *slog.Logger
	started time.Time

	db     *store.DB
	rep    *repeater.Repeater
	client *repeater.Client
	api    *api.Server
	reg    *prometheus.Registry
	visits *prometheus.CounterVec

	feeds   *feeds.Service
	tracker *tracker.Tracker // nil when [tracker] is off
	pub     *publisher       // published torrents and their everseeds
	scraper *scrape.Scraper  // nil when the autopilot is off
	auto    *autopilot       // nil when the autopilot is off
	master  masterParts      // helpers of masters (master.go)
	friends *friendsPart     // nil when [friends] is off
	mounts  mountSet         // btfs mounts (mount.go)
	bg      sync.WaitGroup   // feeds and autopilot loops

	// joinMu serialises joins, so that the owner's join that makes room
	// and the autopilot's joins do not take each other's slots.
	joinMu sync.Mutex

	mu      sync.Mutex
	origins map[metainfo.Hash]swarmOrigin // who had each served swarm joined

	closeOnce sync.Once
}

// New opens the data dir and starts the client and the API listener. On
// error, whatever it opened is closed again. cfg.DataDir must be resolved.
func New(cfg *config.Config, log *slog.Logger) (*App, error) {
	return newApp(cfg, log, appOptions{})
}

// appOptions tunes what the configuration does not (tests): zero fields
// take the repeater's defaults.
type appOptions struct {
	leave repeater.LeavePolicy // when the repeater's leave rules fire
	tick  time.Duration        // how often each swarm re-plans
}

func newApp(cfg *config.Config, log *slog.Logger, o appOptions) (_ *App, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("daemon: data dir not set")
	}
	a := &App{cfg: cfg, log: log, started: time.Now(), visits: newVisitsCounter(),
		origins: map[metainfo.Hash]swarmOrigin{}}
	defer func() {
		if err != nil {
			a.close()
		}
	}()

	if a.db, err = store.Open(cfg.DataDir, store.Options{}); err != nil {
		return nil, err
	}
	token := cfg.API.Token
	if token == "" {
		if token, err = api.LoadOrCreateToken(cfg.DataDir); err != nil {
			return nil, err
		}
	}

	limit := repeater.SetMemoryLimit(int64(cfg.Cache.Size))
	log.Debug("memory limit", "bytes", limit)
	a.rep, err = repeater.New(repeater.Options{
		Peer:     cfg.Peer,
		Cache:    cfg.Cache,
		Repeater: cfg.Repeater,
		CacheDir: filepath.Join(cfg.DataDir, "cache"),
		Logger:   log,
		Announce: true,
		OnLeave:  a.onLeave,
		Leave:    o.leave,
		Tick:     o.tick,
	})
	if err != nil {
		return nil, err
	}
	a.client = a.rep.Client()
	if err := a.startMaster(); err != nil {
		return nil, err
	}

	a.feeds, err = feeds.New(feeds.Options{
		Feeds:   cfg.Feeds,
		DB:      a.db.DB,
		Version: buildinfo.String(),
		Logger:  log.With("component", "feeds"),
		OnNew: func(feeds.Entry) {
			if a.auto != nil {
				a.auto.poke()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if cfg.Auto.Enabled {
		if err := a.startAutopilot(); err != nil {
			return nil, err
		}
	}

	if cfg.Friends.Enabled {
		if a.friends, err = a.startFriends(); err != nil {
			return nil, err
		}
	}

	a.reg = prometheus.NewRegistry()
	if err := a.registerMetrics(); err != nil {
		return nil, err
	}
	if cfg.Tracker.Enabled {
		if err := a.startTracker(); err != nil {
			return nil, err
		}
	}
	if err := a.startPublish(); err != nil {
		return nil, err
	}
	a.api, err = api.Listen(api.ServerOptions{
		Listen:      string(cfg.API.Listen),
		Token:       token,
		Status:      a.Status,
		Repeat:      a.Repeat,
		Leave:       a.Leave,
		Ranking:     a.Ranking,
		Feeds:       a.Feeds,
		AddFeed:     a.AddFeed,
		RemoveFeed:  a.RemoveFeed,
		TestFeed:    a.TestFeed,
		FeedItems:   a.FeedItems,
		UI:          web.Handler(),
		Publish:     a.Publish,
		Published:   a.Published,
		Unpublish:   a.Unpublish,
		Publishing:  a.Publishing,
		Help:        a.Help,
		Cashin:      a.Cashin,
		AskEverseed: a.AskEverseed,
		Mounts:      a,
		Friends:     friendsAPI{a},
		Registry:    a.reg,
		Logger:      log.With("component", "api"),
	})
	if err != nil {
		return nil, err
	}
	a.rejoin()
	a.remount()
	if err := api.WriteFileAtomic(filepath.Join(cfg.DataDir, api.AddrFile), []byte(a.api.Addr().String()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write API address: %w", err)
	}
	return a, nil
}

// startAutopilot makes the scraper and the autopilot, which learns of the
// swarms left within the last cooldown from the recorded visits.
func (a *App) startAutopilot() error {
	ac := a.cfg.Auto
	so := scrape.Options{
		LocalIP:     listenIP(a.cfg.Peer.Listen),
		UserAgent:   buildinfo.ClientName(),
		Logger:      a.log.With("component", "scrape"),
		Timeout:     ac.ScrapeTimeout.Std(),
		Concurrency: ac.ScrapeConcurrency,
		Rate:        rate.Limit(ac.ScrapeRate),
		MaxAge:      ac.ScrapeMaxAge.Std(),
	}
	if so.MaxAge <= 0 {
		so.MaxAge = -1 // no cache
	}
	var err error
	if a.scraper, err = scrape.New(so); err != nil {
		return err
	}
	a.auto = newAutopilot(autopilotOptions{
		Auto:        ac,
		Slots:       a.cfg.Repeater.MaxSwarms,
		TargetRatio: a.cfg.Repeater.TargetRatio,
		Scraper:     a.scraper,
		Catalog:     a.feeds.Catalog(),
		Host:        a,
		Logger:      a.log,
	})
	for ih, v := range a.lastVisits(time.Now().Add(-ac.Cooldown.Std())) {
		if v.Reason != repeater.LeftShutdown {
			a.auto.noteLeft(ih, v.Reason, v.Left)
		}
	}
	return nil
}

// listenIP is the IP of a listen address, invalid when it names none.
func listenIP(l config.Addr) netip.Addr {
	ip, err := netip.ParseAddr(l.Host())
	if err != nil || ip.IsUnspecified() {
		return netip.Addr{}
	}
	return ip
}

// Repeater is the daemon's repeater.
func (a *App) Repeater() *repeater.Repeater { return a.rep }

// DB is the daemon's database.
func (a *App) DB() *store.DB { return a.db }

// APIAddr is where the local API listens.
func (a *App) APIAddr() string { return a.api.Addr().String() }

// Run serves until ctx is done, then stops. It returns nil after a clean
// stop, or an error when a part failed or the stop overran StopTimeout.
func (a *App) Run(ctx context.Context) error {
	a.log.Info("btslave running",
		"version", buildinfo.String(),
		"data_dir", a.cfg.DataDir,
		"config", cmp.Or(a.cfg.File, "(embedded defaults)"),
		"peer_listen", a.client.LocalPort(),
		"api", a.api.Addr().String())
	a.logNextSteps()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	apiErr := make(chan error, 1)
	go func() { apiErr <- a.api.Serve(ctx) }()
	a.bg.Go(func() {
		if err := a.feeds.Run(ctx); err != nil {
			a.log.Error("feeds stopped", "err", err)
		}
	})
	if a.auto != nil {
		a.bg.Go(func() { a.auto.Run(ctx) })
	}
	a.bg.Go(func() { a.runPublish(ctx) })
	a.runMaster(ctx)
	if a.friends != nil {
		a.bg.Go(func() {
			a.friends.run(ctx, a.log, func() int64 { cs := a.client.Stats(); return cs.BytesWrittenData.Int64() })
		})
	}
	if a.tracker != nil {
		a.bg.Go(func() {
			if err := a.tracker.Run(ctx); err != nil {
				a.log.Error("tracker stopped", "err", err)
			}
		})
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-apiErr:
		apiErr <- nil // Serve returned already; let the wait below pass
	}
	a.log.Info("stopping", "timeout", StopTimeout)
	cancel()

	done := make(chan struct{})
	go func() {
		<-apiErr
		a.bg.Wait()
		a.close()
		close(done)
	}()
	select {
	case <-done:
		a.log.Info("stopped cleanly")
		return runErr
	case <-time.After(StopTimeout):
		return errors.Join(runErr, fmt.Errorf("stop took longer than %v", StopTimeout))
	}
}

// close stops the parts in reverse order of start: the tracker (if it
// never ran), the scraper, the client (which announces "stopped" to its
// trackers), the storage, then the database.
func (a *App) close() {
	a.closeOnce.Do(func() {
		if a.tracker != nil {
			a.tracker.Close()
		}
		if a.scraper != nil {
			a.scraper.Close()
		}
		if a.pub != nil && a.pub.ln != nil { // Shutdown closed it if Run ran
			a.pub.ln.Close()
		}
		a.stopAll() // everseeds' announcers
		if a.friends != nil {
			a.friends.ln.Close() // Serve closed it already if it ran
		}
		a.unmountAll() // before the swarms go: reads in flight fail now
		if a.rep != nil {
			a.rep.Close() // leaves swarms, stops the client, flushes the cache
		}
		if a.db != nil {
			os.Remove(filepath.Join(a.cfg.DataDir, api.AddrFile))
			if err := a.db.Close(); err != nil {
				a.log.Warn("close database", "err", err)
			}
		}
	})
}

// Status reports the daemon's state for the API.
func (a *App) Status(context.Context) api.Status {
	st := api.Status{
		Version:    buildinfo.String(),
		PID:        os.Getpid(),
		StartedAt:  a.started,
		Uptime:     api.Seconds(time.Since(a.started).Seconds()),
		DataDir:    a.cfg.DataDir,
		ConfigFile: a.cfg.File,
		API:        a.api.Addr().String(),
		Cache:      a.cacheStatus(),
		Torrents:   []api.Torrent{},
		Visits:     a.recentVisits(10),
		Feeds:      a.Feeds(context.Background()),
		Autopilot:  api.Autopilot{Note: "off (auto.enabled = false)"},
		Tracker:    a.trackerStatus(),
		NextSteps:  a.nextSteps(),
		Mounts:     a.Mounts(context.Background()),
	}
	st.Catalog, _ = a.feeds.Catalog().Len()
	if a.auto != nil {
		st.Autopilot = a.auto.status()
	}
	cs := a.client.Stats()
	st.Peer = api.PeerState{
		Listen:          string(a.cfg.Peer.Listen),
		Port:            a.client.LocalPort(),
		DHT:             a.cfg.Peer.DHT,
		PEX:             a.cfg.Peer.PEX,
		UploadLimit:     int64(a.cfg.Peer.UploadLimit),
		DownloadLimit:   int64(a.cfg.Peer.DownloadLimit),
		BytesUploaded:   cs.BytesWrittenData.Int64(),
		BytesDownloaded: cs.BytesReadData.Int64(),
		Peers:           cs.ActivePeers,
	}
	for _, t := range a.client.Torrents() {
		ts := t.Stats()
		tt := api.Torrent{
			InfoHash:        t.InfoHash().HexString(),
			Name:            t.Name(),
			Peers:           ts.ActivePeers,
			PiecesHeld:      ts.PiecesComplete,
			BytesUploaded:   ts.BytesWrittenData.Int64(),
			BytesDownloaded: ts.BytesReadData.Int64(),
		}
		if sw := a.rep.Swarm(t.InfoHash()); sw != nil {
			tt.Origin = string(a.origin(t.InfoHash()).origin)
			tt.Quiet, tt.QuietSince = sw.Quiet()
		}
		if t.Info() != nil {
			tt.Size, tt.Pieces = t.Length(), t.NumPieces()
		} else if err := a.client.Wire.InfoRefused(t.InfoHash()); err != nil {
			tt.Error = "metadata from peers refused: " + err.Error()
		}
		st.Torrents = append(st.Torrents, tt)
	}
	st.Compression = a.compressionStatus()
	st.Master = a.masterStatus()
	st.Friends = a.friendsHelp()
	return st
}

// compressionStatus lists the compressed connections (BEP 56) and the
// wire layer's counters.
func (a *App) compressionStatus() api.Compression {
	ws := a.client.Wire.Stats()
	out := api.Compression{Peers: []api.CompressedPeer{}, Connections: ws.Compressed, Refused: ws.CompressRefused,
		SavedUp: ws.SavedUp, SavedDown: ws.SavedDown, FramesSpliced: ws.FramesSpliced}
	for _, t := range a.client.Torrents() {
		for _, p := range a.client.Wire.Peers(t.InfoHash()) {
			c := p.Compress
			if c.Out == "" && c.In == "" {
				continue
			}
			out.Peers = append(out.Peers, api.CompressedPeer{
				InfoHash: p.InfoHash.HexString(), Addr: p.Remote.String(), Client: p.ClientName,
				Up: c.Out, Down: c.In, UpPlain: c.OutPlain, UpWire: c.OutWire, DownPlain: c.InPlain, DownWire: c.InWire,
				UpRatio: c.RatioOut(), DownRatio: c.RatioIn(),
			})
		}
	}
	return out
}

func (a *App) cacheStatus() api.Cache {
	cs := a.rep.Cache().Stats()
	return api.Cache{Budget: cs.Budget, Backend: a.cfg.Cache.Backend, Held: cs.Held, Pieces: cs.Pieces, Evictions: cs.Evictions, CompressRatio: cs.Ratio()}
}

// NewLogger builds the daemon's logger from [log].
func NewLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
