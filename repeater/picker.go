package repeater

import (
	"sort"
	"time"

	"github.com/btslave/btslave/repeater/wire"
)

// demand is what the connected peers say about each piece.
type demand struct {
	want        []int // peers that lack the piece and may download it
	have        []int // peers that hold it: where we can fetch it from
	peers       int   // peers counted
	downloaders int   // peers that lack something and may download it
	sources     int   // peers that unchoke us and hold something
}

// measureDemand tallies the peers' bitfields. Peers that told us they are
// upload-only (BEP 21) want nothing, whatever they lack.
func measureDemand(n int, peers []wire.PeerState) demand {
	d := demand{want: make([]int, n), have: make([]int, n)}
	for i := range peers {
		p := &peers[i]
		d.peers++
		if !p.PeerChoking && (p.HaveAll || p.Have.Count() > 0) {
			d.sources++
		}
		lacks := false
		for j := 0; j < n; j++ {
			switch {
			case p.HasPiece(j):
				d.have[j]++
			case !p.PeerUploadOnly:
				d.want[j]++
				lacks = true
			}
		}
		if lacks {
			d.downloaders++
		}
	}
	return d
}

// fetchSources counts the peers that unchoke us and hold a piece we could
// fetch now: one we lack that at least threshold peers want. Peers that
// unchoke us with nothing of the kind (leechers we are interested in for
// later, wire.Conn.HoldInterest) are no source for this round's pieces:
// counting them put seven pieces in flight at once from one seed that gave
// us 90 KiB/s, each took 20 s, and the leechers got them elsewhere
// meanwhile (issue #9).
func fetchSources(peers []wire.PeerState, d demand, held map[int]bool, threshold int) int {
	n := 0
	for i := range peers {
		p := &peers[i]
		if p.PeerChoking {
			continue
		}
		for j, w := range d.want {
			if w >= threshold && !held[j] && p.HasPiece(j) {
				n++
				break
			}
		}
	}
	return n
}

// planInput is one round's view of a swarm.
type planInput struct {
	demand    demand
	fetchWant []int        // want for fetch decisions (progress.go); nil: demand.want
	held      map[int]bool // complete pieces in the cache
	pending   map[int]bool // pieces we asked the client to fetch
	capacity  int          // pieces the swarm's cache share can hold
	inflight  int          // most pieces fetched at once
	threshold int          // peers that must want a piece before we fetch it
	quiet     bool         // fetch nothing new (a kept swarm a leave rule holds for)
}

// plan is what to change this round.
type plan struct {
	fetch []int // start fetching
	// starved is set when qualifying pieces were left for want of a fetch
	// slot: intake, not demand, is what limits us.
	starved bool
	cancel  []int // stop fetching: nobody wants them any more
	evict   []int // drop from the cache: nobody connected wants them
}

func wantOf(d demand, p int) int {
	if p < len(d.want) {
		return d.want[p]
	}
	return 0
}

