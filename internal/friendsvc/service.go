package friendsvc

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/rank"
	"github.com/btslave/btslave/ledger"
)

// Helper is what the service needs of the helper machinery (master/helper
// with repeater.SetMaster): help a master at an address with a torrent,
// say how much we sent it, stop.
type Helper interface {
	Help(ctx context.Context, r friends.HelpRequest, master netip.AddrPort) error
	// ToMaster is the payload sent to the master of a helped swarm so far.
	ToMaster(infoHash string) (int64, bool)
	Stop(infoHash, reason string)
}

// Options configures a Service.
type Options struct {
	Ledger *ledger.Store
	Gossip *friends.Gossip
	Helper Helper
	Meter  Meter
	// Limits gives the owner's caps, filters and what is in use, for one
	// request (its name and size known from the metainfo or magnet link).
	Limits func(r ledger.Request) ledger.Limits
	// MakeRoom leaves one free repeating swarm (the autopilot's) so that
	// an accepted request at max_swarms gets its slot (ledger.Decision
	// Displace); nil: such a request is refused.
	MakeRoom func(r ledger.Request) error
	// Stats gives our own scraped figures, for Inquire.
	Stats func() []friends.SwarmStat
	// Dial opens the direct channel to a friend.
	Dial   func(ctx context.Context, friend ed25519.PublicKey) (ledger.Caller, error)
	Logger *slog.Logger
	Now    func() time.Time
}

// Service implements friends.Handler.
type Service struct {
	o   Options
	log *slog.Logger

	mu      sync.Mutex
	helping map[string]*job // by info hash

	meterMu sync.Mutex // one countersignature at a time against the Meter
}

type job struct {
	friend ed25519.PublicKey
	since  time.Time
	// offset is what ToMaster counted before its last reset, last its
	// last reading: offset+last is everything sent. reported is how much
	// of it the friend countersigned.
	offset, last, reported int64
}

var _ friends.Handler = (*Service)(nil)

// New makes a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o, log: o.Logger.With("component", "friends"), helping: map[string]*job{}}
}

// HelpRequest decides by ledger.Store.Decide and, if it accepts, starts
// helping the friend's master.
func (s *Service) HelpRequest(ctx context.Context, from ed25519.PublicKey, r friends.HelpRequest) friends.HelpReply {
	refuse := func(reason string) friends.HelpReply {
		s.log.Info("help request refused", "friend", friends.NewID(from), "info_hash", r.InfoHash, "reason", reason)
		return friends.HelpReply{ID: r.ID, Reason: reason}
	}
	master, err := netip.ParseAddrPort(r.Master)
	if err != nil {
		return refuse(fmt.Sprintf("master %q is not an ip:port", r.Master))
	}
	s.mu.Lock()
	busy, helping := s.helping[r.InfoHash]
	s.mu.Unlock()
	if helping && busy.friend.Equal(from) {
		return friends.HelpReply{ID: r.ID, Accept: true, Reason: "already helping"}
	}
	req, err := Describe(from, r)
	if err != nil {
		return refuse(err.Error())
	}
	d, err := s.o.Ledger.Decide(req, s.o.Limits(req))
	if err != nil {
		return refuse("ledger: " + err.Error())
	}
	if !d.Accept {
		return refuse(d.Reason)
	}
	if helping {
		// One master per swarm: the helper machinery serves one.
		return refuse("already helping another friend's master with this torrent")
	}
	if d.Displace {
		// A friend comes before free repeating: its swarm takes the slot.
		if s.o.MakeRoom == nil {
			return refuse("max_swarms reached and no free repeating swarm can be left here")
		}
		if err := s.o.MakeRoom(req); err != nil {
			return refuse("max_swarms reached, cannot free a slot: " + err.Error())
		}
	}
	if err := s.o.Helper.Help(context.WithoutCancel(ctx), r, master); err != nil {
		return refuse("cannot help: " + err.Error())
	}
	s.mu.Lock()
	s.helping[r.InfoHash] = &job{friend: from, since: s.o.Now()}
	s.mu.Unlock()
	s.log.Info("helping a friend's master", "friend", friends.NewID(from), "info_hash", r.InfoHash, "master", master, "reason", d.Reason)
	return friends.HelpReply{ID: r.ID, Accept: true, Reason: d.Reason}
}

