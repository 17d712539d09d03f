package repeater

import (
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/btslave/btslave/repeater/wire"
)

// masterLink is what a swarm knows of the master it helps: the owner's
// client (or a friend's) that it fetches pieces for.
type masterLink struct {
	addr netip.AddrPort

	mu     sync.Mutex
	pinned map[int]bool // pieces pinned in the cache until the master has them
	// told is the master's bitfield as its own API reports it (BEP 3
	// order): clients suppress HAVEs for pieces the peer has (we sent them
	// the piece), so the wire alone never sees those arrive. busy are the
	// pieces its API says it is downloading (nil when it does not say).
	told, busy []byte
	// upBase/downBase carry the master's counters over closed connections;
	// lastUp/lastDown are the open one's.
	upBase, downBase, lastUp, lastDown int64
	stats                              MasterStats
	// budget is how many new pieces the last round allowed under the
	// give-back rule (fetchBudget); negative: no limit.
	budget int
	// connected says the last round saw the master's connection; drops
	// counts the connections lost while the master was incomplete.
	connected bool
	drops     int
	// share, of shares: the helpers of one master split its pieces, piece
	// p being this swarm's first when p % shares == share (SetMasterShare).
	share, shares int
	// window holds (time, from swarm, to swarm) samples of the last
	// minute, for the give-back rule (owes).
	window []flowSample
	// lenient: the give-back rule is off (SetMasterGiveBack).
	lenient bool
	// paced are the swarm connections whose upload is capped so that half
	// the upload cap stays free for the master, with their cap.
	paced map[*wire.Conn]int64
	// sent is the payload sent to the master per piece, per connection
	// to it (the last count of each, closed ones kept).
	sent map[*wire.Conn]map[int]int64
	// brought, displaced: MasterStats.Brought and Displaced.
	brought, displaced int
	// judge: pieces unpinned as the master has them, to count next round.
	judge []int
}

// sentOf is the payload of piece p sent to the master so far.
func (m *masterLink) sentOf(p int) int64 {
	var n int64
	for _, per := range m.sent {
		n += per[p]
	}
	return n
}

type flowSample struct {
	at       time.Time
	from, to int64
}

// giveBackWindow is the span over which a helper must give the swarm at
// least what it took: BTSlave's "forward as much data to the torrent as
// it gets".
const giveBackWindow = time.Minute

// excess records a sample and returns what, over the last minute, the
// swarm gave us beyond what we gave it (negative: we gave more).
func (m *masterLink) excess(now time.Time, from, to int64) int64 {
	m.window = append(m.window, flowSample{now, from, to})
	i := 0
	for i < len(m.window)-1 && now.Sub(m.window[i+1].at) >= giveBackWindow {
		i++
	}
	m.window = m.window[i:]
	first := m.window[0]
	return (from - first.from) - (to - first.to)
}

// fetchBudget is how many new pieces may be started when what has been
// taken beyond what was given is excess and slack is what may be owed:
// what the pieces in flight and the excess leave of the slack, in whole
// pieces of perPiece bytes each. A helper calls it with its minute's
// excess under the give-back rule; a free repeater with its visit's, the
// slack being the visit's credit (visitBudget). Counting the pieces in
// flight as taken keeps the total within the slack: judged on what has
// arrived alone, a helper that had asked the seed for a dozen pieces at
// once took them all and owed the swarm four pieces past the slack once
// the leechers no longer wanted them (TestInteropMasterDirection failed
// so in about a third of its runs).
// A piece costs more than its length (fetchCost).
func fetchBudget(excess int64, pending int, perPiece, slack int64) int {
	left := slack - excess - int64(pending)*perPiece
	if left <= 0 || perPiece <= 0 {
		return 0
	}
	return int(left / perPiece)
}

// chunkSize is the size of the library's requests (anacrolix's default
// ChunkSize, which the client keeps).
const chunkSize = 16 << 10

// fetchCost is what fetching one piece takes from the swarm: its length
// and the redundant blocks that come with it, at this swarm's mean so far
// (wasted chunks per piece verified; one chunk before the first). The
// library steals a request from a slow peer for a faster one and cancels
// it, and a block already on its way arrives twice: in the CI direction
// test 6-10 blocks in 6-11 pieces, and counting pieces at their length
// alone the helper ended 2 blocks past its slack in about one run in four.
func fetchCost(pieceLen, wastedChunks, goodPieces int64) int64 {
	if goodPieces <= 0 {
		return pieceLen + chunkSize
	}
	return pieceLen + (wastedChunks*chunkSize+goodPieces-1)/goodPieces
}

// MasterStats is a helped master's view from one swarm.
type MasterStats struct {
	Addr      netip.AddrPort
	Connected bool
	// Pieces the master has of NumPieces, from its bitfield and HAVEs.
	Pieces, NumPieces int
	// ToMaster is the payload sent to the master; FromSwarm and ToSwarm
	// what the other peers sent us and got from us, over open and closed
	// connections.
	ToMaster, FromSwarm, ToSwarm int64
	// FromMaster is what the master sent us.
	FromMaster int64
	// Wanted is how many pieces the master lacks that the swarm has and
	// we are fetching or hold for it; Pinned how many are pinned.
	Wanted, Pinned int
	// Drops counts the times the connection to the master was lost
	// (closed, or replaced by a new one) while the master still lacked
	// pieces: a helper that behaves keeps one connection throughout.
	Drops int
	// Brought counts the pieces pinned for the master that it then had
	// with at least half of it sent by us; Displaced those it had from
	// another peer first (we fetched them, or began to, in vain for it).
	Brought, Displaced int
	// Owes: over the last minute the swarm gave us more than we gave it,
	// so nothing new is fetched (for the master or the swarm) until we have
	// given back.
	Owes bool
}

