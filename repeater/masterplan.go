package repeater

import (
	"net"
	"sort"
	"time"

	"github.com/btslave/btslave/repeater/wire"
)

// Each round's plan for the master: what it lacks comes first, within
// what the give-back rule allows.

// masterRound looks at the master's connection and returns the pieces to
// fetch for it, in masterOrder: those it lacks that another peer has and we
// neither hold nor fetch. It updates pins and stats. peers excludes the
// master afterwards, so that the swarm's own demand does not count it twice.
func (s *Swarm) masterRound(n int, peers []wire.PeerState, held, pending map[int]bool) (fetch []int, rest []wire.PeerState) {
	s.mu.Lock()
	m := s.masterLink
	s.mu.Unlock()
	if m == nil {
		return nil, peers
	}
	var mp *wire.PeerState
	st := MasterStats{Addr: m.addr, NumPieces: n}
	rest = peers[:0:0]
	for i := range peers {
		if mp == nil && isMaster(&peers[i], m.addr) {
			mp = &peers[i]
			continue
		}
		rest = append(rest, peers[i])
	}
	tot := s.r.client.Wire.Totals(s.ih)
	lib := s.t.Stats() // the client's lock: taken before m.mu
	m.mu.Lock()
	defer m.mu.Unlock()
	if mp != nil {
		m.track(true, mp.BytesUp, mp.BytesDown)
	} else {
		m.track(false, 0, 0)
	}
	st.Drops = m.drops
	pieceLen := s.t.Info().PieceLength
	// The pieces the master got since the round before last, judged on
	// the payload sent as of the last round's end (reserveForMaster).
	for _, j := range m.judge {
		if m.sentOf(j) >= pieceLen/2 {
			m.brought++
		} else {
			m.displaced++
		}
	}
	m.judge = m.judge[:0]
	st.Brought, st.Displaced = m.brought, m.displaced
	st.ToMaster = m.upBase + m.lastUp
	st.FromMaster = m.downBase + m.lastDown
	st.FromSwarm = max(0, tot.BytesDown-st.FromMaster)
	st.ToSwarm = max(0, tot.BytesUp-st.ToMaster)
	// The give-back rule holds whether or not the master is connected:
	// without it the swarm's own plan fetches, and takes from the swarm
	// all the same. Owing (an excess past the slack) leaves no budget.
	ex := m.excess(time.Now(), st.FromSwarm, st.ToSwarm)
	st.Owes = ex > 2*pieceLen && !m.lenient
	m.budget = -1
	if !m.lenient {
		cost := fetchCost(pieceLen, lib.ChunksReadWasted.Int64(), lib.PiecesDirtiedGood.Int64())
		m.budget = fetchBudget(ex, len(pending), cost, 2*pieceLen)
	}
	if mp == nil {
		st.Pinned = len(m.pinned)
		for j := 0; j < n; j++ {
			if m.toldHas(j) {
				st.Pieces++
			}
		}
		m.stats = st
		return nil, rest
	}
	st.Connected = true
	// have counts the peers holding each piece, leech those of them that
	// are not seeds.
	have, leech := make([]int, n), make([]int, n)
	leechers := 0
	for i := range rest {
		seed := rest[i].Seed(n)
		if !seed {
			leechers++
		}
		for j := 0; j < n; j++ {
			if rest[i].HasPiece(j) {
				have[j]++
				if !seed {
					leech[j]++
				}
			}
		}
	}
	var lacks []int
	for j := 0; j < n; j++ {
		if mp.HasPiece(j) || m.toldHas(j) {
			st.Pieces++
			if m.pinned[j] {
				s.r.cache.Unpin(s.ih, j)
				delete(m.pinned, j)
				m.judge = append(m.judge, j)
			}
			continue
		}
		if held[j] || pending[j] {
			st.Wanted++
			if !m.pinned[j] && s.r.cache.Pin(s.ih, j) == nil {
				m.pinned[j] = true
			}
			continue
		}
		if have[j] > 0 {
			lacks = append(lacks, j)
		}
	}
	lacks = ownFirst(busyLast(masterOrder(lacks, have, leech, leechers), m.busy), m.share, m.shares)
	// The budget holds when the master wants nothing we can bring too:
	// the swarm's own plan then fetches, and a piece it takes just as the
	// last leechers finish is one it cannot give back. A repeater that
	// gives more than it takes has a large budget.
	if m.budget == 0 {
		lacks = nil
	}
	st.Pinned = len(m.pinned)
	m.stats = st
	// An honest downloader while the master wants pieces we can bring.
	s.SetPartialSeed(st.Wanted == 0 && len(lacks) == 0)
	s.reserveForMaster(m, rest, st.Wanted > 0 || len(lacks) > 0)
	return lacks, rest
}

