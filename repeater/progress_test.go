package repeater

import (
	"net"
	"testing"
	"time"

	"github.com/btslave/btslave/repeater/wire"
)

func peerAt(port int, pieces ...int) wire.PeerState {
	p := wire.PeerState{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}
	for _, i := range pieces {
		p.Have.Set(i)
	}
	return p
}

// TestFetchWant checks that a peer's want counts as far as the peer will
// still lack the piece when a fetch can reach it: in full for a peer that
// completes nothing, not at all for one that will have finished.
func TestFetchWant(t *testing.T) {
	const n = 8
	t0 := time.Unix(1000, 0)
	var g progress
	// slow: 2 of 8 and stays there. fast: 4 of 8, then 6 at t0+2s, one
	// piece a second with two to go. seed: everything.
	slow0, fast0 := peerAt(1, 0, 1), peerAt(2, 0, 1, 2, 3)
	seed := wire.PeerState{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3}, HaveAll: true}
	g.observe(n, []wire.PeerState{slow0, fast0, seed}, t0)
	fast1 := peerAt(2, 0, 1, 2, 3, 4, 5)
	peers := []wire.PeerState{slow0, fast1, seed}
	g.observe(n, peers, t0.Add(2*time.Second))
	if r := g.rate(&peers[0]); r != 0 {
		t.Errorf("slow peer's rate %v, want 0", r)
	}
	if r := g.rate(&peers[1]); r != 1 {
		t.Errorf("fast peer's rate %v, want 1", r)
	}
	d := measureDemand(n, peers)

	// Delivered in 2 s: the fast peer has both its pieces by then.
	got := g.fetchWant(n, peers, d, 2*time.Second)
	for j, w := range []int{0, 0, 1, 1, 1, 1, 1, 1} {
		if got[j] != w {
			t.Errorf("deliver 2s: piece %d fetch want %d, want %d (all %v)", j, got[j], w, got)
		}
	}
	// Delivered in 1 s: the fast peer still lacks each with chance 1/2,
	// which rounds up, so pieces 6 and 7 count both peers.
	got = g.fetchWant(n, peers, d, time.Second)
	if got[6] != 2 || got[7] != 2 || got[4] != 1 {
		t.Errorf("deliver 1s: fetch want %v, want pieces 6,7 at 2 and 2..5 at 1", got)
	}
	// No delivery estimate: every want in full.
	got = g.fetchWant(n, peers, d, 0)
	for j := range got {
		if got[j] != d.want[j] {
			t.Errorf("deliver 0: piece %d fetch want %d, plain want %d", j, got[j], d.want[j])
		}
	}

	// A peer gone is forgotten.
	g.observe(n, peers[:1], t0.Add(3*time.Second))
	if len(g.peers) != 1 {
		t.Errorf("%d peers tracked after two left, want 1", len(g.peers))
	}
}

// TestDeliverTime checks the delivery estimate and its floor on the rate.
func TestDeliverTime(t *testing.T) {
	const piece = 256 << 10
	if got := deliverTime(piece, 0, 0); got != 0 {
		t.Errorf("no rate measured: %v, want 0", got)
	}
	// Two pieces ahead and this one at 256 KiB/s, plus a second.
	if got := deliverTime(piece, 2, piece); got != 4*time.Second {
		t.Errorf("deliverTime(2 pending, a piece a second) = %v, want 4s", got)
	}
	// A rate far below a piece in maxPieceTime counts as that.
	if got, want := deliverTime(piece, 0, 1), maxPieceTime+time.Second; got != want {
		t.Errorf("deliverTime at 1 B/s = %v, want %v", got, want)
	}
}