// makePlan picks pieces to fetch — wanted by at least threshold peers,
// most wanted first, then rarest among the peers that have them — and
// pieces to evict to make room: those no connected peer wants.
func makePlan(in planInput) plan {
	var out plan
	d := in.demand
	// A piece under way is cancelled only when nobody wants it any more:
	// its bytes are already paid for, and one peer served still returns
	// them, while a cancelled half-piece returns nothing.
	for p := range in.pending {
		if p < len(d.want) && d.want[p] == 0 {
			out.cancel = append(out.cancel, p)
		}
	}
	sort.Ints(out.cancel)
	pending := len(in.pending) - len(out.cancel)

	fw := in.fetchWant
	if fw == nil {
		fw = d.want
	}
	var cands []int
	for p := 0; p < len(fw) && !in.quiet; p++ {
		if fw[p] >= in.threshold && d.have[p] > 0 && !in.held[p] && !in.pending[p] {
			cands = append(cands, p)
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if fw[a] != fw[b] {
			return fw[a] > fw[b]
		}
		if d.have[a] != d.have[b] {
			return d.have[a] < d.have[b]
		}
		return a < b
	})
	// Room: what we hold plus what is coming must fit the share. A
	// candidate goes into free room first, then in place of a held piece
	// nobody wants, then in place of the least wanted held piece if it is
	// wanted by more peers; otherwise it waits. Fetching into a full cache
	// of wanted pieces would only make the cache evict one of them, to be
	// fetched again: all download, no upload.
	free := in.capacity - len(in.held) - pending
	var victims []int // held pieces, least wanted first
	for p := range in.held {
		victims = append(victims, p)
	}
	sort.Slice(victims, func(i, j int) bool {
		a, b := victims[i], victims[j]
		if wa, wb := wantOf(d, a), wantOf(d, b); wa != wb {
			return wa < wb
		}
		return a < b
	})
	// Keep one piece: a torrent that holds nothing and wants nothing makes
	// no connections, and without peers there is no demand.
	if len(victims) > 0 {
		victims = victims[:len(victims)-1]
	}
	slots := in.inflight - pending
	for _, c := range cands {
		if slots <= 0 {
			out.starved = true
			break
		}
		if free > 0 {
			free--
		} else if len(victims) > 0 && wantOf(d, victims[0]) < fw[c] {
			out.evict = append(out.evict, victims[0])
			victims = victims[1:]
		} else {
			break // candidates come most wanted first: none after will fit
		}
		out.fetch = append(out.fetch, c)
		slots--
	}
	// Over the share already (the share shrank, or pieces arrived): drop
	// pieces nobody wants.
	for free < 0 && len(victims) > 0 && wantOf(d, victims[0]) == 0 {
		out.evict = append(out.evict, victims[0])
		victims = victims[1:]
		free++
	}
	sort.Ints(out.evict)
	return out
}

// adaptThreshold moves the fetch threshold — how many connected peers must
// want a piece before we fetch it — one step per sample. Below the target
// ratio it rises: only pieces more peers want can lift the ratio, since a
// piece fetched for n peers returns at most n. At or above the target,
// with the upload idle and fetch slots to spare (not starved), it falls,
// so that upload capacity is not wasted while demand exists. It stays
// within [1, downloaders]. cap 0 means unlimited, where the upload is
// never idle.
//
// The target is what the swarm allows: a piece fetched for n peers
// returns at most n uploads, so with few downloaders the target ratio may
// be out of reach, and chasing it only pinned the threshold at "every
// downloader lacks it" and stalled intake for tens of seconds (three
// leechers, target 4). It aims at three quarters of the downloaders at
// most, never under 1.
//
// Nor does it fall below that aim (rounded down): a piece fewer peers want
// cannot return it. An idle upload pulled the threshold to 1 or 2 as the
// crowd neared its end, and the pieces fetched then went out once each:
// in a crowd of six leechers, a third of the pieces the repeater fetched
// were sent once, a quarter six times, and the ratio fell to 2.5 (issue
// #9). A piece fetched for one peer only moves a copy the swarm could have
// sent that peer directly.
//
// Nor does it rise above top, the most peers that want a piece we could
// fetch now (0: none): a threshold no such piece meets fetches nothing
// while peers still lack pieces we could bring. Below the target the
// threshold climbed to "every downloader lacks it" while the fast leechers
// held nearly everything and the slow ones starved: the repeater fetched
// nothing for 15 s, the slow leechers had nothing from anyone, and its
// upload fell to a tenth of its cap (issue #9, qBittorrent seed with
// Transmission leechers).
func adaptThreshold(cur int, ratio, target float64, rate, cap float64, downloaders, top int, starved bool) int {
	idle := cap > 0 && rate < 0.5*cap
	target = effectiveTarget(target, downloaders)
	switch {
	case ratio < target:
		cur++
	case idle && !starved:
		cur--
	}
	hi := max(downloaders, 1)
	if top > 0 {
		hi = min(hi, top)
	}
	return max(int(target), 1, min(cur, hi))
}

