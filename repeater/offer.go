package repeater

import (
	"cmp"
	"net"
	"slices"
	"time"

	"github.com/btslave/btslave/repeater/wire"
)

// The offer order (issue #9): a fresh piece is shown first to a few
// leechers, which then have something to trade with the others, instead of
// to all at once (wire.Layer.Offer holds the library's HAVEs). Told at once,
// every leecher lacking the piece asks us for it at the same moment, each
// gets it at a fraction of our upload, and all of them hold it at about the
// same time, with nothing new to give each other meanwhile. The rest see
// it once it has spread, or after offerWait; and a peer is never left with
// fewer than offerMin pieces to ask us for while we hold more it lacks, so
// our upload does not idle for the order's sake.
const (
	// offerFirst is how many leechers lacking a fresh piece are shown it
	// at a time while it is fresh.
	offerFirst = 2
	// offerSpread is how many leechers (seeds aside) must hold a piece
	// before every peer is shown it.
	offerSpread = 2
	// offerWait bounds how long a piece stays fresh.
	offerWait = 4 * time.Second
	// offerMin is how many pieces it lacks a peer is shown at least, when
	// we hold them.
	offerMin = 2
)

// noOffer turns the offer order off (every HAVE at once, as the library
// sends them), for the benchmarks' comparisons.
var noOffer bool

// offerState is the offer order's memory: when each held piece was first
// shown to a peer that lacked it.
type offerState struct {
	firstShown map[int]time.Time
}

// offer plans which withheld pieces each connection is shown this round
// and applies the plan. peers are the round's connections, the master's
// aside; held are the pieces we hold.
func (s *Swarm) offer(peers []wire.PeerState, held map[int]bool, now time.Time) {
	n := s.t.NumPieces()
	show := planOffer(&s.offerSt, n, peers, held, now)
	s.r.client.Wire.Offer(s.ih, func(remote net.Addr, withheld []int) wire.OfferDecision {
		key := remote.String()
		if _, ok := show[key]; !ok { // the master, a seed, an upload-only peer, or one new this round
			return wire.OfferDecision{Withhold: false}
		}
		if noOffer { // every HAVE at once; the leecher's interest still kept
			return wire.OfferDecision{Withhold: false, KeepInterest: true}
		}
		var out []int
		for _, p := range withheld {
			if show[key][p] {
				out = append(out, p)
			}
		}
		return wire.OfferDecision{Withhold: true, Show: out, KeepInterest: true}
	})
}

// planOffer returns, per leecher (by remote address), the pieces to show
// it now. Peers missing from the result are not held to the order.
func planOffer(st *offerState, n int, peers []wire.PeerState, held map[int]bool, now time.Time) map[string]map[int]bool {
	if st.firstShown == nil {
		st.firstShown = map[int]time.Time{}
	}
	for p := range st.firstShown {
		if !held[p] {
			delete(st.firstShown, p)
		}
	}
	var leech []*wire.PeerState
	for i := range peers {
		p := &peers[i]
		if p.PeerUploadOnly || p.Seed(n) {
			continue
		}
		leech = append(leech, p)
	}
	show := make(map[string]map[int]bool, len(leech))
	for _, p := range leech {
		show[p.Remote.String()] = map[int]bool{}
	}
	// firsts counts, per leecher, the fresh pieces it is being shown
	// first and does not hold yet: the next fresh piece goes to another.
	firsts := map[string]int{}
	var freshList []int
	pieces := make([]int, 0, len(held))
	for p := range held {
		pieces = append(pieces, p)
	}
	slices.Sort(pieces)
	for _, p := range pieces {
		var lackers, shown []*wire.PeerState
		holders := 0
		for _, l := range leech {
			switch {
			case l.HasPiece(p):
				holders++
			case l.Advertised.Has(p):
				shown = append(shown, l)
				lackers = append(lackers, l)
			default:
				lackers = append(lackers, l)
			}
		}
		at, seen := st.firstShown[p]
		if !seen && (len(shown) > 0 || holders > 0) {
			at, seen = now, true // in a bitfield, or shown before we tracked it
			st.firstShown[p] = at
		}
		if holders >= offerSpread || len(lackers) <= offerFirst || (seen && now.Sub(at) >= offerWait) {
			for _, l := range lackers {
				show[l.Remote.String()][p] = true
			}
			continue
		}
		freshList = append(freshList, p)
		for _, l := range shown {
			firsts[l.Remote.String()]++
		}
	}
	// Fresh pieces, oldest first, each to the leechers that lack it and
	// are shown the fewest other fresh pieces, then those that gave us
	// most (they upload, and reciprocate).
	slices.SortStableFunc(freshList, func(a, b int) int {
		return st.firstShown[a].Compare(st.firstShown[b]) // then by index, as collected
	})
	for _, p := range freshList {
		var cand []*wire.PeerState
		shownNow := 0
		for _, l := range leech {
			switch {
			case l.HasPiece(p):
			case l.Advertised.Has(p):
				shownNow++
			default:
				cand = append(cand, l)
			}
		}
		slices.SortStableFunc(cand, func(a, b *wire.PeerState) int {
			return cmp.Or(cmp.Compare(firsts[a.Remote.String()], firsts[b.Remote.String()]), cmp.Compare(b.BytesDown, a.BytesDown))
		})
		for _, l := range cand[:max(0, min(len(cand), offerFirst-shownNow))] {
			k := l.Remote.String()
			show[k][p] = true
			firsts[k]++
			if _, ok := st.firstShown[p]; !ok {
				st.firstShown[p] = now
			}
		}
	}
	// Nobody idles on us for the order's sake: a leecher shown fewer than
	// offerMin pieces it lacks gets the oldest fresh ones it lacks.
	for _, l := range leech {
		k := l.Remote.String()
		open := len(show[k])
		for _, p := range pieces {
			if l.Advertised.Has(p) && !l.HasPiece(p) && !show[k][p] {
				open++
			}
		}
		for _, p := range freshList {
			if open >= offerMin {
				break
			}
			if !l.HasPiece(p) && !l.Advertised.Has(p) && !show[k][p] {
				show[k][p] = true
				open++
			}
		}
	}
	return show
}
