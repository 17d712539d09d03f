package ledger

import (
	"context"
	"errors"
	"testing"

	"github.com/btslave/btslave/friends"
)

// direct is a Caller that hands delivered reports straight to the debtor,
// as the friends server would, and can lose one answer.
type direct struct {
	from     *Store
	to       *Store
	saw      uint64
	loseNext bool
}

func (d *direct) Call(_ context.Context, m friends.Message) (friends.Message, error) {
	ans, _ := d.to.OnDelivered(d.from.self, m.(friends.Delivered), d.saw)
	if d.loseNext {
		d.loseNext = false
		return nil, errors.New("connection lost")
	}
	return ans, nil
}

// Ensure that Report and OnDelivered keep both ledgers equal through a lost
// answer, and that an overclaim is refused.
func TestReportOnDelivered(t *testing.T) {
	ai, bi := newIdentity(t), newIdentity(t)
	a, b := openT(t, ai, Options{}), openT(t, bi, Options{})
	c := &direct{from: a, to: b, saw: 1 << 20}
	ctx := context.Background()
	if _, g, err := a.Report(ctx, c, bi.Public(), "aa", 1000); err != nil || g != 1000 {
		t.Fatal(g, err)
	}
	c.loseNext = true
	if _, _, err := a.Report(ctx, c, bi.Public(), "aa", 2000); err == nil {
		t.Fatal("lost answer reported no error")
	}
	// b countersigned seq 2; a resyncs to it and carries on with seq 3 for
	// the rest of what it has not seen in an IOU: the 2000 and 3000 more.
	u, g, err := a.Report(ctx, c, bi.Public(), "aa", 5000)
	if err != nil {
		t.Fatal(err)
	}
	if u.Seq != 3 || u.Total != 6000 || g != 5000 {
		t.Fatalf("after resync: seq %d total %d granted %d, want 3, 6000, 5000", u.Seq, u.Total, g)
	}
	// An overclaim is capped to what b allows...
	c.saw = 10
	if u, g, err := a.Report(ctx, c, bi.Public(), "aa", 11); err != nil || g != 10 || u.Total != 6010 {
		t.Fatalf("overclaim: total %d granted %d %v, want 6010, 10", u.Total, g, err)
	}
	// ...and refused when b allows nothing.
	c.saw = 0
	if _, _, err := a.Report(ctx, c, bi.Public(), "aa", 11); !errors.Is(err, ErrRefused) {
		t.Fatalf("overclaim: %v, want ErrRefused", err)
	}
	ba, _ := a.BalanceOf(bi.Public())
	bb, _ := b.BalanceOf(ai.Public())
	if ba.Given != 6010 || bb.Taken != 6010 {
		t.Fatalf("a gave %d, b took %d; want 6010 both", ba.Given, bb.Taken)
	}
}

// Ensure that a proposal relayed by a key that is not its creditor is
// refused and changes nothing.
func TestOnDeliveredWrongSender(t *testing.T) {
	ai, bi, ei := newIdentity(t), newIdentity(t), newIdentity(t)
	a, b := openT(t, ai, Options{}), openT(t, bi, Options{})
	p, _ := a.Propose(bi.Public(), 10)
	enc, _ := p.MarshalBinary()
	if ans, _ := b.OnDelivered(ei.Public(), friends.Delivered{InfoHash: "aa", IOU: enc}, 10); len(ans.IOU) != 0 {
		t.Fatal("countersigned a proposal relayed by a stranger")
	}
	if ans, _ := b.OnDelivered(ai.Public(), friends.Delivered{InfoHash: "aa", IOU: enc[:100]}, 10); len(ans.IOU) != 0 {
		t.Fatal("countersigned a truncated proposal")
	}
	if bal, _ := b.BalanceOf(ai.Public()); bal.Taken != 0 {
		t.Fatal("ledger changed")
	}
}
