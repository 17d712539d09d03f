package ledger

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/btslave/btslave/friends"
)

// Caller sends one message to a friend and returns its answer; a
// *friends.Conn is one.
type Caller interface {
	Call(ctx context.Context, m friends.Message) (friends.Message, error)
}

// OnDelivered answers, as debtor, a friend's delivered report (the
// friends.Handler's Delivered): it countersigns the proposal if it claims
// no more than allow, the bytes we may still credit that friend for the
// swarm (what our master's counters say arrived and no one was credited
// for yet), and returns the answer with the bytes it countersigned. A
// stale proposal is answered with our latest (Stale set) so the creditor
// resyncs; one claiming too much with an empty IOU and Allow, the most we
// would sign now, so the creditor may propose that instead; any other
// refusal with an empty IOU. Every refusal is logged with its reason and
// changes nothing.
func (s *Store) OnDelivered(from ed25519.PublicKey, d friends.Delivered, allow uint64) (friends.IOUMsg, uint64) {
	var u IOU
	if err := u.UnmarshalBinary(d.IOU); err != nil {
		s.reject("delivered", u, err)
		return friends.IOUMsg{}, 0
	}
	if !u.Creditor.Equal(from) {
		s.reject("delivered", u, fmt.Errorf("proposal for creditor %s sent by %s: %w", idOf(u.Creditor).Short(), idOf(from).Short(), ErrNotOurs))
		return friends.IOUMsg{}, 0
	}
	last, err := s.Latest(s.self, from)
	if err != nil {
		s.reject("delivered", u, err)
		return friends.IOUMsg{}, 0
	}
	out, err := s.Countersign(u, allow, "helped our master with "+d.InfoHash)
	switch {
	case errors.Is(err, ErrStale):
		if out.Seq == 0 {
			return friends.IOUMsg{Stale: true}, 0
		}
		enc, _ := out.MarshalBinary()
		return friends.IOUMsg{IOU: enc, Stale: true}, 0
	case errors.Is(err, ErrTooMuch):
		return friends.IOUMsg{Allow: allow}, 0
	case err != nil:
		return friends.IOUMsg{}, 0
	}
	enc, _ := out.MarshalBinary()
	return friends.IOUMsg{IOU: enc}, out.Total - last.Total
}

// ErrRefused is returned by Report when the debtor refused the proposal.
var ErrRefused = errors.New("friend refused the IOU")

// Report tells debtor, as creditor, that we delivered delta more bytes
// for its master's swarm infoHash, and stores the countersigned IOU it
// answers; granted is how many of the delta bytes it countersigned. If the
// debtor answers stale (it holds a newer IOU, because we lost its last
// answer), Report stores that one, counts its growth as granted (delta is
// everything we sent that no IOU we hold covers) and proposes the rest. If it answers
// that it saw less arrive (Allow), Report proposes that much instead: the
// rest is the caller's to claim again later, when the debtor's counters
// may have caught up.
func (s *Store) Report(ctx context.Context, c Caller, debtor ed25519.PublicKey, infoHash string, delta uint64) (u IOU, granted uint64, err error) {
	reason := "helped its master with " + infoHash
	capped := false
	for try := 0; try < 3; try++ {
		p, err := s.Propose(debtor, delta)
		if err != nil {
			return IOU{}, 0, err
		}
		enc, _ := p.MarshalBinary()
		m, err := c.Call(ctx, friends.Delivered{InfoHash: infoHash, IOU: enc})
		if err != nil {
			return IOU{}, 0, fmt.Errorf("report to %s: %w", idOf(debtor).Short(), err)
		}
		ans, ok := m.(friends.IOUMsg)
		if !ok {
			return IOU{}, 0, fmt.Errorf("report to %s: answer is %v: %w", idOf(debtor).Short(), m.Type(), ErrMalformed)
		}
		if len(ans.IOU) == 0 && ans.Allow > 0 && ans.Allow < delta && !capped {
			s.opts.Logger.Info("ledger: friend saw less arrive than we sent; claiming what it saw",
				"debtor", idOf(debtor), "info_hash", infoHash, "claimed", delta, "allowed", ans.Allow)
			delta, capped = ans.Allow, true
			continue
		}
		if len(ans.IOU) == 0 {
			return IOU{}, 0, fmt.Errorf("report to %s (%d bytes, it allows %d): %w", idOf(debtor).Short(), delta, ans.Allow, ErrRefused)
		}
		u = IOU{}
		if err := u.UnmarshalBinary(ans.IOU); err != nil {
			return IOU{}, 0, s.reject("report", u, err)
		}
		if !u.Debtor.Equal(debtor) || !u.Creditor.Equal(s.self) {
			return IOU{}, 0, s.reject("report", u, ErrNotOurs)
		}
		if ans.Stale {
			stored, _, err := s.Accept(u, "resync: "+reason)
			if err != nil && !errors.Is(err, ErrStale) {
				return IOU{}, 0, err
			}
			if prev := p.Total - delta; stored && u.Total > prev {
				// The debtor countersigned bytes whose answer we lost: they
				// are part of delta (everything not yet in an IOU we hold).
				grown := min(u.Total-prev, delta)
				granted += grown
				if delta -= grown; delta == 0 {
					return u, granted, nil
				}
			}
			continue
		}
		if _, _, err := s.Accept(u, reason); err != nil {
			return IOU{}, 0, err
		}
		return u, granted + delta, nil
	}
	return IOU{}, 0, fmt.Errorf("report to %s: still stale after a resync: %w", idOf(debtor).Short(), ErrStale)
}
