package friendsvc

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

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

// Meter says, on the debtor's side, how many bytes a friend may claim to
// have delivered to our master for a swarm: what our master saw arrive
// from it (or a bound such as what the master downloaded while the
// friend helped).
type Meter interface {
	Saw(friend ed25519.PublicKey, infoHash string) uint64
}

// Options configures a Service.
type Options struct {
	Ledger *ledger.Store
	Gossip *friends.Gossip
	Helper Helper
	Meter  Meter
	// Limits gives the owner's caps and what is in use, for a request of
	// size bytes (0 unknown).
	Limits func(infoHash string, size int64) ledger.Limits
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
}

type job struct {
	friend   ed25519.PublicKey
	reported int64 // ToMaster already in IOUs
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
	_, busy := s.helping[r.InfoHash]
	s.mu.Unlock()
	if busy {
		return friends.HelpReply{ID: r.ID, Accept: true, Reason: "already helping"}
	}
	d, err := s.o.Ledger.Decide(ledger.Request{From: from, InfoHash: r.InfoHash, Size: int64(len(r.Metainfo))}, s.o.Limits(r.InfoHash, 0))
	if err != nil {
		return refuse("ledger: " + err.Error())
	}
	if !d.Accept {
		return refuse(d.Reason)
	}
	if err := s.o.Helper.Help(context.WithoutCancel(ctx), r, master); err != nil {
		return refuse("cannot help: " + err.Error())
	}
	s.mu.Lock()
	s.helping[r.InfoHash] = &job{friend: from}
	s.mu.Unlock()
	s.log.Info("helping a friend's master", "friend", friends.NewID(from), "info_hash", r.InfoHash, "master", master, "reason", d.Reason)
	return friends.HelpReply{ID: r.ID, Accept: true, Reason: d.Reason}
}

// Delivered countersigns a friend's report of bytes it delivered to our
// master, up to what the Meter saw.
func (s *Service) Delivered(_ context.Context, from ed25519.PublicKey, d friends.Delivered) friends.IOUMsg {
	return s.o.Ledger.OnDelivered(from, d, s.o.Meter.Saw(from, d.InfoHash))
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
