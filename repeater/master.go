package repeater

import (
	"net"
	"net/netip"
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
