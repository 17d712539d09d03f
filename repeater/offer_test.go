package repeater

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/btslave/btslave/repeater/wire"
)

func offerPeer(i int, down int64) wire.PeerState {
	return wire.PeerState{Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6000 + i}, BytesDown: down}
}

func shownList(show map[string]map[int]bool, p wire.PeerState) []int {
	return slices.Sorted(maps.Keys(show[p.Remote.String()]))
}

// Ensure the offer order: fresh pieces go first to two leechers each,
// spread so that different leechers get different pieces (those that gave
// us most first), seeds and upload-only peers are left out of it, and a
// piece is shown to everyone that lacks it once two leechers hold it or
// after offerWait; until then offerFirst leechers lacking it are shown it.
func TestPlanOffer(t *testing.T) {
	const n = 16
	peers := []wire.PeerState{offerPeer(0, 40), offerPeer(1, 30), offerPeer(2, 20), offerPeer(3, 10)}
	seed := offerPeer(4, 0)
	seed.HaveAll = true
	uo := offerPeer(5, 0)
	uo.PeerUploadOnly = true
	all := append(slices.Clone(peers), seed, uo)
	held := map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true}
	var st offerState
	t0 := time.Unix(1000, 0)

	show := planOffer(&st, n, all, held, t0)
	if len(show) != len(peers) {
		t.Fatalf("planned for %d peers, want the %d leechers only", len(show), len(peers))
	}
	want := [][]int{{0, 2, 4}, {0, 2, 4}, {1, 3, 5}, {1, 3, 5}}
	for i, p := range peers {
		if got := shownList(show, p); !slices.Equal(got, want[i]) {
			t.Errorf("leecher %d shown %v, want %v", i, got, want[i])
		}
	}

	// What was shown is advertised; leechers 0 and 1 fetched piece 0, and
	// leecher 0 piece 2.
	for i := range peers {
		for _, p := range want[i] {
			peers[i].Advertised.Set(p)
		}
	}
	peers[0].Have.Set(0)
	peers[1].Have.Set(0)
	peers[0].Have.Set(2)
	show = planOffer(&st, n, peers, held, t0.Add(time.Second))
	// Piece 2, held by one leecher and fresh, is topped up to offerFirst
	// lacking leechers shown it: leecher 1 and one more.
	two := 0
	for _, i := range []int{2, 3} {
		if !show[peers[i].Remote.String()][0] {
			t.Errorf("leecher %d not shown piece 0, held by two leechers: %v", i, shownList(show, peers[i]))
		}
		if show[peers[i].Remote.String()][2] {
			two++
		}
	}
	if two != 1 {
		t.Errorf("piece 2 newly shown to %d of leechers 2 and 3, want 1", two)
	}

	// Past offerWait every lacking leecher is shown every piece.
	show = planOffer(&st, n, peers, held, t0.Add(offerWait+time.Second))
	for i, p := range peers {
		for piece := range held {
			if got := show[p.Remote.String()][piece]; got == p.HasPiece(piece) {
				t.Errorf("after offerWait leecher %d shown %d = %v, holding it %v", i, piece, got, p.HasPiece(piece))
			}
		}
	}
}

// Ensure no leecher is left idle by the order: with more leechers than
// fresh pieces can go round, each is still shown offerMin pieces it lacks.
func TestPlanOfferNoIdlePeer(t *testing.T) {
	var peers []wire.PeerState
	for i := range 8 {
		peers = append(peers, offerPeer(i, int64(100-i)))
	}
	held := map[int]bool{0: true, 1: true, 2: true}
	var st offerState
	show := planOffer(&st, 16, peers, held, time.Unix(1000, 0))
	for i, p := range peers {
		if got := len(show[p.Remote.String()]); got < offerMin {
			t.Errorf("leecher %d shown %d pieces, want at least %d", i, got, offerMin)
		}
	}
	// A piece nobody was shown first is still shown first to two.
	firsts := map[int]int{}
	for _, p := range peers[:2] {
		for piece := range show[p.Remote.String()] {
			firsts[piece]++
		}
	}
	if fmt.Sprint(firsts) != "map[0:2 1:2]" {
		t.Errorf("the two best leechers were shown %v, want pieces 0 and 1 each", firsts)
	}
}
