package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/buildinfo"
	"github.com/btslave/btslave/publish"
	"github.com/btslave/btslave/repeater/announce"
)

// checkEvery is how often a seeding everseed's files are checked (size,
// time, inode) between the checks of every piece on its first read.
const checkEvery = time.Minute

// publisher keeps the published torrents: the registry in the data dir,
// one everseed per torrent in the daemon's client, and the public host.
type publisher struct {
	reg     *publish.Registry
	log     *slog.Logger
	scratch string
	ln      net.Listener // nil without [publish] listen
	srv     *http.Server

	mu    sync.Mutex
	seeds map[metainfo.Hash]*everseed
	jobs  map[*publishJob]struct{}    // publishes hashing now
	kept  map[metainfo.Hash]*keptSeed // friends' torrents (publish_friend.go)
}

// publishJob is one Publish hashing its path.
type publishJob struct {
	path        string
	started     time.Time
	done, total atomic.Int64
}

// everseed is one published torrent in the client, or why it is not.
type everseed struct {
	rec     publish.Record
	st      *publish.Everseed
	t       *torrent.Torrent
	stopped string
	cancel  context.CancelFunc // stops the announcer
	done    chan struct{}      // closed when the announcer has sent "stopped"
}

// startPublish opens the registry and resumes every published torrent
// whose files pass Record.Check (no rehash); the others are kept listed as
// stopped, with the reason.
func (a *App) startPublish() error {
	dir := filepath.Join(a.cfg.DataDir, "published")
	reg, err := publish.OpenRegistry(dir, a.log)
	if err != nil {
		return err
	}
	p := &publisher{reg: reg, log: a.log.With("component", "publish"), scratch: filepath.Join(dir, "scratch"),
		seeds: map[metainfo.Hash]*everseed{}, jobs: map[*publishJob]struct{}{}, kept: map[metainfo.Hash]*keptSeed{}}
	if err := os.MkdirAll(p.scratch, 0o755); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	a.pub = p
	a.rep.SetEverseed(p.serving)
	for _, rec := range reg.List() {
		a.seed(rec)
	}
	a.resumeKept()
	if l := a.cfg.Publish.Listen; l != "" {
		if p.ln, err = net.Listen("tcp", l); err != nil {
			return fmt.Errorf("publish.listen: %w", err)
		}
		p.srv = &http.Server{
			Handler:           &publish.Host{Registry: reg, Title: a.cfg.Publish.FeedTitle},
			ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute, IdleTimeout: time.Minute,
			MaxHeaderBytes: 16 << 10, ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		}
	}
	return nil
}

// PublishAddr is the public listener's address, nil when it is off.
func (a *App) PublishAddr() net.Addr {
	if a.pub == nil || a.pub.ln == nil {
		return nil
	}
	return a.pub.ln.Addr()
}

// runPublish serves the public listener and re-checks the seeding
// torrents' files until ctx ends.
func (a *App) runPublish(ctx context.Context) {
	p := a.pub
	if p.srv != nil {
		a.bg.Go(func() {
			if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error("publish listener stopped", "err", err)
			}
		})
		a.bg.Go(func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			p.srv.Shutdown(sctx)
		})
	}
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			a.recheck()
		}
	}
}

// recheck stops every everseed whose files changed or vanished.
func (a *App) recheck() {
	p := a.pub
	p.mu.Lock()
	var live []*everseed
	for _, s := range p.seeds {
		if s.t != nil {
			live = append(live, s)
		}
	}
	p.mu.Unlock()
	for _, s := range live {
		if err := s.rec.Check(); err != nil {
			a.stopSeed(s, err)
		}
	}
}

func (p *publisher) serving(ih metainfo.Hash) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.seeds[ih]
	return s != nil && s.t != nil || p.keptServing(ih)
}

func keyOf(rec publish.Record) metainfo.Hash {
	var h metainfo.Hash
	_ = h.FromHexString(rec.InfoHash)
	return h
}

// seed adds rec's torrent to the client on an everseed, after checking
// its files; on failure the torrent is listed as stopped.
func (a *App) seed(rec publish.Record) {
	p := a.pub
	s := &everseed{rec: rec}
	p.mu.Lock()
	p.seeds[keyOf(rec)] = s
	p.mu.Unlock()
	err := rec.Check()
	if err == nil {
		err = a.addEverseed(s)
	}
	if err != nil {
		a.stopSeed(s, err)
		return
	}
	p.log.Info("everseed seeding", "name", rec.Name, "infohash", rec.InfoHash, "size", rec.Size, "files", len(rec.Files))
}

