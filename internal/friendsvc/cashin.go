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

// Answer is one friend's answer to a cash-in: accepted or not, with the
// reason it gave (or why it could not be asked), and its balance with us
// (what it owes us, negative when we owe it) when it was asked.
type Answer struct {
	Friend  friends.ID
	Accept  bool
	Reason  string
	Balance int64
}

// Cashin asks friends, best balance first (the ones that owe us most),
// to help our master with r, until want of them accepted (want < 1: one)
// or all were asked; it returns every answer, in the order asked. The
// error is ErrNoHelp, with the refusals joined, when none accepted. This
// is `btslave cashin INFOHASH` ([friends] cashin_helpers is want), and
// what auto_cashin calls from MasterStarved.
func (s *Service) Cashin(ctx context.Context, r friends.HelpRequest, candidates []friends.Friend, want int) ([]Answer, error) {
	want = max(want, 1)
	bal := map[friends.ID]int64{}
	for _, f := range candidates {
		b, err := s.o.Ledger.BalanceOf(f.Key)
		if err != nil {
			return nil, err
		}
		bal[f.ID()] = b.Net()
	}
	order := append([]friends.Friend(nil), candidates...)
	sortByNet(order, bal)
	var answers []Answer
	var reasons []error
	accepted := 0
	for _, f := range order {
		if accepted >= want || ctx.Err() != nil {
			break
		}
		ans := Answer{Friend: f.ID(), Balance: bal[f.ID()]}
		ans.Accept, ans.Reason = s.ask(ctx, f, r)
		answers = append(answers, ans)
		if ans.Accept {
			accepted++
			s.o.Meter.Watch(ctx, r.InfoHash, f.Key)
			s.log.Info("cashed in", "friend", f.ID(), "info_hash", r.InfoHash, "balance", ans.Balance, "reason", ans.Reason, "helpers", accepted, "want", want)
			continue
		}
		reasons = append(reasons, fmt.Errorf("%s refused: %s", f.ID().Short(), ans.Reason))
	}
	if accepted == 0 {
		return answers, fmt.Errorf("cashin %s: %w: %w", r.InfoHash, ErrNoHelp, errors.Join(reasons...))
	}
	return answers, nil
}

// ask sends one friend the help request r: whether it accepted, and its
// reason or why it could not be asked.
func (s *Service) ask(ctx context.Context, f friends.Friend, r friends.HelpRequest) (bool, string) {
	r.ID = requestID.Add(1)
	c, err := s.o.Dial(ctx, f.Key)
	if err != nil {
		return false, "cannot reach it: " + err.Error()
	}
	m, err := c.Call(ctx, r)
	if cl, ok := c.(interface{ Close() error }); ok {
		cl.Close()
	}
	if err != nil {
		return false, "no answer: " + err.Error()
	}
	rep, ok := m.(friends.HelpReply)
	switch {
	case !ok:
		return false, fmt.Sprintf("answered a help request with %T", m)
	case rep.ID != r.ID:
		return false, fmt.Sprintf("answered request %d, not %d", rep.ID, r.ID)
	}
	return rep.Accept, rep.Reason
}

func sortByNet(fs []friends.Friend, net map[friends.ID]int64) {
	sort.SliceStable(fs, func(i, j int) bool { return net[fs[i].ID()] > net[fs[j].ID()] })
}

// MasterStarved is the hook for auto_cashin: the daemon calls it when our
// own master starts a torrent (#10's "starts a torrent" event) or its
// swarm is starved (no seeders, or below a rate, as the master watcher
// says). With auto_cashin on it cashes in; the error says why nothing
// happened.
func (s *Service) MasterStarved(ctx context.Context, autoCashin bool, r friends.HelpRequest, candidates []friends.Friend, want int) ([]Answer, error) {
	if !autoCashin {
		return nil, errors.New("auto_cashin is off")
	}
	return s.Cashin(ctx, r, candidates, want)
}

var _ ledger.Caller = (*friends.Conn)(nil)
