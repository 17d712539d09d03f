package wire

import (
	"bytes"
	"testing"
)

// Ensure no HAVE of ours reaches a peer that has every piece (HAVE ALL,
// or a full bitfield), split across writes or not, while a leecher gets
// them all: a seed that counted a HAVE for every piece, evicted ones
// included, would take us for a seed and drop us (Transmission then
// refuses our address until restarted: issue #16).
func TestNoHaveToSeeds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shows  []byte
		seed   bool
		broken bool // write each message in two halves
	}{
		{"have all", msg(msgHaveAll), true, false},
		{"have all, split writes", msg(msgHaveAll), true, true},
		{"full bitfield", msg(msgBitfield, 0xff, 0xff), true, false},
		{"leecher", msg(msgBitfield, 0xff, 0x00), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := &fakePieces{n: 16}
			l := New(fp)
			fc := &fakeConn{in: bytes.NewReader(cat(handshake(true), tc.shows))}
			c := l.Wrap(fc, false)
			if _, err := readAll(c, 1024); err != nil {
				t.Fatal(err)
			}
			c.Write(handshake(true))
			c.Write(msg(msgHaveNone))
			before := len(fc.written())
			var want []byte
			for _, m := range [][]byte{msgHaveBytes(3), msg(msgInterested), msgHaveBytes(12), request(1, 0, 16384)} {
				if tc.broken {
					c.Write(m[:3])
					c.Write(m[3:])
				} else {
					c.Write(m)
				}
				if !tc.seed || m[4] != msgHave {
					want = append(want, m...)
				}
			}
			l.PieceAvailable(testIH, 5) // never announced: nothing either way
			if got := fc.written()[before:]; !bytes.Equal(got, want) {
				t.Errorf("peer got\n%x\nwant\n%x", got, want)
			}
			if kept := c.State().HavesKept; kept != map[bool]int64{true: 2}[tc.seed] {
				t.Errorf("HavesKept %d", kept)
			}
		})
	}
}
