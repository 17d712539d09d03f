package tracker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"golang.org/x/net/ipv4"
)

// The livesync multicast group of opentracker's design notes, used only
// when SyncOptions.Multicast is set; packets to it have a TTL of 1.
var syncGroup = netip.AddrPortFrom(netip.AddrFrom4([4]byte{224, 0, 42, 5}), 9696)

// syncMaxSkew is how far an authenticated packet's sequence number (the
// sender's clock in nanoseconds) may be from ours.
const syncMaxSkew = 2 * time.Minute

// tellPacketsPerTick bounds the tell packets sent per tick (opentracker's
// LIVESYNC_OUTGOING_MAXPACKETS_SCRAPE).
const tellPacketsPerTick = 100

// SyncOptions configures tracker-to-tracker sync (docs/tracker-sync.md).
type SyncOptions struct {
	// Listen is the sync socket's address; packets are sent from it.
	Listen string
	// Peers are the other trackers of the sync group, sent every packet.
	// Without a Key only packets from these addresses (IP and port: a
	// tracker sends from its sync socket) are taken.
	Peers []netip.AddrPort
	// Key, when set, authenticates every packet with an HMAC-SHA256 and a
	// sequence number; packets without a valid one are dropped. Every
	// tracker of a group needs the same key.
	Key []byte
	// Multicast also sends to and listens on 224.0.42.5:9696 (TTL 1), the
	// group of opentracker's livesync design: the sync socket, which must
	// then be IPv4 on port 9696, joins the group on the default
	// interface. Beacons, inquiries and tells then go to the group.
	Multicast bool

	// FlushDelay is the longest a peer waits in a SYNC_LIVE packet that
	// is not full (default 15s, as opentracker).
	FlushDelay time.Duration
	// The scrape sync: a beacon every BeaconInterval (5m) once the
	// tracker has run BeaconDelay (30m); an inquiry InquireWait (6m)
	// after the first beacon of a tracker with more than twice our
	// torrents, to the one with the most; none within TellQuiet (5m) of
	// a tell.
	BeaconDelay, BeaconInterval, InquireWait, TellQuiet time.Duration
}

func (o SyncOptions) enabled() bool { return len(o.Peers) > 0 || o.Multicast }

// SyncStats is the sync's state, as /stats shows it.
type SyncStats struct {
	Peers      []string `json:"peers"`
	Multicast  bool     `json:"multicast"`
	Auth       bool     `json:"authenticated"`
	PacketsIn  uint64   `json:"packets_in"`
	PacketsOut uint64   `json:"packets_out"`
	Rejected   uint64   `json:"rejected"`
	LastReject string   `json:"last_reject,omitempty"`
	Telling    bool     `json:"telling"`
}

// syncer runs the peer sync and the scrape sync.
type syncer struct {
	t     *Tracker
	o     SyncOptions
	conn  *net.UDPConn // what packets are sent from and received on
	peers map[netip.AddrPort]bool
	wg    sync.WaitGroup
	ready chan []byte // full SYNC_LIVE packets, for the sender

	mu         sync.Mutex
	live       [2][]byte // SYNC_LIVE and SYNC_LIVE6 being filled
	liveSince  [2]time.Time
	seq        uint64
	replay     map[uint32]*replayWindow
	lastReject string
	// scrape sync
	nextBeacon    time.Time
	wantUntil     time.Time // inquire then; zero when not wanting to
	candidate     uint32
	candidateAddr netip.AddrPort
	candidateN    uint64
	lastTell      time.Time
	tellTo        []netip.AddrPort // inquirers being told
	tellShard     int              // the next shard to tell
	tellGen       int              // counts restarts of the tell

	packetsIn, packetsOut, rejected atomic.Uint64
}

