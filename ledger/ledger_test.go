package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/friends"
)

func newIdentity(t testing.TB) friends.Identity {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return friends.Identity{Private: priv}
}

// openT opens a ledger in a fresh bbolt file; at cleanup it checks the
// file's consistency and the ledger's invariant (see check).
func openT(t testing.TB, id friends.Identity, opts Options) *Store {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "btslave.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Identity = id
	s, err := Open(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := check(s); err != nil {
			t.Error(err)
		}
		db.Close()
	})
	return s
}

// check is the ledger's invariant: every pair's history runs seq 1..n
// with each delta the growth over the previous total, every entry carries
// both valid signatures, and the latest IOU is the last entry.
func check(s *Store) error {
	return s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return tx.Bucket(bucketLedger).Bucket(bucketLatest).ForEach(func(k, v []byte) error {
			var last IOU
			if err := last.UnmarshalBinary(v); err != nil {
				return err
			}
			hist, err := s.History(last.Debtor, last.Creditor)
			if err != nil {
				return err
			}
			var total uint64
			for i, e := range hist {
				if e.IOU.Seq != uint64(i+1) {
					return errors.New("history has a gap or a duplicate")
				}
				if e.IOU.Total != total+e.Delta {
					return errors.New("history delta does not add up")
				}
				if err := e.IOU.Verify(); err != nil {
					return err
				}
				total = e.IOU.Total
			}
			if len(hist) == 0 || hist[len(hist)-1].IOU.Seq != last.Seq || total != last.Total {
				return errors.New("latest is not the last history entry")
			}
			return nil
		})
	})
}

// exchange runs one help report: creditor proposes delta, debtor
// countersigns, creditor accepts.
func exchange(t testing.TB, creditor, debtor *Store, delta uint64, reason string) IOU {
	t.Helper()
	p, err := creditor.Propose(debtor.self, delta)
	if err != nil {
		t.Fatal(err)
	}
	c, err := debtor.Countersign(p, delta, reason)
	if err != nil {
		t.Fatal(err)
	}
	if stored, _, err := creditor.Accept(c, reason); err != nil || !stored {
		t.Fatalf("accept: stored %v, %v", stored, err)
	}
	return c
}

// Ensure that both sides hold the same IOUs and see mirrored balances.
func TestExchangeBalancesHistory(t *testing.T) {
	ai, bi := newIdentity(t), newIdentity(t)
	a, b := openT(t, ai, Options{}), openT(t, bi, Options{})
	exchange(t, a, b, 1000, "a helped b's master with X")
	exchange(t, a, b, 500, "a helped b's master with Y")
	exchange(t, b, a, 300, "b helped a with Z")

	ba, _ := a.BalanceOf(bi.Public())
	bb, _ := b.BalanceOf(ai.Public())
	if ba.Given != 1500 || ba.Taken != 300 || ba.Net() != 1200 || bb.Net() != -1200 {
		t.Fatalf("balances: a sees %+v net %d, b sees net %d", ba, ba.Net(), bb.Net())
	}
	ha, _ := a.History(bi.Public(), ai.Public())
	hb, _ := b.History(bi.Public(), ai.Public())
	if len(ha) != 2 || len(hb) != 2 || ha[1].Reason != "a helped b's master with Y" || ha[1].Delta != 500 {
		t.Fatalf("history: %+v", ha)
	}
	for i := range ha {
		x, _ := ha[i].IOU.MarshalBinary()
		y, _ := hb[i].IOU.MarshalBinary()
		if !bytes.Equal(x, y) {
			t.Fatalf("entry %d differs between the two ledgers", i)
		}
	}
	all, _ := a.Balances()
	if len(all) != 1 || all[0].Friend != bi.ID() {
		t.Fatalf("Balances: %+v", all)
	}
}

