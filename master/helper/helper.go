// Package helper makes the repeater help a master: for each torrent the
// master downloads it joins the swarm as a downloader on the master's
// behalf, dials the master and keeps that connection, and fetches the
// pieces the master lacks first (repeater.Swarm.SetMaster).
//
// Help is the one entry point for any master at any address (the owner's,
// from [master] through a master.Watcher and Sync, from `btslave
// help-master`, or a friend's), so that friends reuse it as it is.
package helper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/torrentfile"
	"github.com/btslave/btslave/master"
	"github.com/btslave/btslave/repeater"
)

// Target is one torrent to help one master with.
type Target struct {
	// MetaInfo (a .torrent) or Magnet (a magnet link or a bare hex info
	// hash) names the torrent; MetaInfo wins when both are set.
	MetaInfo []byte
	Magnet   string
	// Master is where the master accepts peers.
	Master netip.AddrPort
	// Adder, when set, is told of our own address so that the master dials
	// us too (qBittorrent's addPeers); Self is that address.
	Adder master.PeerAdder
	Self  netip.AddrPort
}

// Options configures a Helper.
type Options struct {
	Repeater *repeater.Repeater
	Logger   *slog.Logger
	// Linger is how long a swarm is kept after its master completed it.
	Linger time.Duration
	// Source names who asked ("owner", "cli", a friend), for status.
	Source string
	// NoGiveBack turns off the rule that a helper gives the swarm at
	// least what it takes over every minute (repeater.Swarm.SetMasterGiveBack):
	// for a swarm where nobody but the master downloads.
	NoGiveBack bool
}

// Helper runs the helped swarms.
type Helper struct {
	o   Options
	log *slog.Logger

	mu   sync.Mutex
	jobs map[metainfo.Hash]*job
}

type job struct {
	swarm    *repeater.Swarm
	name     string
	source   string
	master   netip.AddrPort
	started  time.Time
	doneAt   time.Time // when the master was first seen complete
	progress float64   // as the master's API reports it, -1 unknown
}

// New makes a Helper.
func New(o Options) *Helper {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Helper{o: o, log: o.Logger.With("component", "helper"), jobs: map[metainfo.Hash]*job{}}
}

// Spec turns a target's torrent into a torrent spec.
func Spec(t Target) (*torrent.TorrentSpec, error) {
	switch {
	case len(t.MetaInfo) > 0:
		tf, err := torrentfile.Parse(t.MetaInfo)
		if err != nil {
			return nil, err
		}
		return torrent.TorrentSpecFromMetaInfoErr(tf.MetaInfo)
	case len(t.Magnet) == 40 && !strings.Contains(t.Magnet, ":"):
		var ih metainfo.Hash
		if err := ih.FromHexString(t.Magnet); err != nil {
			return nil, fmt.Errorf("info hash %q: %w", t.Magnet, err)
		}
		spec := &torrent.TorrentSpec{}
		spec.InfoHash = ih
		return spec, nil
	case t.Magnet != "":
		spec, err := torrent.TorrentSpecFromMagnetUri(t.Magnet)
		if err != nil {
			return nil, fmt.Errorf("magnet link: %w", err)
		}
		if spec.InfoHash == (metainfo.Hash{}) {
			return nil, errors.New("magnet link has no info hash (xt=urn:btih:...)")
		}
		return spec, nil
	}
	return nil, errors.New("give a .torrent, a magnet link or an info hash")
}

// Help joins the target's swarm (kept: the leave rules never leave it)
// and makes it help the master. Helping a torrent helped already moves it
// to the new master address.
func (h *Helper) Help(ctx context.Context, t Target) (*repeater.Swarm, error) {
	if !t.Master.IsValid() {
		return nil, errors.New("help: no master address")
	}
	spec, err := Spec(t)
	if err != nil {
		return nil, fmt.Errorf("help: %w", err)
	}
	s, err := h.o.Repeater.JoinWith(spec, repeater.JoinOptions{Keep: true})
	if err != nil {
		return nil, fmt.Errorf("help %s: %w", spec.InfoHash.HexString(), err)
	}
	s.SetMaster(t.Master)
	s.SetMasterGiveBack(!h.o.NoGiveBack)
	ih := s.InfoHash()
	h.mu.Lock()
	j, ok := h.jobs[ih]
	if !ok {
		j = &job{started: time.Now(), progress: -1}
		h.jobs[ih] = j
	}
	j.swarm, j.name, j.master, j.source = s, spec.DisplayName, t.Master, h.o.Source
	h.mu.Unlock()
	if !ok {
		h.log.Info("helping master", "infohash", ih.HexString(), "master", t.Master)
	}
	if t.Adder != nil && t.Self.IsValid() {
		if err := t.Adder.AddPeers(ctx, ih.HexString(), []netip.AddrPort{t.Self}); err != nil {
			h.log.Warn("master did not take our address", "infohash", ih.HexString(), "err", err)
		}
	}
	return s, nil
}