func (a *App) addEverseed(s *everseed) error {
	b, err := a.pub.reg.TorrentFile(s.rec.InfoHash)
	if err != nil {
		return err
	}
	mi, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	s.st = publish.NewEverseed(s.rec, a.pub.scratch, func(err error) { a.stopSeed(s, err) })
	spec.Storage = s.st
	t, _, err := a.client.AddTorrentSpec(spec)
	if err != nil {
		s.st.Close()
		return fmt.Errorf("publish: add to the client: %w", err)
	}
	an, err := announce.New(announce.Options{
		InfoHash: t.InfoHash(),
		PeerID:   a.client.PeerID(),
		Port:     a.client.LocalPort(),
		Trackers: mi.UpvertedAnnounceList(),
		Stats: func() (up, down, left int64) {
			ts := t.Stats()
			return ts.BytesWrittenData.Int64(), 0, 0 // a seed
		},
		OnPeers: func(addrs []netip.AddrPort) {
			ps := make([]torrent.PeerInfo, len(addrs))
			for i, ap := range addrs {
				ps[i] = torrent.PeerInfo{Addr: net.TCPAddrFromAddrPort(ap), Source: "tracker"}
			}
			t.AddPeers(ps)
		},
		LocalIP:   listenIP(a.cfg.Peer.Listen),
		UserAgent: buildinfo.ClientName(),
		Logger:    a.pub.log.With("infohash", s.rec.InfoHash),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if err != nil { // no usable tracker: seeded to whoever finds us
		a.pub.log.Info("everseed announces to no tracker", "name", s.rec.Name, "err", err)
		close(done)
	} else {
		go func() {
			defer close(done)
			an.Run(ctx)
		}()
	}
	a.pub.mu.Lock()
	s.t, s.cancel, s.done = t, cancel, done
	a.pub.mu.Unlock()
	return nil
}

// stopAll stops every announcer at shutdown ("stopped" to the trackers);
// the client itself is closed by the repeater.
func (a *App) stopAll() {
	if a.pub == nil {
		return
	}
	a.pub.mu.Lock()
	var dones []chan struct{}
	for _, s := range a.pub.seeds {
		if s.cancel != nil {
			s.cancel()
			dones = append(dones, s.done)
		}
	}
	dones = append(dones, a.stopKept()...)
	a.pub.mu.Unlock()
	deadline := time.After(StopTimeout / 2)
	for _, d := range dones {
		select {
		case <-d:
		case <-deadline:
			return
		}
	}
}

// stopSeed drops the torrent from the client and records why.
func (a *App) stopSeed(s *everseed, why error) {
	a.pub.mu.Lock()
	t, st, cancel, done := s.t, s.st, s.cancel, s.done
	s.t, s.st, s.cancel = nil, nil, nil
	if s.stopped == "" || t != nil {
		s.stopped = why.Error()
	}
	a.pub.mu.Unlock()
	if st != nil {
		st.Fail(why)
	}
	if cancel != nil {
		cancel()
		select { // the announcer sends "stopped" within its StopTimeout
		case <-done:
		case <-time.After(StopTimeout):
		}
	}
	if t != nil {
		t.Drop()
	}
	if st != nil {
		st.Close()
	}
	a.pub.log.Warn("everseed stopped: not serving this torrent", "name", s.rec.Name, "infohash", s.rec.InfoHash, "why", why)
}

// Publish hashes req.Path, records it, registers it with the embedded
// tracker and starts its everseed.
func (a *App) Publish(ctx context.Context, req api.PublishRequest) (api.Published, error) {
	if !filepath.IsAbs(req.Path) {
		return api.Published{}, fmt.Errorf("%w: path %q: give an absolute path", api.ErrBadRequest, req.Path)
	}
	v, err := publish.ParseVersion(req.Version)
	if err != nil {
		return api.Published{}, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	o := publish.Options{Version: v, PieceLength: req.PieceLength, Name: req.Name, Comment: req.Comment,
		Source: req.Source, Private: req.Private, Trackers: req.Trackers, WebSeeds: req.WebSeeds, CreationDate: time.Now()}
	if len(o.Trackers) == 0 && a.tracker != nil {
		o.Trackers = [][]string{{a.tracker.AnnounceURL()}}
	}
	job := &publishJob{path: filepath.Clean(req.Path), started: time.Now()}
	o.Progress = func(done, total int64) { job.done.Store(done); job.total.Store(total) }
	a.pub.mu.Lock()
	a.pub.jobs[job] = struct{}{}
	a.pub.mu.Unlock()
	t, err := publish.Create(ctx, job.path, o)
	a.pub.mu.Lock()
	delete(a.pub.jobs, job)
	a.pub.mu.Unlock()
	if errors.Is(err, publish.ErrEmpty) || errors.Is(err, os.ErrNotExist) {
		return api.Published{}, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	if err != nil {
		return api.Published{}, err
	}
	rec := publish.NewRecord(t, time.Now())
	if old, ok := a.pub.reg.Get(rec.InfoHash); ok {
		a.unseed(old)
	}
	if err := a.pub.reg.Add(t, rec); err != nil {
		return api.Published{}, err
	}
	if err := a.whitelist(rec); err != nil {
		a.pub.log.Warn("could not add the torrent to the tracker's whitelist", "err", err)
	}
	a.seed(rec)
	return a.published(rec), nil
}

// whitelist adds the torrent's infohashes to the embedded tracker's
// whitelist file, which the tracker re-reads by itself.
func (a *App) whitelist(rec publish.Record) error {
	c := a.cfg.Tracker
	if a.tracker == nil || c.Open || c.Whitelist == "" {
		return nil
	}
	b, err := os.ReadFile(c.Whitelist)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(b)
	add := []string{rec.InfoHash}
	if rec.InfoHashV2 != "" && rec.InfoHashV2[:40] != rec.InfoHash {
		add = append(add, rec.InfoHashV2[:40]) // v2 peers announce the truncated v2 hash
	}
	changed := false
	for _, h := range add {
		if !strings.Contains(strings.ToLower(text), h) {
			if text != "" && !strings.HasSuffix(text, "\n") {
				text += "\n"
			}
			text += h + " # published: " + strings.Map(func(r rune) rune {
				if r < ' ' {
					return ' '
				}
				return r
			}, rec.Name) + "\n"
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return api.WriteFileAtomic(c.Whitelist, []byte(text), 0o644)
}

func (a *App) unseed(rec publish.Record) {
	a.pub.mu.Lock()
	s := a.pub.seeds[keyOf(rec)]
	delete(a.pub.seeds, keyOf(rec))
	a.pub.mu.Unlock()
	if s != nil && s.t != nil {
		a.stopSeed(s, errors.New("unpublished"))
	}
}

// Unpublish stops the everseed and drops the torrent from the feed.
func (a *App) Unpublish(_ context.Context, ih string) error {
	rec, err := a.pub.reg.Remove(strings.ToLower(ih))
	if errors.Is(err, publish.ErrNotPublished) {
		return fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	if err != nil {
		return err
	}
	a.unseed(rec)
	return nil
}

// Publishing lists the publishes hashing now, oldest first.
func (a *App) Publishing(context.Context) []api.PublishJob {
	out := []api.PublishJob{}
	a.pub.mu.Lock()
	for j := range a.pub.jobs {
		out = append(out, api.PublishJob{Path: j.path, Done: j.done.Load(), Total: j.total.Load(), Started: j.started})
	}
	a.pub.mu.Unlock()
	sort.Slice(out, func(i, k int) bool { return out[i].Started.Before(out[k].Started) })
	return out
}

// Published lists the published torrents and their swarms.
func (a *App) Published(context.Context) []api.Published {
	out := []api.Published{}
	for _, rec := range a.pub.reg.List() {
		out = append(out, a.published(rec))
	}
	return out
}

func (a *App) published(rec publish.Record) api.Published {
	p := api.Published{InfoHash: rec.InfoHash, InfoHashV2: rec.InfoHashV2, Name: rec.Name, Version: rec.Version,
		Path: rec.Root, Size: rec.Size, Files: len(rec.Files), Magnet: rec.Magnet, Published: rec.Published}
	if addr := a.PublishAddr(); addr != nil {
		p.TorrentURL = "http://" + dialableAddr(addr.String()) + "/t/" + rec.InfoHash + ".torrent"
	}
	a.pub.mu.Lock()
	s := a.pub.seeds[keyOf(rec)]
	var t *torrent.Torrent
	var st *publish.Everseed
	if s != nil {
		t, st, p.Stopped = s.t, s.st, s.stopped
	}
	a.pub.mu.Unlock()
	if t != nil {
		p.Seeding, p.Stopped = true, ""
		ts := t.Stats()
		p.Peers = ts.ActivePeers
		p.Seeds = ts.ConnectedSeeders
		p.Downloaders = ts.ActivePeers - ts.ConnectedSeeders
		p.BytesServed = ts.BytesWrittenData.Int64()
		if t.Info() != nil {
			p.Pieces = t.NumPieces()
		}
		p.Verified = st.Verified()
	}
	a.trackerFigures(rec, &p)
	return p
}

// trackerFigures fills in the swarm's figures from the embedded tracker's
// scrape when it tracks the torrent: a hybrid's swarm is announced under
// its v1 infohash and, by v2 clients, under the truncated v2 one; the
// larger of the two counts is taken, since a hybrid client that announces
// both would be counted twice by a sum.
func (a *App) trackerFigures(rec publish.Record, p *api.Published) {
	if a.tracker == nil {
		return
	}
	var hashes []metainfo.Hash
	for _, hx := range []string{rec.InfoHash, rec.InfoHashV2} {
		if len(hx) >= 40 {
			var ih metainfo.Hash
			if err := ih.FromHexString(hx[:40]); err == nil {
				hashes = append(hashes, ih)
			}
		}
	}
	for _, ih := range hashes {
		sc, ok := a.tracker.Scrape(ih)
		if !ok {
			continue
		}
		if !p.Tracked {
			p.Seeds, p.Downloaders = 0, 0
		}
		p.Tracked = true
		p.Seeds = max(p.Seeds, int(sc.Seeds))
		p.Downloaders = max(p.Downloaders, int(sc.Leechers))
		p.Completed = max(p.Completed, int64(min(sc.Downloaded, 1<<62)))
	}
}

// dialableAddr replaces an unspecified host by loopback.
func dialableAddr(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