// Ensure that every bad IOU is refused with its own error and leaves both
// ledgers as they were.
func TestRejections(t *testing.T) {
	ai, bi, ei := newIdentity(t), newIdentity(t), newIdentity(t)
	friendsOfB := map[friends.ID]bool{ai.ID(): true}
	a := openT(t, ai, Options{})
	b := openT(t, bi, Options{IsFriend: func(id friends.ID) bool { return friendsOfB[id] }})
	first := exchange(t, a, b, 1000, "first")

	snapshot := func(s *Store) []byte {
		var out []byte
		s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketLedger).ForEachBucket(func(k []byte) error {
				return tx.Bucket(bucketLedger).Bucket(k).ForEach(func(k, v []byte) error {
					out = append(append(out, k...), v...)
					return nil
				})
			})
		})
		return out
	}
	beforeA, beforeB := snapshot(a), snapshot(b)

	next, _ := a.Propose(bi.Public(), 100)
	badSig := next
	badSig.SigCreditor = bytes.Clone(next.SigCreditor)
	badSig.SigCreditor[0] ^= 1
	lower := IOU{Seq: 2, Debtor: bi.Public(), Creditor: ai.Public(), Total: 10}
	lower.Sign(ai.Private)
	gap := IOU{Seq: 5, Debtor: bi.Public(), Creditor: ai.Public(), Total: 5000}
	gap.Sign(ai.Private)
	stranger := IOU{Seq: 1, Debtor: bi.Public(), Creditor: ei.Public(), Total: 10}
	stranger.Sign(ei.Private)
	notOurs := IOU{Seq: 1, Debtor: ei.Public(), Creditor: ai.Public(), Total: 10}
	notOurs.Sign(ai.Private)
	notA := IOU{Seq: 1, Debtor: ei.Public(), Creditor: bi.Public(), Total: 10}
	notA.Sign(bi.Private)
	notA.Sign(ei.Private)
	forged := first
	forged.Total = 1_000_000 // both sigs now wrong

	for _, c := range []struct {
		name string
		u    IOU
		max  uint64
		want error
	}{
		{"bad signature", badSig, 100, ErrBadSignature},
		{"replayed IOU", first, 1000, ErrStale},
		{"lower total", lower, 1000, ErrStale},
		{"seq gap", gap, 10000, ErrStale},
		{"more than delivered", next, 99, ErrTooMuch},
		{"unknown key", stranger, 100, ErrUnknownKey},
		{"not ours", notOurs, 100, ErrNotOurs},
	} {
		got, err := b.Countersign(c.u, c.max, c.name)
		if !errors.Is(err, c.want) {
			t.Errorf("countersign %s: %v, want %v", c.name, err, c.want)
		}
		if c.want == ErrStale && got.Seq != first.Seq {
			t.Errorf("countersign %s: resync answer seq %d, want our latest %d", c.name, got.Seq, first.Seq)
		}
	}
	for _, c := range []struct {
		name string
		u    IOU
		want error
	}{
		{"forged total", forged, ErrBadSignature},
		{"creditor-only signature", next, ErrBadSignature},
		{"not ours", notA, ErrNotOurs},
	} {
		if _, _, err := a.Accept(c.u, c.name); !errors.Is(err, c.want) {
			t.Errorf("accept %s: %v, want %v", c.name, err, c.want)
		}
	}
	if stored, _, err := a.Accept(first, "replay"); stored || err != nil {
		t.Errorf("accept replay of the latest: stored %v, %v; want a no-op", stored, err)
	}
	if !bytes.Equal(snapshot(a), beforeA) || !bytes.Equal(snapshot(b), beforeB) {
		t.Fatal("a rejected IOU changed a ledger")
	}
}

// Ensure that a creditor that lost its latest resyncs from the debtor's
// ErrStale answer and carries on.
func TestResync(t *testing.T) {
	ai, bi := newIdentity(t), newIdentity(t)
	a, b := openT(t, ai, Options{}), openT(t, bi, Options{})
	exchange(t, a, b, 10, "one")
	// b countersigns but a never hears of it.
	p, _ := a.Propose(bi.Public(), 20)
	if _, err := b.Countersign(p, 20, "two"); err != nil {
		t.Fatal(err)
	}
	p, _ = a.Propose(bi.Public(), 30) // seq 2 again
	ours, err := b.Countersign(p, 30, "three")
	if !errors.Is(err, ErrStale) || ours.Seq != 2 {
		t.Fatalf("got %v seq %d, want ErrStale with seq 2", err, ours.Seq)
	}
	if stored, _, err := a.Accept(ours, "resync"); !stored || err != nil {
		t.Fatalf("resync accept: %v %v", stored, err)
	}
	exchange(t, a, b, 30, "three")
	bal, _ := a.BalanceOf(bi.Public())
	if bal.Given != 60 {
		t.Fatalf("given %d, want 60", bal.Given)
	}
}

func FuzzUnmarshalIOU(f *testing.F) {
	ai, bi := newIdentity(f), newIdentity(f)
	u := IOU{Seq: 3, Debtor: bi.Public(), Creditor: ai.Public(), Total: 77}
	u.Sign(ai.Private)
	u.Sign(bi.Private)
	enc, _ := u.MarshalBinary()
	f.Add(enc)
	f.Add(enc[:Size-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var u IOU
		if err := u.UnmarshalBinary(b); err != nil {
			return
		}
		again, _ := u.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatal("round trip differs")
		}
		_ = u.Verify()
	})
}

func FuzzDecodeEntry(f *testing.F) {
	ai, bi := newIdentity(f), newIdentity(f)
	u := IOU{Seq: 1, Debtor: bi.Public(), Creditor: ai.Public(), Total: 5}
	f.Add(Entry{IOU: u, Delta: 5, Reason: "why"}.encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.encode(), b) {
			t.Fatal("round trip differs")
		}
	})
}