// masterOrder orders the pieces the master lacks for fetching: first
// those a connected leecher lacks too, so that we can give the swarm back
// what we take for them, and among those the ones the most leechers hold;
// then the same among the rest. leechers is how many connected peers are
// not seeds.
//
// A master picks rarest first (Transmission and libtorrent do, by its own
// peers' bitfields): a piece few hold is the one it asks its leechers for
// next, and a helper that fetched the rarest first raced it and lost (in
// the flash-crowd bench the master had 38 of the 76 pieces the helper
// pinned for it from another peer first; 21-25 of 86 now). The piece most
// leechers hold is the one the master asks for last, and we get it
// soonest: many peers can give it. But a piece every leecher holds is one
// nobody takes from us, and the give-back rule then stops the helper (in
// the CI direction test it sat idle for 20 s with four such pieces). At a
// crowd's start, when no leecher holds anything, it is whatever the seed
// gives, which the master cannot have from anyone else.
func masterOrder(lacks, have, leech []int, leechers int) []int {
	sort.SliceStable(lacks, func(a, b int) bool {
		pa, pb := lacks[a], lacks[b]
		if wa, wb := leech[pa] < leechers, leech[pb] < leechers; wa != wb {
			return wa
		}
		if leech[pa] != leech[pb] {
			return leech[pa] > leech[pb]
		}
		return have[pa] > have[pb]
	})
	return lacks
}

// busyLast moves the pieces the master says it is downloading (busy, a
// BEP 3 bitfield; nil: it does not say) behind the others, in their
// order: the master is getting those from another peer already, and a
// helper that fetched them raced it. In the 128 MiB flash crowd with a
// qBittorrent master and two helpers, the master had from another peer
// first 53 of the 184 and 58 of the 177 pieces they pinned for it; with
// these last, 31 of 205 and 30 of 192, and they sent it 84 MiB against 62.
// Transmission's RPC does not say, so with it nothing changes.
func busyLast(pieces []int, busy []byte) []int {
	if len(busy) == 0 {
		return pieces
	}
	out := make([]int, 0, len(pieces))
	var later []int
	for _, p := range pieces {
		if bitSet(busy, p) {
			later = append(later, p)
		} else {
			out = append(out, p)
		}
	}
	return append(out, later...)
}

// mergeMasterFirst fetches the master's pieces instead of the plan's,
// within the in-flight budget, and keeps the master's pieces out of
// evictions. While the master lacks pieces we can bring, the swarm's own
// plan fetches nothing: the give-back rule lets a helper take from the
// swarm only what it gives it, and every piece taken for the swarm alone
// is one fewer for the master (in the 32 MiB bench the helper took 30 MiB,
// forwarded 15 to the master, then owed the swarm and brought the master
// nothing for 30 s). The swarm still gets the master's pieces from us:
// the crowd lacks them too.
func mergeMasterFirst(pl plan, forMaster []int, slots int, masterLacks func(int) bool) plan {
	if len(forMaster) == 0 && masterLacks == nil {
		return pl
	}
	seen := map[int]bool{}
	var fetch []int
	swarm := pl.fetch
	if len(forMaster) > 0 {
		swarm = nil
	}
	for _, p := range append(forMaster, swarm...) {
		if len(fetch) >= slots {
			break
		}
		if !seen[p] {
			seen[p] = true
			fetch = append(fetch, p)
		}
	}
	pl.fetch = fetch
	if masterLacks != nil {
		kept := pl.evict[:0]
		for _, p := range pl.evict {
			if !masterLacks(p) {
				kept = append(kept, p)
			}
		}
		pl.evict = kept
		cancel := pl.cancel[:0]
		for _, p := range pl.cancel {
			if !masterLacks(p) {
				cancel = append(cancel, p)
			}
		}
		pl.cancel = cancel
	}
	return pl
}