// Stop stops helping a torrent and leaves its swarm.
func (h *Helper) Stop(ih metainfo.Hash, reason string) {
	h.mu.Lock()
	j, ok := h.jobs[ih]
	delete(h.jobs, ih)
	h.mu.Unlock()
	if !ok {
		return
	}
	j.swarm.SetMaster(netip.AddrPort{})
	h.o.Repeater.LeaveFor(ih, reason)
	h.log.Info("stopped helping master", "infohash", ih.HexString(), "reason", reason)
}

// Sync is a master.Watcher's OnPoll: it helps every torrent the master
// downloads, and stops helping those it no longer lists (removed, or
// complete and lingered) or has completed for Linger.
func (h *Helper) Sync(ctx context.Context, ts []master.Torrent, peer netip.AddrPort, adder master.PeerAdder, self netip.AddrPort) {
	listed := map[metainfo.Hash]bool{}
	for _, t := range ts {
		var ih metainfo.Hash
		if err := ih.FromHexString(t.InfoHash); err != nil {
			continue
		}
		listed[ih] = true
		if t.Stopped {
			continue
		}
		h.mu.Lock()
		j := h.jobs[ih]
		h.mu.Unlock()
		if j == nil || j.master != peer {
			if _, err := h.Help(ctx, Target{MetaInfo: t.MetaInfo, Magnet: t.Magnet, Master: peer, Adder: adder, Self: self}); err != nil {
				h.log.Warn("cannot help master with torrent", "infohash", t.InfoHash, "name", t.Name, "err", err)
				continue
			}
		}
		h.mu.Lock()
		if j = h.jobs[ih]; j != nil {
			j.progress = t.Progress
			j.swarm.MasterHas(t.Pieces, t.Downloading)
			if share, shares := Share(self.Addr(), t.Helpers); shares > 0 {
				j.swarm.SetMasterShare(share, shares)
			}
		}
		h.mu.Unlock()
	}
	now := time.Now()
	var stop []metainfo.Hash
	h.mu.Lock()
	for ih, j := range h.jobs {
		if j.source != h.o.Source {
			continue
		}
		ms, _ := j.swarm.Master()
		switch {
		case ms.Complete() || !listed[ih]:
			// Listed no more: complete (Downloading lists what lacks data)
			// or removed by the owner.
			if j.doneAt.IsZero() {
				j.doneAt = now
			}
			if now.Sub(j.doneAt) >= h.o.Linger || !ms.Complete() && !listed[ih] && ms.Pieces == 0 {
				stop = append(stop, ih)
			}
		default:
			j.doneAt = time.Time{}
		}
	}
	h.mu.Unlock()
	for _, ih := range stop {
		h.Stop(ih, "master done")
	}
}

// Stat is one helped torrent, for status and metrics.
type Stat struct {
	InfoHash string
	Name     string
	Source   string
	Started  time.Time
	repeater.MasterStats
	// Progress is the master's fraction done: from its bitfield on the
	// wire when connected, else from its API (-1 unknown).
	Progress float64
}

// Stats lists the helped torrents.
func (h *Helper) Stats() []Stat {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Stat, 0, len(h.jobs))
	for ih, j := range h.jobs {
		ms, _ := j.swarm.Master()
		if !ms.Addr.IsValid() {
			ms.Addr = j.master // no round yet (metadata still coming)
		}
		st := Stat{InfoHash: ih.HexString(), Name: j.name, Source: j.source, Started: j.started, MasterStats: ms, Progress: j.progress}
		if ms.NumPieces > 0 && ms.Connected {
			st.Progress = float64(ms.Pieces) / float64(ms.NumPieces)
		}
		if t := j.swarm.Torrent(); t != nil && t.Info() != nil {
			st.Name = t.Name()
		}
		out = append(out, st)
	}
	return out
}

// Share is this helper's place among the helpers of one master: self and
// the btslave addresses in the master's peer list, sorted. shares is 0
// when self is unknown.
func Share(self netip.Addr, helpers []netip.Addr) (share, shares int) {
	if !self.IsValid() {
		return 0, 0
	}
	self = self.Unmap()
	set := map[netip.Addr]bool{self: true}
	for _, h := range helpers {
		set[h.Unmap()] = true
	}
	all := make([]netip.Addr, 0, len(set))
	for a := range set {
		all = append(all, a)
	}
	slices.SortFunc(all, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Index(all, self), len(all)
}
