package wire

import (
	"bytes"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// lengthPieces is fakePieces with a fixed piece length.
type lengthPieces struct {
	*fakePieces
	pieceLen int64
}

func (p lengthPieces) PieceLength(metainfo.Hash, int) (lib, v1 int64) { return p.pieceLen, p.pieceLen }

// Ensure the request for the last block of the only piece a Transmission
// leecher was told of and lacks is held until it is told of another piece
// (or lastBlockHold passes), so that the piece stays incomplete through
// Transmission's 10 s interest pulse; that a peer of another client, a
// peer's last missing piece and a cancelled request are not held; and
// that a fast peer that cancels the held request gets a REJECT.
func TestHoldLastBlock(t *testing.T) {
	const block = 16384
	first, last := request(0, 0, block), request(0, block, block)
	first1, last1 := request(1, 0, block), request(1, block, block)
	cases := []struct {
		name     string
		peerID   string
		n        int    // pieces in the torrent
		peerHas  []byte // the peer's BITFIELD
		cancel   bool
		tellMore bool // we tell the peer of piece 1 after the first read
		held     bool
		master   bool // not one of the swarm's leechers (OfferDecision.KeepInterest)
		two      bool // told of pieces 0 and 1, asked both whole: piece 1's last block is the one
	}{
		{"Transmission, told of another piece", "-TR3000-abcdefghijkl", 8, []byte{0}, false, true, true, false, false},
		{"Transmission, nothing more: released after the hold", "-TR4060-abcdefghijkl", 8, []byte{0}, false, false, true, false, false},
		{"libtorrent: never held", "-LT2080-abcdefghijkl", 8, []byte{0}, false, false, false, false, false},
		{"the master: never held", "-TR3000-abcdefghijkl", 8, []byte{0}, false, false, false, true, false},
		{"the peer's last missing piece: never held", "-TR3000-abcdefghijkl", 8, []byte{0x7f}, false, false, false, false, false},
		{"told of two, asked both whole: the second's last block held", "-TR3000-abcdefghijkl", 8, []byte{0}, false, true, true, false, true},
		{"cancelled while held", "-TR3000-abcdefghijkl", 8, []byte{0}, true, false, true, false, false},
	}
	old := lastBlockHold
	lastBlockHold = 1500 * time.Millisecond
	t.Cleanup(func() { lastBlockHold = old })
	for _, tc := range cases {
		peer, ours := tcpPair(t)
		pieces := lengthPieces{&fakePieces{have: map[int]bool{0: true, 1: true, 2: true}, n: tc.n}, 2 * block}
		l := New(pieces)
		c := l.Wrap(ours, true)
		c.keepInterest.Store(!tc.master) // as the repeater's offer decides
		ours0, more, heldReq, passed := byte(0x80), msg(msgHave, 0, 0, 0, 1), last, []byte(nil)
		if tc.two {
			ours0, more, heldReq, passed = 0xc0, msg(msgHave, 0, 0, 0, 2), last1, last
		}
		c.Write(cat(handshake(true), msg(msgBitfield, ours0))) // we tell of piece 0 (and 1)
		hs := append(handshake(true)[:handshakeLen-20], tc.peerID...)
		in := cat(hs, msg(msgBitfield, tc.peerHas...), msg(msgInterested), first, last)
		if tc.two {
			in = append(in, cat(first1, last1)...)
		}
		if tc.cancel {
			in = append(in, msg(msgCancel, last[5:]...)...)
		}
		go peer.Write(in)
		start := time.Now()
		got := readUntil(c, 300*time.Millisecond)
		if !bytes.Contains(got, first) {
			t.Fatalf("%s: the first block's request did not reach the library", tc.name)
		}
		if held := !bytes.Contains(got, heldReq); held != tc.held {
			t.Fatalf("%s: last block held %v, want %v", tc.name, held, tc.held)
		}
		if passed != nil && !bytes.Contains(got, passed) {
			t.Fatalf("%s: the first piece's last block was held, with another piece still to ask", tc.name)
		}
		if !tc.held {
			continue
		}
		if tc.tellMore {
			c.Write(more)
		}
		got = readUntil(c, 600*time.Millisecond) // a few polls, not the whole hold
		switch {
		case tc.cancel:
			got = append(got, readUntil(c, 1200*time.Millisecond)...) // past the hold
			if bytes.Contains(got, last) {
				t.Errorf("%s: a cancelled held request reached the library", tc.name)
			}
			peer.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 4096)
			var out []byte
			for !bytes.Contains(out, msgRejectBytes(last[5:])) {
				n, err := peer.Read(buf)
				if err != nil {
					t.Fatalf("%s: the peer got no REJECT for its cancelled request: %v", tc.name, err)
				}
				out = append(out, buf[:n]...)
			}
		case tc.tellMore:
			if !bytes.Contains(got, heldReq) {
				t.Errorf("%s: told of another piece, the held request was not released", tc.name)
			}
		default:
			if bytes.Contains(got, last) {
				t.Errorf("%s: released after %v, before the hold ended", tc.name, time.Since(start))
			}
			if got = readUntil(c, 1200*time.Millisecond); !bytes.Contains(got, last) {
				t.Errorf("%s: not released when the hold ended", tc.name)
			}
		}
		if st := c.State(); st.HeldLast != 1 {
			t.Errorf("%s: HeldLast %d, want 1", tc.name, st.HeldLast)
		}
		if st := l.Stats(); st.HeldLast != 1 {
			t.Errorf("%s: layer HeldLast %d, want 1", tc.name, st.HeldLast)
		}
	}
}