func newSyncer(t *Tracker, o SyncOptions) (*syncer, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.FlushDelay, 15*time.Second)
	def(&o.BeaconDelay, 30*time.Minute)
	def(&o.BeaconInterval, 5*time.Minute)
	def(&o.InquireWait, 6*time.Minute)
	def(&o.TellQuiet, 5*time.Minute)
	if o.Listen == "" {
		return nil, fmt.Errorf("%w: sync needs a listen address", ErrOptions)
	}
	s := &syncer{t: t, o: o, peers: map[netip.AddrPort]bool{}, replay: map[uint32]*replayWindow{},
		ready: make(chan []byte, 64), nextBeacon: t.started.Add(o.BeaconDelay)}
	for _, p := range o.Peers {
		s.peers[netip.AddrPortFrom(p.Addr().Unmap(), p.Port())] = true
	}
	network := udpNetwork(o.Listen)
	if o.Multicast {
		network = "udp4" // the group is IPv4
	}
	pc, err := net.ListenPacket(network, o.Listen)
	if err != nil {
		return nil, fmt.Errorf("tracker: sync listen %s: %w", o.Listen, err)
	}
	s.conn = pc.(*net.UDPConn)
	if o.Multicast {
		if err := s.joinGroup(); err != nil {
			s.conn.Close()
			return nil, err
		}
	}
	for i := range s.live {
		s.live[i] = s.newLivePacket(i == 1)
	}
	return s, nil
}

// joinGroup makes the sync socket join the multicast group on the
// default interface, with a TTL of 1 and without loopback of our own
// packets.
func (s *syncer) joinGroup() error {
	if port := s.conn.LocalAddr().(*net.UDPAddr).Port; port != int(syncGroup.Port()) {
		return fmt.Errorf("%w: sync multicast needs the sync socket on port %d, not %d", ErrOptions, syncGroup.Port(), port)
	}
	p := ipv4.NewPacketConn(s.conn)
	if err := p.JoinGroup(nil, &net.UDPAddr{IP: syncGroup.Addr().AsSlice()}); err != nil {
		return fmt.Errorf("tracker: sync multicast join %s: %w", syncGroup.Addr(), err)
	}
	if err := errors.Join(p.SetMulticastTTL(1), p.SetMulticastLoopback(false)); err != nil {
		return fmt.Errorf("tracker: sync multicast: %w", err)
	}
	return nil
}

func (s *syncer) close() {
	s.conn.Close()
	s.wg.Wait()
}

func (s *syncer) auth() bool { return len(s.o.Key) > 0 }

func (s *syncer) newLivePacket(ip6 bool) []byte {
	typ := syncLive
	if ip6 {
		typ = syncLive6
	}
	return appendSyncHeader(make([]byte, 0, syncMaxPacket), s.t.id, typ, s.auth())
}

// tell queues one announce for the peer sync: its flags as stored, with
// COMPLETE only on the announce that counted the download, so that every
// tracker counts it once.
func (s *syncer) tell(ih metainfo.Hash, addr netip.AddrPort, flags uint8, completed bool) {
	flags &^= flagCompleted
	if completed {
		flags |= flagCompleted
	}
	i, size := 0, syncLiveLen
	if !addr.Addr().Is4() {
		i, size = 1, syncLive6Len
	}
	limit := syncMaxPacket
	if s.auth() {
		limit -= syncTrailerLen
	}
	s.mu.Lock()
	if len(s.live[i]) == syncHeaderLen {
		s.liveSince[i] = time.Now()
	}
	s.live[i] = appendLiveEntry(s.live[i], ih, addr, flags)
	var full []byte
	if len(s.live[i])+size > limit {
		full = s.live[i]
		s.live[i] = s.newLivePacket(i == 1)
	}
	s.mu.Unlock()
	if full != nil {
		select {
		case s.ready <- full:
		default:
			s.reject("outgoing queue full: peers not synced")
		}
	}
}

// run reads sync packets and keeps the scrape sync's schedule until ctx
// is done.
func (s *syncer) run(ctx context.Context) {
	s.wg.Go(func() { s.read(s.conn) })
	tick := time.NewTicker(min(s.o.FlushDelay/4, time.Second, s.o.BeaconInterval/4, s.o.InquireWait/4))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case pkt := <-s.ready:
			s.send(pkt, nil)
		case now := <-tick.C:
			s.flush(now, false)
			s.schedule(now)
		}
	}
}

// flush sends the SYNC_LIVE packets that waited FlushDelay (all of them
// with force).
func (s *syncer) flush(now time.Time, force bool) {
	for i := range s.live {
		s.mu.Lock()
		var pkt []byte
		if len(s.live[i]) > syncHeaderLen && (force || now.Sub(s.liveSince[i]) >= s.o.FlushDelay) {
			pkt = s.live[i]
			s.live[i] = s.newLivePacket(i == 1)
		}
		s.mu.Unlock()
		if pkt != nil {
			s.send(pkt, nil)
		}
	}
}