// topWant is the most peers that want a piece we lack and some peer
// holds: the highest threshold any piece we could fetch meets.
func topWant(d demand, held map[int]bool) int {
	top := 0
	for p, w := range d.want {
		if w > top && !held[p] && d.have[p] > 0 {
			top = w
		}
	}
	return top
}

// visitCredit is what a free repeater may take from a swarm beyond what
// it gave it, age after the swarm first had a downloader: two pieces, at
// least 1 MiB, at first, enough to hold something to offer before anyone
// has taken anything; shrinking to nothing at creditSpan. A repeater
// that takes more than it gives harms the swarm, and issue #9 asks for a
// ratio never below 1 past the first minute.
func visitCredit(pieceLen int64, age time.Duration) int64 {
	if age >= creditSpan {
		return 0
	}
	return int64(float64(startCredit(pieceLen)) * (1 - age.Seconds()/creditSpan.Seconds()))
}

// startCredit is what a visit may take before it has given anything: two
// pieces, at least 1 MiB, enough to hold something to offer.
func startCredit(pieceLen int64) int64 { return max(2*pieceLen, 1<<20) }

// creditSpan is how long the visit's credit lasts, shrinking.
const creditSpan = time.Minute

// visitBudget is how many new pieces a free repeater may start: what its
// upload over the visit, plus visitCredit, leaves after its download and
// the pieces in flight, in whole pieces. This is the one rule that holds
// whatever the swarm does: in the crowd matrix's qBittorrent/aria2 cells,
// a run in three or so has qBittorrent's seed keep us choked for 30 s,
// and we fetched pieces from aria2 leechers at their slot's 48 KiB/s
// (1 MiB pieces: 20 s each) that they all had by the time we could offer
// them: 4.4 MiB down for 0.9 up, ratio 0.19 at the end; with a credit
// that did not shrink, 0.75, the pieces fetched in the crowd's last 10 s
// on what the upload had earned. In the other runs the upload is two to
// four times the download and the rule never binds. (A bound at the
// target ratio instead of 1 starved the crowd's tail: docs/design.md,
// "Intake".) A helped swarm has the master's give-back rule instead, over
// each minute.
func visitBudget(up, down int64, pending int, pieceLen int64, age time.Duration) int {
	return fetchBudget(down-up, pending, pieceLen, visitCredit(pieceLen, age))
}

// intakeBudget is how many new pieces a free repeater whose upload is
// capped at upCap bytes/s (its share of the cap) may start so that its
// intake never outruns what that upload can return at the target ratio
// (as the threshold takes it: effectiveTarget): over the visit, age after
// the swarm first had a downloader, at most intakeSlack × upCap / target
// a second, plus two pieces (at least 1 MiB) to start with. -1: no cap,
// no ceiling. Issue #9 asks for intake derived from the cap and the target
// ratio, H / r. As the intake itself (docs/design.md, "Intake") it fetched
// more than the leechers took; as a ceiling it binds where the cap does: a
// helper capped at 256 KiB/s in qbittorrent/aria2/256 took 10.5 MiB for
// 14.0 given, ratio 1.36, its upload full, each byte it fetched taken from
// the seed or a leecher that could have sent it on instead.
func intakeBudget(down int64, pending int, pieceLen int64, age time.Duration, upCap, target float64) int {
	if upCap <= 0 || target <= 0 || noIntakeCeiling {
		return -1
	}
	allow := int64(intakeSlack * upCap / target * age.Seconds())
	return fetchBudget(down-allow, pending, pieceLen, startCredit(pieceLen))
}

// intakeSlack is how far above H / r the intake may run. 1.5 gave ratios
// of 1.9 where 1 gave 2.1–2.7 at the same crowd speed (docs/design.md); a
// variable for the benchmarks' comparisons, as noIntakeCeiling turns the
// ceiling off.
var (
	intakeSlack     = 1.0
	noIntakeCeiling bool
)

// effectiveTarget is the ratio a swarm of downloaders allows: the target,
// at most three quarters of the downloaders (a piece fetched for few can
// go out only so often), at least 1.
func effectiveTarget(target float64, downloaders int) float64 {
	return min(target, max(1, 0.75*float64(downloaders)))
}
