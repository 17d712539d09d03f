package daemon

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/master"
	"github.com/btslave/btslave/master/adapter"
	"github.com/btslave/btslave/master/helper"
)

// masterParts are the daemon's master machinery: the helpers for the
// [master] client (polled by watch) and for help-master requests.
type masterParts struct {
	owner  *helper.Helper // torrents of the [master] client
	cli    *helper.Helper // help-master requests
	friend *helper.Helper // friends' masters (friends.go)
	watch  *master.Watcher
	adder  master.PeerAdder
	// counter is the master's per-torrent downloaded counter, nil when
	// its kind has none: the friends ledger bounds IOUs by it.
	counter master.Counter
}

// startMaster makes the helpers and, when [master] names a client, its
// Watcher (run by runMaster).
func (a *App) startMaster() error {
	linger := a.cfg.Master.Linger.Std()
	a.master.owner = helper.New(helper.Options{Repeater: a.rep, Logger: a.log, Linger: linger, Source: "owner"})
	a.master.cli = helper.New(helper.Options{Repeater: a.rep, Logger: a.log, Linger: linger, Source: "cli"})
	// A friend's help is paid for in the IOU ledger, not by the give-back
	// rule: it is asked for in a starved swarm, where often nobody but the
	// friend's master wants what we fetch, and with the rule (and its
	// budget of pieces in flight, repeater's fetchBudget) a friend helper
	// stopped after two pieces a minute there (TestInteropFriendsCashin).
	a.master.friend = helper.New(helper.Options{Repeater: a.rep, Logger: a.log.With("component", "friends"), Linger: linger, Source: "friend", NoGiveBack: true})
	c, f, err := adapter.New(a.cfg.Master)
	if err != nil || c == nil {
		return err
	}
	a.master.adder, _ = c.(master.PeerAdder)
	a.master.counter, _ = c.(master.Counter)
	a.master.watch = master.NewWatcher(master.WatchOptions{Client: c, Filter: f, Logger: a.log,
		OnPoll: func(ctx context.Context, ts []master.Torrent, peer netip.AddrPort) {
			a.master.owner.Sync(ctx, ts, peer, a.master.adder, a.selfAddr())
			a.autoCashin(ctx, ts, peer)
		}})
	return nil
}

// runMaster polls the [master] client until ctx ends.
func (a *App) runMaster(ctx context.Context) {
	if a.master.watch != nil {
		a.bg.Go(func() { a.master.watch.Run(ctx) })
	}
}

// selfAddr is our peer address for a master to dial, invalid when the
// listen address names no IP.
func (a *App) selfAddr() netip.AddrPort {
	ip := listenIP(a.cfg.Peer.Listen)
	if !ip.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip, uint16(a.client.LocalPort()))
}

// Help helps the master at req.Addr with one torrent (help-master).
func (a *App) Help(ctx context.Context, req api.HelpRequest) (api.MasterTorrent, error) {
	addr, err := netip.ParseAddrPort(req.Addr)
	if err != nil {
		return api.MasterTorrent{}, fmt.Errorf("%w: master address %q is not IP:PORT", api.ErrBadRequest, req.Addr)
	}
	t := helper.Target{MetaInfo: req.Torrent, Magnet: req.Magnet, Master: addr}
	if req.InfoHash != "" {
		if b, err := hex.DecodeString(req.InfoHash); err != nil || len(b) != 20 {
			return api.MasterTorrent{}, fmt.Errorf("%w: info hash %q is not 40 hex digits", api.ErrBadRequest, req.InfoHash)
		}
		t.Magnet = req.InfoHash
	}
	if _, err := helper.Spec(t); err != nil {
		return api.MasterTorrent{}, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	s, err := a.master.cli.Help(ctx, t)
	if err != nil {
		return api.MasterTorrent{}, err
	}
	ih := s.InfoHash().HexString()
	for _, st := range a.masterStatus().Torrents {
		if st.InfoHash == ih {
			return st, nil
		}
	}
	return api.MasterTorrent{InfoHash: ih, Master: addr.String(), Source: "cli", Started: time.Now()}, nil
}

// masterStatus is the master's part of the status.
func (a *App) masterStatus() api.MasterState {
	var ms api.MasterState
	ms.Torrents = []api.MasterTorrent{}
	if w := a.master.watch; w != nil {
		st := w.State()
		ms.Kind, ms.State, ms.Error, ms.Failures, ms.Since, ms.NextPoll = st.Kind, st.State, st.Error, st.Failures, st.Since, st.NextPoll
		if st.Peer.IsValid() {
			ms.Peer = st.Peer.String()
		}
		ms.Downloading = len(st.Torrents)
	}
	for _, h := range []*helper.Helper{a.master.owner, a.master.cli, a.master.friend} {
		if h == nil {
			continue
		}
		for _, s := range h.Stats() {
			ms.Torrents = append(ms.Torrents, api.MasterTorrent{
				InfoHash: s.InfoHash, Name: s.Name, Source: s.Source, Master: s.Addr.String(), Connected: s.Connected,
				Progress: s.Progress, Pieces: s.Pieces, NumPieces: s.NumPieces, ToMaster: s.ToMaster,
				FromSwarm: s.FromSwarm, ToSwarm: s.ToSwarm, Wanted: s.Wanted, Pinned: s.Pinned, Started: s.Started,
			})
		}
	}
	return ms
}

// masterCollector reports each helped torrent, read at scrape time.
type masterCollector struct {
	a                                             *App
	toMaster, fromSwarm, toSwarm, progress, conns *prometheus.Desc
}

func newMasterCollector(a *App) *masterCollector {
	l := []string{"infohash", "name", "master"}
	return &masterCollector{
		a:         a,
		toMaster:  prometheus.NewDesc("btslave_master_forwarded_bytes", "Payload sent to the master for this torrent.", l, nil),
		fromSwarm: prometheus.NewDesc("btslave_master_swarm_downloaded_bytes", "Payload from the swarm (the master excluded) while helping.", l, nil),
		toSwarm:   prometheus.NewDesc("btslave_master_swarm_uploaded_bytes", "Payload to the swarm (the master excluded) while helping.", l, nil),
		progress:  prometheus.NewDesc("btslave_master_progress", "The master's fraction done (-1 unknown).", l, nil),
		conns:     prometheus.NewDesc("btslave_master_connected", "1 when connected to the master.", l, nil),
	}
}

func (c *masterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.toMaster, c.fromSwarm, c.toSwarm, c.progress, c.conns} {
		ch <- d
	}
}

func (c *masterCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.a.masterStatus().Torrents {
		l := []string{t.InfoHash, t.Name, t.Master}
		conn := 0.0
		if t.Connected {
			conn = 1
		}
		ch <- prometheus.MustNewConstMetric(c.toMaster, prometheus.CounterValue, float64(t.ToMaster), l...)
		ch <- prometheus.MustNewConstMetric(c.fromSwarm, prometheus.CounterValue, float64(t.FromSwarm), l...)
		ch <- prometheus.MustNewConstMetric(c.toSwarm, prometheus.CounterValue, float64(t.ToSwarm), l...)
		ch <- prometheus.MustNewConstMetric(c.progress, prometheus.GaugeValue, t.Progress, l...)
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, conn, l...)
	}
}
