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
// no more than saw, the bytes we saw that friend deliver to our master
// for the swarm since its last IOU. A stale proposal is answered with our
// latest (Stale set) so the creditor resyncs; a refused one with an empty
// IOU. Every refusal is logged with its reason and changes nothing.
func (s *Store) OnDelivered(from ed25519.PublicKey, d friends.Delivered, saw uint64) friends.IOUMsg {
	var u IOU
	if err := u.UnmarshalBinary(d.IOU); err != nil {
		s.reject("delivered", u, err)
		return friends.IOUMsg{}
	}
	if !u.Creditor.Equal(from) {
		s.reject("delivered", u, fmt.Errorf("proposal for creditor %s sent by %s: %w", idOf(u.Creditor).Short(), idOf(from).Short(), ErrNotOurs))
		return friends.IOUMsg{}
	}
	out, err := s.Countersign(u, saw, "helped our master with "+d.InfoHash)
	switch {
	case errors.Is(err, ErrStale):
		if out.Seq == 0 {
			return friends.IOUMsg{Stale: true}
		}
		enc, _ := out.MarshalBinary()
		return friends.IOUMsg{IOU: enc, Stale: true}
	case err != nil:
		return friends.IOUMsg{}
	}
	enc, _ := out.MarshalBinary()
	return friends.IOUMsg{IOU: enc}
}

// ErrRefused is returned by Report when the debtor refused the proposal.
var ErrRefused = errors.New("friend refused the IOU")

// Report tells debtor, as creditor, that we delivered delta more bytes
// for its master's swarm infoHash, and stores the countersigned IOU it
// answers. If the debtor answers stale (it holds a newer IOU, because we
// lost its last answer), Report stores that one and proposes once more.
func (s *Store) Report(ctx context.Context, c Caller, debtor ed25519.PublicKey, infoHash string, delta uint64) (IOU, error) {
	reason := "helped its master with " + infoHash
	for try := 0; try < 2; try++ {
		p, err := s.Propose(debtor, delta)
		if err != nil {
			return IOU{}, err
		}
		enc, _ := p.MarshalBinary()
		m, err := c.Call(ctx, friends.Delivered{InfoHash: infoHash, IOU: enc})
		if err != nil {
			return IOU{}, fmt.Errorf("report to %s: %w", idOf(debtor).Short(), err)
		}
		ans, ok := m.(friends.IOUMsg)
		if !ok {
			return IOU{}, fmt.Errorf("report to %s: answer is %v: %w", idOf(debtor).Short(), m.Type(), ErrMalformed)
		}
		if len(ans.IOU) == 0 {
			return IOU{}, fmt.Errorf("report to %s: %w", idOf(debtor).Short(), ErrRefused)
		}
		var u IOU
		if err := u.UnmarshalBinary(ans.IOU); err != nil {
			return IOU{}, s.reject("report", u, err)
		}
		if !u.Debtor.Equal(debtor) || !u.Creditor.Equal(s.self) {
			return IOU{}, s.reject("report", u, ErrNotOurs)
		}
		if ans.Stale {
			if _, _, err := s.Accept(u, "resync: "+reason); err != nil && !errors.Is(err, ErrStale) {
				return IOU{}, err
			}
			continue
		}
		if _, _, err := s.Accept(u, reason); err != nil {
			return IOU{}, err
		}
		return u, nil
	}
	return IOU{}, fmt.Errorf("report to %s: still stale after a resync: %w", idOf(debtor).Short(), ErrStale)
}