// masterFirst applies mergeMasterFirst with the master's current view.
func (s *Swarm) masterFirst(pl plan, forMaster []int, slots int) plan {
	s.mu.Lock()
	m := s.masterLink
	s.mu.Unlock()
	if m == nil {
		return pl
	}
	m.mu.Lock()
	pinned := make(map[int]bool, len(m.pinned))
	for p := range m.pinned {
		pinned[p] = true
	}
	m.mu.Unlock()
	return mergeMasterFirst(pl, forMaster, max(slots, len(pl.fetch), min(len(forMaster), 4)), func(p int) bool { return pinned[p] })
}

// masterBudget is the helper's budget of new pieces from the last round
// (fetchBudget); -1, no limit, when it helps no master or the give-back
// rule is off.
func (s *Swarm) masterBudget() int {
	s.mu.Lock()
	m := s.masterLink
	s.mu.Unlock()
	if m == nil {
		return -1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.budget
}

// whileOwing starts no more than budget new pieces (negative: no limit):
// the free repeater's visit budget (visitBudget), or a helper's. It keeps
// a helper that owes the swarm (the give-back rule) from fetching
// anything new, not only the master's pieces: what the swarm's
// own plan fetches is forwarded to the master as well, and in a swarm fed
// by a seed the other peers may get those pieces there first, so the
// helper would take without giving (fetchBudget leaves none while we
// owe). Evictions and cancels stand.
func whileOwing(pl plan, budget int) plan {
	if budget >= 0 && len(pl.fetch) > budget {
		pl.fetch = pl.fetch[:budget]
	}
	return pl
}

// ownFirst keeps this helper's share of the pieces (p % shares == share),
// in their order, or all of them when the share has none left: the other
// helpers' pieces are fetched only once ours are all under way or held.
func ownFirst(pieces []int, share, shares int) []int {
	if shares <= 1 {
		return pieces
	}
	var own []int
	for _, p := range pieces {
		if p%shares == share {
			own = append(own, p)
		}
	}
	if len(own) == 0 {
		return pieces
	}
	return own
}

// reserveForMaster is master-first pacing: while the master wants pieces
// and our upload is capped, the other peers share half the cap between
// the ones interested in us, so that the master's requests always find
// upload left (the physics of the issue: a helper that gives back what it
// takes adds at most U/2 to its master). Otherwise no connection is paced
// by the master rule. Called with m.mu held.
func (s *Swarm) reserveForMaster(m *masterLink, rest []wire.PeerState, on bool) {
	upCap := int64(s.r.upCap)
	if m.paced == nil {
		m.paced = map[*wire.Conn]int64{}
	}
	interested := 0
	for i := range rest {
		if rest[i].PeerInterested {
			interested++
		}
	}
	var per int64
	if on && upCap > 0 && interested > 0 {
		per = max(upCap/2/int64(interested), 16<<10)
	}
	conns := s.r.client.Wire.Conns(s.ih)
	open := make(map[*wire.Conn]bool, len(conns))
	for _, c := range conns {
		open[c] = true
	}
	for c := range m.paced {
		if !open[c] {
			delete(m.paced, c) // closed
		}
	}
	for _, c := range conns {
		ra, ok := c.RemoteAddr().(*net.TCPAddr)
		if ok && ra.AddrPort().Addr().Unmap() == m.addr.Addr().Unmap() {
			c.TrackSent(true)
			if m.sent == nil {
				m.sent = map[*wire.Conn]map[int]int64{}
			}
			m.sent[c] = c.SentPieces()
			continue
		}
		if m.paced[c] != per {
			c.SetUploadRate(per)
			if per == 0 {
				delete(m.paced, c)
			} else {
				m.paced[c] = per
			}
		}
	}
}
