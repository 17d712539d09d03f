package wire

import (
	"bytes"
	"testing"
)

// Ensure a held interest: the peer is told INTERESTED at a message boundary
// after the library's BITFIELD (never before, never mid-message), the
// library's NOT_INTERESTED is kept from it while held, the library's view
// stays its own, and releasing the hold tells the peer NOT_INTERESTED only
// when the library is not interested.
func TestHoldInterest(t *testing.T) {
	l := New(&fakePieces{n: 16})
	fc := &fakeConn{in: bytes.NewReader(handshake(true))}
	c := l.Wrap(fc, false)
	if _, err := readAll(c, 1024); err != nil {
		t.Fatal(err)
	}
	c.Write(handshake(true))
	start := len(fc.written())
	c.HoldInterest(true) // before the library's first message: must wait
	if n := len(fc.written()); n != start {
		t.Fatalf("INTERESTED went out before the BITFIELD: %x", fc.written()[start:])
	}
	bf := msg(msgBitfield, 0xc0, 0x00)
	c.Write(bf)
	if got, want := fc.written()[start:], cat(bf, msg(msgInterested)); !bytes.Equal(got, want) {
		t.Fatalf("after BITFIELD the peer got %x, want %x", got, want)
	}
	if st := c.State(); !st.Interested || st.AmInterested || !st.InterestHeld {
		t.Errorf("state interested %v, library %v, held %v; want true, false, true", st.Interested, st.AmInterested, st.InterestHeld)
	}

	// Mid-message the hold's release waits for the boundary.
	at := len(fc.written())
	piece := msg(msgPiece, append(make([]byte, 8), bytes.Repeat([]byte{1}, 64)...)...)
	c.Write(piece[:20])
	c.Write(msg(msgInterested)[:0]) // nothing
	c.Write(piece[20:])
	c.Write(msg(msgInterested))    // the library's own: passes
	c.Write(msg(msgNotInterested)) // kept: still held
	if got, want := fc.written()[at:], cat(piece, msg(msgInterested)); !bytes.Equal(got, want) {
		t.Fatalf("peer got %x, want %x", got, want)
	}
	if st := c.State(); !st.Interested || st.AmInterested {
		t.Errorf("after the library's NOT_INTERESTED: told %v, library %v; want true, false", st.Interested, st.AmInterested)
	}
	at = len(fc.written())
	c.HoldInterest(false)
	if got, want := fc.written()[at:], msg(msgNotInterested); !bytes.Equal(got, want) {
		t.Fatalf("on release the peer got %x, want %x", got, want)
	}

	// Released while the library is interested: nothing to say.
	c.Write(msg(msgInterested))
	c.HoldInterest(true)
	at = len(fc.written())
	c.HoldInterest(false)
	if got := fc.written()[at:]; len(got) != 0 {
		t.Errorf("released while the library is interested, the peer got %x", got)
	}
	if st := c.State(); !st.Interested || !st.AmInterested || st.InterestHeld {
		t.Errorf("state %v %v %v, want true true false", st.Interested, st.AmInterested, st.InterestHeld)
	}
}