// track carries the master's counters over a round: connected tells
// whether its connection is open, up and down that connection's payload
// counters. A connection gone, or a new one (its counters restarted), is a
// drop unless the master had every piece at the last round.
func (m *masterLink) track(connected bool, up, down int64) {
	lost := m.connected && (!connected || up < m.lastUp || down < m.lastDown)
	if lost && !m.stats.Complete() {
		m.drops++
	}
	if !connected || up < m.lastUp || down < m.lastDown {
		m.upBase, m.downBase = m.upBase+m.lastUp, m.downBase+m.lastDown
		m.lastUp, m.lastDown = 0, 0
	}
	if connected {
		m.lastUp, m.lastDown = up, down
	}
	m.connected = connected
}

// Complete says whether the master has every piece.
func (m MasterStats) Complete() bool { return m.NumPieces > 0 && m.Pieces >= m.NumPieces }

// SetMaster makes the swarm help the master at addr: it dials it and
// keeps dialling it when the connection drops, fetches the pieces the
// master lacks before anything else (the commonest among the leechers
// first, as the master asks for the rarest itself; never one the master
// has), pins them until the master has them and does not say
// upload_only while it wants pieces. The zero addr stops helping.
func (s *Swarm) SetMaster(addr netip.AddrPort) {
	s.mu.Lock()
	old := s.masterLink
	if !addr.IsValid() {
		s.masterLink = nil
	} else if old == nil || old.addr != addr {
		s.masterLink = &masterLink{addr: addr, pinned: map[int]bool{}, budget: -1}
	}
	cur := s.masterLink
	s.mu.Unlock()
	if old != nil && old != cur {
		old.unpinAll(s)
	}
	if cur != nil && cur != old {
		s.AddPeers([]torrent.PeerInfo{{Addr: net.TCPAddrFromAddrPort(addr), Trusted: true}})
	}
	if cur == nil {
		s.SetPartialSeed(true)
	}
}

// SetMasterShare says that this helper is number share of shares helpers
// of the same master: it fetches the pieces p with p % shares == share
// first and the others only when it has none of its own to fetch, so that
// two helpers seldom bring the master the same piece.
func (s *Swarm) SetMasterShare(share, shares int) {
	s.mu.Lock()
	m := s.masterLink
	s.mu.Unlock()
	if m == nil || shares < 1 || share < 0 || share >= shares {
		return
	}
	m.mu.Lock()
	m.share, m.shares = share, shares
	m.mu.Unlock()
}

// SetMasterGiveBack turns the give-back rule on (the default) or off: on,
// nothing new is fetched (for the master or the swarm) while, over the
// last minute, the swarm gave us more than two pieces beyond what we gave
// it.
func (s *Swarm) SetMasterGiveBack(on bool) {
	s.mu.Lock()
	m := s.masterLink
	s.mu.Unlock()
	if m != nil {
		m.mu.Lock()
		m.lenient = !on
		m.mu.Unlock()
	}
}

// MasterHas tells the swarm the master's bitfield from the master's own
// API (BEP 3 order), and the pieces it is downloading now (nil when the
// API does not say); a nil bits keeps the last ones.
func (s *Swarm) MasterHas(bits, downloading []byte) {
	s.mu.Lock()
	m := s.masterLink
	s.mu.Unlock()
	if m == nil || bits == nil {
		return
	}
	m.mu.Lock()
	m.told = append(m.told[:0], bits...)
	m.busy = append(m.busy[:0], downloading...)
	m.mu.Unlock()
}

func (m *masterLink) toldHas(i int) bool { return bitSet(m.told, i) }

// bitSet says whether bit i of a BEP 3 bitfield is set.
func bitSet(bits []byte, i int) bool {
	return i/8 < len(bits) && bits[i/8]&(0x80>>(i%8)) != 0
}

// Master is what the swarm knows of the master it helps; ok is false when
// it helps none.
func (s *Swarm) Master() (MasterStats, bool) {
	s.mu.Lock()
	m := s.masterLink
	s.mu.Unlock()
	if m == nil {
		return MasterStats{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats, true
}

// MasterPieces returns the payload sent to the master per piece, over
// every connection to it (counted from the first round that saw each):
// two helpers of one master that both sent bytes of a piece overlapped.
func (s *Swarm) MasterPieces() map[int]int64 {
	s.mu.Lock()
	m := s.masterLink
	s.mu.Unlock()
	out := map[int]int64{}
	if m == nil {
		return out
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, per := range m.sent {
		for p, n := range per {
			out[p] += n
		}
	}
	return out
}

func (m *masterLink) unpinAll(s *Swarm) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.pinned {
		s.r.cache.Unpin(s.ih, p)
	}
	clear(m.pinned)
}

// isMaster matches a connection to the master: by address and port when
// we dialled it, by address when it dialled us.
func isMaster(p *wire.PeerState, addr netip.AddrPort) bool {
	ra, ok := p.Remote.(*net.TCPAddr)
	if !ok {
		return false
	}
	ap := ra.AddrPort()
	return ap.Addr().Unmap() == addr.Addr().Unmap()
}

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
