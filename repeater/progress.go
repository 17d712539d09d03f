package repeater

import (
	"time"

	"github.com/btslave/btslave/repeater/wire"
)

// progress follows how fast each connected peer completes pieces, from its
// bitfield and HAVEs, so that a fetch decision counts a peer's want only
// as far as the peer will still lack the piece when we can deliver it.
type progress struct {
	peers map[string]*peerProgress
}

type peerProgress struct {
	samples []progressSample // oldest first, the last progressSpan
	seen    time.Time        // last round it was connected
}

type progressSample struct {
	at    time.Time
	count int
}

// progressSpan is how far back a peer's rate is measured.
const progressSpan = 10 * time.Second

// observe records each peer's piece count at now and forgets peers gone.
func (g *progress) observe(n int, peers []wire.PeerState, now time.Time) {
	if g.peers == nil {
		g.peers = map[string]*peerProgress{}
	}
	for i := range peers {
		p := &peers[i]
		k := peerKey(p)
		pp := g.peers[k]
		if pp == nil {
			pp = &peerProgress{}
			g.peers[k] = pp
		}
		c := n
		if !p.HaveAll {
			c = p.Have.Count()
		}
		pp.samples = append(pp.samples, progressSample{now, c})
		for len(pp.samples) > 2 && now.Sub(pp.samples[1].at) >= progressSpan {
			pp.samples = pp.samples[1:]
		}
		pp.seen = now
	}
	for k, pp := range g.peers {
		if pp.seen != now {
			delete(g.peers, k)
		}
	}
}

// rate is the peer's pieces per second over the span, 0 until two samples
// a second apart.
func (g *progress) rate(p *wire.PeerState) float64 {
	pp := g.peers[peerKey(p)]
	if pp == nil || len(pp.samples) < 2 {
		return 0
	}
	a, b := pp.samples[0], pp.samples[len(pp.samples)-1]
	dt := b.at.Sub(a.at).Seconds()
	if dt < 1 || b.count <= a.count {
		return 0
	}
	return float64(b.count-a.count) / dt
}

// peerKey names a connection, as the offer order does (planOffer).
func peerKey(p *wire.PeerState) string { return p.Remote.String() }

// fetchWant is each piece's want weighted by the chance that the peer
// still lacks it when a piece fetched now reaches it, deliver from now: a
// peer missing m pieces that completes r a second gets about r·deliver of
// them meanwhile, from others, so each piece it lacks is still lacking
// with chance 1 − r·deliver/m. A peer about to finish counts for nothing:
// pieces fetched for it arrive after it has them, and return nothing
// (issue #9: the ratio lost in each crowd's last seconds). Rounded to the
// nearest peer, never above the plain count.
func (g *progress) fetchWant(n int, peers []wire.PeerState, d demand, deliver time.Duration) []int {
	if deliver <= 0 {
		return d.want
	}
	w := make([]float64, n)
	for i := range peers {
		p := &peers[i]
		if p.PeerUploadOnly || p.HaveAll {
			continue
		}
		missing := n - p.Have.Count()
		if missing <= 0 {
			continue
		}
		weight := 1 - g.rate(p)*deliver.Seconds()/float64(missing)
		if weight <= 0 {
			continue
		}
		weight = min(weight, 1)
		for j := 0; j < n; j++ {
			if !p.Have.Has(j) {
				w[j] += weight
			}
		}
	}
	out := make([]int, n)
	for j := range out {
		out[j] = min(int(w[j]+0.5), d.want[j])
	}
	return out
}

// deliverTime is how long a piece started now takes to reach peers: the
// pieces ahead of it and itself at the measured download rate, plus a
// second for the offer. 0 (count every want in full) before any rate is
// measured. The rate counts as at least a piece in maxPieceTime: a rate
// measured while we fetched little says little about what a source gives,
// and a low one would discount every want, fetch nothing, and so keep
// the rate low.
func deliverTime(pieceLen int64, pending int, downRate float64) time.Duration {
	if downRate <= 0 {
		return 0
	}
	downRate = max(downRate, float64(pieceLen)/maxPieceTime.Seconds())
	return time.Duration((float64(pieceLen)*float64(pending+1)/downRate + 1) * float64(time.Second))
}

// maxPieceTime is the longest a piece is taken to arrive in deliverTime.
const maxPieceTime = 8 * time.Second
