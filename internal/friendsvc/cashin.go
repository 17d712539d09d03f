package friendsvc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/ledger"
)

// ReportDelivered turns what we sent to friends' masters since the last
// IOU into IOU proposals, one round trip per helped swarm that grew. It
// returns the first error and carries on with the others.
func (s *Service) ReportDelivered(ctx context.Context) error {
	s.mu.Lock()
	type item struct {
		ih string
		j  *job
	}
	var todo []item
	for ih, j := range s.helping {
		todo = append(todo, item{ih, j})
	}
	s.mu.Unlock()
	var first error
	for _, it := range todo {
		sent, ok := s.o.Helper.ToMaster(it.ih)
		if !ok {
			continue
		}
		s.mu.Lock()
		if sent < it.j.last {
			// The counter went back (the master's connection was redone);
			// what it counts now is all new.
			it.j.offset += it.j.last
		}
		it.j.last = sent
		delta := it.j.offset + sent - it.j.reported
		s.mu.Unlock()
		if delta <= 0 {
			continue
		}
		err := s.report(ctx, it.ih, it.j, delta)
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Service) report(ctx context.Context, ih string, j *job, delta int64) error {
	c, err := s.o.Dial(ctx, j.friend)
	if err != nil {
		return fmt.Errorf("report %s: %w", ih, err)
	}
	if cl, ok := c.(interface{ Close() error }); ok {
		defer cl.Close()
	}
	u, granted, err := s.o.Ledger.Report(ctx, c, j.friend, ih, uint64(delta))
	s.mu.Lock()
	j.reported += int64(granted)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("report %s: %w", ih, err)
	}
	s.log.Info("IOU countersigned", "friend", friends.NewID(j.friend), "info_hash", ih, "seq", u.Seq, "total", u.Total, "granted", granted, "claimed", delta)
	return nil
}

// ErrNoHelp is returned by Cashin when no friend accepted.
var ErrNoHelp = errors.New("no friend accepted to help")

var requestID atomic.Uint64

// Cashin asks friends, best balance first (the ones that owe us most),
// to help our master with r; it returns the friend that accepted. This is
// `btslave cashin INFOHASH`, and what auto_cashin calls from
// MasterStarved.
func (s *Service) Cashin(ctx context.Context, r friends.HelpRequest, candidates []friends.Friend) (friends.ID, error) {
	bal := map[friends.ID]int64{}
	for _, f := range candidates {
		b, err := s.o.Ledger.BalanceOf(f.Key)
		if err != nil {
			return friends.ID{}, err
		}
		bal[f.ID()] = b.Net()
	}
	order := append([]friends.Friend(nil), candidates...)
	sortByNet(order, bal)
	var reasons []error
	for _, f := range order {
		r.ID = requestID.Add(1)
		c, err := s.o.Dial(ctx, f.Key)
		if err != nil {
			reasons = append(reasons, fmt.Errorf("%s: %w", f.ID().Short(), err))
			continue
		}
		m, err := c.Call(ctx, r)
		if cl, ok := c.(interface{ Close() error }); ok {
			cl.Close()
		}
		if err != nil {
			reasons = append(reasons, fmt.Errorf("%s: %w", f.ID().Short(), err))
			continue
		}
		rep, ok := m.(friends.HelpReply)
		if ok && rep.Accept && rep.ID == r.ID {
			s.o.Meter.Watch(ctx, r.InfoHash, f.Key)
			s.log.Info("cashed in", "friend", f.ID(), "info_hash", r.InfoHash, "balance", bal[f.ID()], "reason", rep.Reason)
			return f.ID(), nil
		}
		reasons = append(reasons, fmt.Errorf("%s refused: %s", f.ID().Short(), rep.Reason))
	}
	return friends.ID{}, fmt.Errorf("cashin %s: %w: %w", r.InfoHash, ErrNoHelp, errors.Join(reasons...))
}

func sortByNet(fs []friends.Friend, net map[friends.ID]int64) {
	sort.SliceStable(fs, func(i, j int) bool { return net[fs[i].ID()] > net[fs[j].ID()] })
}

// MasterStarved is the hook for auto_cashin: the daemon calls it when our
// own master starts a torrent (#10's "starts a torrent" event) or its
// swarm is starved (no seeders, or below a rate, as the master watcher
// says). With auto_cashin on it cashes in; the error says why nothing
// happened.
func (s *Service) MasterStarved(ctx context.Context, autoCashin bool, r friends.HelpRequest, candidates []friends.Friend) (friends.ID, error) {
	if !autoCashin {
		return friends.ID{}, errors.New("auto_cashin is off")
	}
	return s.Cashin(ctx, r, candidates)
}

var _ ledger.Caller = (*friends.Conn)(nil)
