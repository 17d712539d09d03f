package wire

import (
	"bytes"
	"net"
	"slices"
	"testing"
)

// Ensure the offer order's mechanics: while a connection withholds, the
// library's HAVEs (whole or split across writes) do not reach the peer and
// are kept; a kept piece that is evicted, or that the peer got meanwhile,
// is dropped; Offer shows exactly the pieces the policy names, once; and
// ending the hold shows everything still kept. The BITFIELD is never
// touched.
func TestOfferWithholdsAndShows(t *testing.T) {
	l := New(&fakePieces{n: 16})
	// The peer holds nothing at first and later announces piece 9 itself.
	fc := &fakeConn{in: bytes.NewReader(cat(handshake(true), msg(msgBitfield, 0x00, 0x00), msgHaveBytes(9)))}
	c := l.Wrap(fc, false)
	if _, err := readAll(c, 1024); err != nil {
		t.Fatal(err)
	}
	c.Write(handshake(true))
	bf := msg(msgBitfield, 0x80, 0x00)
	c.Write(bf)
	withhold := func(show ...int) (seen []int) {
		l.Offer(testIH, func(_ net.Addr, withheld []int) OfferDecision {
			seen = withheld
			return OfferDecision{Withhold: true, Show: show}
		})
		return seen
	}
	if w := withhold(); len(w) != 0 {
		t.Fatalf("withheld before any HAVE: %v", w)
	}
	at := len(fc.written())
	c.Write(msgHaveBytes(3))
	h := msgHaveBytes(12)
	c.Write(h[:2])
	c.Write(h[2:])
	c.Write(msg(msgUnchoke)) // other messages pass
	c.Write(msgHaveBytes(9)) // the peer has it: kept, then dropped
	c.Write(msgHaveBytes(7))
	if got, want := fc.written()[at:], msg(msgUnchoke); !bytes.Equal(got, want) {
		t.Fatalf("while withholding the peer got %x, want %x", got, want)
	}
	if st := c.State(); st.HavesWithheld != 4 || st.HavesInjected != 0 {
		t.Errorf("HavesWithheld %d, HavesInjected %d; want 4, 0", st.HavesWithheld, st.HavesInjected)
	}

	l.PieceEvicted(testIH, 3) // gone: nothing to show, no DONTHAVE owed
	l.PieceAvailable(testIH, 7)
	if w := withhold(12); !slices.Equal(w, []int{7, 12}) {
		t.Fatalf("withheld %v, want [7 12] (3 evicted, 9 held by the peer)", w)
	}
	if got, want := fc.written()[at:], cat(msg(msgUnchoke), msgHaveBytes(12)); !bytes.Equal(got, want) {
		t.Fatalf("after showing 12 the peer got %x, want %x", got, want)
	}
	if w := withhold(12); !slices.Equal(w, []int{7}) {
		t.Fatalf("withheld %v after showing 12, want [7]", w)
	}
	l.Offer(testIH, func(net.Addr, []int) OfferDecision { return OfferDecision{} })
	if got, want := fc.written()[at:], cat(msg(msgUnchoke), msgHaveBytes(12), msgHaveBytes(7)); !bytes.Equal(got, want) {
		t.Fatalf("after the hold ended the peer got %x, want %x", got, want)
	}
	if st := c.State(); !st.Advertised.Has(7) || !st.Advertised.Has(12) || st.Advertised.Has(3) || st.HavesInjected != 2 {
		t.Errorf("advertised 3/7/12 = %v/%v/%v, injected %d; want false/true/true, 2",
			st.Advertised.Has(3), st.Advertised.Has(7), st.Advertised.Has(12), st.HavesInjected)
	}
	// Not withholding: the library's HAVEs pass again.
	at = len(fc.written())
	c.Write(msgHaveBytes(5))
	if got, want := fc.written()[at:], msgHaveBytes(5); !bytes.Equal(got, want) {
		t.Errorf("after the hold the peer got %x, want %x", got, want)
	}
	if !bytes.Contains(fc.written(), bf) {
		t.Error("the BITFIELD was changed")
	}
}