// send seals pkt (with a key) and sends it to to, or to every sync peer
// and the multicast group when to is nil.
func (s *syncer) send(pkt []byte, to []netip.AddrPort) {
	if s.auth() {
		s.mu.Lock()
		s.seq = max(s.seq+1, uint64(time.Now().UnixNano()))
		seq := s.seq
		s.mu.Unlock()
		pkt = sealSyncPacket(pkt, s.o.Key, seq)
	}
	if to == nil {
		to = s.o.Peers
		if s.o.Multicast {
			to = append(to[:len(to):len(to)], syncGroup)
		}
	}
	for _, a := range to {
		if _, err := s.conn.WriteToUDPAddrPort(pkt, a); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.t.log.Debug("sync send", "to", a, "err", err)
			continue
		}
		s.packetsOut.Add(1)
	}
}

func (s *syncer) read(c *net.UDPConn) {
	buf := make([]byte, 64<<10)
	var p syncPacket
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if err := s.accept(buf[:n], from, &p); err != nil {
			s.reject(fmt.Sprintf("%v from %v", err, from))
			continue
		}
		s.packetsIn.Add(1)
		s.handle(&p, from)
	}
}

// accept decodes pkt and checks who sent it: with a key, by the HMAC and
// the sequence number; without, by the sender's address and port.
func (s *syncer) accept(pkt []byte, from netip.AddrPort, p *syncPacket) error {
	if !s.auth() && !s.peers[from] {
		return errSyncUnknown
	}
	if err := parseSyncPacket(pkt, s.o.Key, p); err != nil {
		return err
	}
	if p.sender == s.t.id {
		return nil // our own, back from the group
	}
	if !p.auth {
		return nil
	}
	now := uint64(time.Now().UnixNano())
	if skew := uint64(syncMaxSkew); p.seq+skew < now || p.seq > now+skew {
		return errSyncReplay
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.replay[p.sender]
	if w == nil {
		w = &replayWindow{}
		s.replay[p.sender] = w
	}
	if !w.accept(p.seq) {
		return errSyncReplay
	}
	return nil
}

func (s *syncer) reject(why string) {
	s.rejected.Add(1)
	s.mu.Lock()
	s.lastReject = why
	s.mu.Unlock()
	s.t.log.Debug("sync packet dropped", "why", why)
}

// handle acts on an accepted packet.
func (s *syncer) handle(p *syncPacket, from netip.AddrPort) {
	if p.sender == s.t.id {
		return
	}
	switch p.typ {
	case syncLive, syncLive6:
		s.applyLive(p.body, p.typ == syncLive6)
	case syncBeacon:
		s.onBeacon(p.sender, from, beUint64(p.body))
	case syncInquire:
		if beUint32(p.body) == s.t.id {
			to := from
			if s.o.Multicast {
				to = syncGroup // tell everyone, as the design has it
			}
			s.startTell(to)
		}
	case syncTell:
		s.applyTell(p.body)
	}
}

// applyLive applies a SYNC_LIVE payload: each entry is an announce of a
// peer that another tracker saw. Synced peers are not synced on.
func (s *syncer) applyLive(body []byte, ip6 bool) {
	t := s.t
	epoch, minute := t.epochAt(time.Now())
	liveEntries(body, ip6, func(e syncLiveEntry) {
		if !t.allowed(e.ih) || e.addr.Port() == 0 {
			return
		}
		r := announceReq{ih: e.ih, addr: e.addr, left: 1}
		if e.flags&flagSeed != 0 {
			r.left = 0
		}
		if e.flags&flagCompleted != 0 {
			// Counted where it was announced: count it here too, then
			// apply what else the entry says.
			r.event = eventCompleted
			t.state.announce(&r, epoch, minute, nil)
		}
		switch {
		case e.flags&flagStopped != 0:
			r.event = eventStopped
		case e.flags&flagPartial != 0:
			r.event = eventPaused
		case e.flags&flagCompleted != 0:
			return
		default:
			r.event = eventNone
		}
		t.state.announce(&r, epoch, minute, nil)
	})
}
