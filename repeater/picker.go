package repeater

import (
	"sort"

	"github.com/btslave/btslave/repeater/wire"
)

// demand is what the connected peers say about each piece.
type demand struct {
	want  []int // peers that lack the piece and may download it
	have  []int // peers that hold it: where we can fetch it from
	peers int   // peers counted
}

// measureDemand tallies the peers' bitfields. Peers that told us they are
// upload-only (BEP 21) want nothing, whatever they lack.
func measureDemand(n int, peers []wire.PeerState) demand {
	d := demand{want: make([]int, n), have: make([]int, n)}
	for i := range peers {
		p := &peers[i]
		d.peers++
		for j := 0; j < n; j++ {
			switch {
			case p.HasPiece(j):
				d.have[j]++
			case !p.PeerUploadOnly:
				d.want[j]++
			}
		}
	}
	return d
}

// planInput is one round's view of a swarm.
type planInput struct {
	demand    demand
	held      map[int]bool // complete pieces in the cache
	pending   map[int]bool // pieces we asked the client to fetch
	capacity  int          // pieces the swarm's cache share can hold
	inflight  int          // most pieces fetched at once
	threshold int          // peers that must want a piece before we fetch it
}

// plan is what to change this round.
type plan struct {
	fetch  []int // start fetching
	cancel []int // stop fetching: nobody wants them any more
	evict  []int // drop from the cache: nobody connected wants them
}

// makePlan picks pieces to fetch — wanted by at least threshold peers,
// most wanted first, then rarest among the peers that have them — and
// pieces to evict to make room: those no connected peer wants.
func makePlan(in planInput) plan {
	var out plan
	d := in.demand
	for p := range in.pending {
		if p < len(d.want) && d.want[p] < in.threshold {
			out.cancel = append(out.cancel, p)
		}
	}
	sort.Ints(out.cancel)
	pending := len(in.pending) - len(out.cancel)

	var cands []int
	for p := range d.want {
		if d.want[p] >= in.threshold && d.have[p] > 0 && !in.held[p] && !in.pending[p] {
			cands = append(cands, p)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if d.want[a] != d.want[b] {
			return d.want[a] > d.want[b]
		}
		if d.have[a] != d.have[b] {
			return d.have[a] < d.have[b]
		}
		return a < b
	})
	slots := in.inflight - pending
	if slots > len(cands) {
		slots = len(cands)
	}
	if slots > 0 {
		out.fetch = cands[:slots]
	}

	// Room: what we hold plus what is coming must fit the share. Evict the
	// pieces nobody wants, least wanted first; pieces still wanted stay and
	// the cache's own LRU decides if it must.
	need := len(in.held) + pending + len(out.fetch) - in.capacity
	if need > 0 {
		var idle []int
		for p := range in.held {
			if p < len(d.want) && d.want[p] == 0 {
				idle = append(idle, p)
			}
		}
		sort.Ints(idle)
		if need > len(idle) {
			need = len(idle)
		}
		// Keep one piece: a torrent that holds nothing and wants nothing
		// makes no connections, and without peers there is no demand.
		if need == len(in.held) {
			need--
		}
		out.evict = idle[:need]
	}
	return out
}