// Delivered countersigns a friend's report of bytes it delivered to our
// master, up to what the Meter allows.
func (s *Service) Delivered(ctx context.Context, from ed25519.PublicKey, d friends.Delivered) friends.IOUMsg {
	s.meterMu.Lock()
	defer s.meterMu.Unlock()
	allow := s.o.Meter.Allow(ctx, from, d.InfoHash)
	m, n := s.o.Ledger.OnDelivered(from, d, allow)
	if n > 0 {
		s.o.Meter.Credited(from, d.InfoHash, n)
	}
	return m
}

// Inquire answers with our own figures, those asked for or all.
func (s *Service) Inquire(_ context.Context, _ ed25519.PublicKey, q friends.Inquire) friends.Tell {
	var t friends.Tell
	if s.o.Stats == nil {
		return t
	}
	want := map[string]bool{}
	for _, ih := range q.InfoHashes {
		want[ih] = true
	}
	for _, st := range s.o.Stats() {
		if len(t.Swarms) == friends.MaxTellSwarms {
			break
		}
		if len(want) == 0 || want[st.InfoHash] {
			t.Swarms = append(t.Swarms, st)
		}
	}
	return t
}

// Tell merges gossiped figures.
func (s *Service) Tell(_ context.Context, from ed25519.PublicKey, t friends.Tell) {
	if s.o.Gossip != nil {
		n := s.o.Gossip.Merge(friends.NewID(from), t, s.o.Now())
		s.log.Debug("gossip merged", "friend", friends.NewID(from), "swarms", len(t.Swarms), "changed", n)
	}
}

// Figures gives a friend's gossiped figures for a swarm as the autopilot
// ranks by them (autopilotOptions.Gossip): source "gossip" in `btslave
// swarms`.
func (s *Service) Figures(infoHash string) (rank.Figures, bool) {
	if s.o.Gossip == nil {
		return rank.Figures{}, false
	}
	g, ok := s.o.Gossip.Get(infoHash)
	if !ok {
		return rank.Figures{}, false
	}
	return rank.Figures{Gossip: true, Seeders: g.Seeders, Incomplete: g.Leechers, At: g.Scraped}, true
}

// Describe reads a help request's name and size from its metainfo (which
// must be the torrent's) or magnet link, for the owner's filters and caps.
func Describe(from ed25519.PublicKey, r friends.HelpRequest) (ledger.Request, error) {
	req := ledger.Request{From: from, InfoHash: r.InfoHash}
	if len(r.Metainfo) > 0 {
		mi, err := metainfo.Load(bytes.NewReader(r.Metainfo))
		if err != nil {
			return req, fmt.Errorf("metainfo does not parse: %w", err)
		}
		info, err := mi.UnmarshalInfo()
		if err != nil {
			return req, fmt.Errorf("metainfo info does not parse: %w", err)
		}
		if ih := mi.HashInfoBytes().HexString(); len(r.InfoHash) == 40 && !strings.EqualFold(ih, r.InfoHash) {
			return req, fmt.Errorf("metainfo is of %s, not %s", ih, r.InfoHash)
		}
		req.Name, req.Size = info.BestName(), info.TotalLength()
		return req, nil
	}
	if m, err := metainfo.ParseMagnetUri(r.Magnet); err == nil {
		req.Name = m.DisplayName
	}
	return req, nil
}

// Help is one friend's master we help, as `btslave status` shows it.
type Help struct {
	Friend   friends.ID
	InfoHash string
	Since    time.Time
	// Sent is what we sent its master; Credited what it countersigned.
	Sent, Credited int64
}

// Helping lists the friends' masters we help.
func (s *Service) Helping() []Help {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Help, 0, len(s.helping))
	for ih, j := range s.helping {
		out = append(out, Help{Friend: friends.NewID(j.friend), InfoHash: ih, Since: j.since, Sent: j.offset + j.last, Credited: j.reported})
	}
	return out
}
