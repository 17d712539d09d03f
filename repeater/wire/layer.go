package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/anacrolix/torrent/metainfo"
)

// Pieces is what the layer asks of the repeater and the cache.
type Pieces interface {
	// Has reports whether we hold piece and can serve it now. It is called
	// for every incoming REQUEST, so it must be cheap.
	Has(ih metainfo.Hash, piece int) bool
	// Requested notes that a peer asked for a piece we hold (the cache
	// counts it as useful).
	Requested(ih metainfo.Hash, piece int)
	// PartialSeed reports whether the torrent is in partial-seed mode, so
	// that our extended handshake carries upload_only: 1.
	PartialSeed(ih metainfo.Hash) bool
	// NumPieces is the torrent's piece count, 0 when unknown.
	NumPieces(ih metainfo.Hash) int
}

// Layer is the wire layer of one BitTorrent client: every connection the
// client makes or accepts passes through it.
type Layer struct {
	pieces Pieces
	// refuseEncrypted closes connections that start with an MSE handshake
	// instead of passing them through unread.
	refuseEncrypted bool
	// requireEncrypted closes connections that start with a plaintext
	// handshake, either way (peer.encryption = "require").
	requireEncrypted bool
	// secretKeys, when set, makes the layer decrypt incoming MSE itself
	// (Decrypt).
	secretKeys SecretKeys

	mu     sync.Mutex
	conns  map[metainfo.Hash]map[*Conn]struct{}
	all    map[*Conn]struct{}
	closed map[metainfo.Hash]*Totals // what closed connections carried

	meta          metaState
	lastMalformed atomic.Pointer[string]

	// comp configures BEP 56 (Compress).
	comp CompressOptions
	// friends meets other repeaters (SetFriends); nil: not offered.
	friends FriendsHook

	// noHoldLast turns holding last-block requests off (keepinterest.go).
	noHoldLast atomic.Bool

	stats struct {
		conns, malformed, dropped, rejected, donthaves, haves, uploadOnly, kicks, heldLast, timedOut, lateDropped, refused, decrypted, metaFetched, metaRefused atomic.Int64
		compressed, compressBad, spliced, savedUp, savedDown                                                                                                    atomic.Int64
	}
}

// RefuseEncrypted makes the layer close connections that start with an
// MSE (encrypted) handshake: the layer cannot read them, so it cannot
// protect them. libtorrent and Transmission then retry in plaintext.
func (l *Layer) RefuseEncrypted(on bool) { l.refuseEncrypted = on }

// RequireEncrypted makes the layer close connections that start with a
// plaintext handshake, incoming (before the library sees them) and
// outgoing (the library's plaintext retry after a refused MSE dial). With
// Decrypt, incoming MSE is still read by the layer.
func (l *Layer) RequireEncrypted(on bool) { l.requireEncrypted = on }

// ErrPlaintext is returned on a plaintext connection when the layer
// requires encryption.
var ErrPlaintext = errors.New("wire: plaintext connection refused: encryption is required")

// New returns a layer that asks p about pieces.
func New(p Pieces) *Layer {
	return &Layer{pieces: p, conns: map[metainfo.Hash]map[*Conn]struct{}{}, all: map[*Conn]struct{}{}, closed: map[metainfo.Hash]*Totals{}}
}

// Wrap wraps one connection; outgoing tells whether we dialled it.
func (l *Layer) Wrap(c net.Conn, outgoing bool) *Conn {
	wc := newConn(l, c, outgoing)
	l.mu.Lock()
	l.all[wc] = struct{}{}
	l.mu.Unlock()
	l.stats.conns.Add(1)
	return wc
}

func (l *Layer) register(c *Conn) {
	ih := c.infoHash()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.all[c]; !ok {
		return // closed already
	}
	m := l.conns[ih]
	if m == nil {
		m = map[*Conn]struct{}{}
		l.conns[ih] = m
	}
	m[c] = struct{}{}
}

func (l *Layer) remove(c *Conn) {
	ih := c.infoHash()
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.all, c)
	m := l.conns[ih]
	if _, ok := m[c]; !ok {
		return
	}
	delete(m, c)
	if len(m) == 0 {
		delete(l.conns, ih)
	}
	t := l.closed[ih]
	if t == nil {
		t = &Totals{}
		l.closed[ih] = t
	}
	c.addTo(t)
}

// Totals sums what a torrent's connections carried.
type Totals struct {
	Conns     int   // connections seen
	Served    int   // connections that received at least one block
	BytesUp   int64 // payload sent
	BytesDown int64 // payload received
	Dropped   int64
	Rejected  int64
}

// addTo adds the connection's counters to t (without copying its
// bitfields, as State would).
func (c *Conn) addTo(t *Totals) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	t.Conns++
	if s.bytesUp > 0 {
		t.Served++
	}
	t.BytesUp += s.bytesUp
	t.BytesDown += s.bytesDown
	t.Dropped += s.dropped
	t.Rejected += s.rejected
}

// Totals returns the torrent's totals over open and closed connections.
func (l *Layer) Totals(ih metainfo.Hash) Totals {
	l.mu.Lock()
	var t Totals
	if c := l.closed[ih]; c != nil {
		t = *c
	}
	l.mu.Unlock()
	for _, c := range l.connsOf(ih) {
		c.addTo(&t)
	}
	return t
}

// Forget drops the torrent's totals (when the repeater leaves it).
func (l *Layer) Forget(ih metainfo.Hash) {
	l.mu.Lock()
	delete(l.closed, ih)
	l.mu.Unlock()
	l.forgetInfo(ih)
}

// connsOf returns a copy of the torrent's connections, so that callers can
// act on them without holding the layer's lock.
func (l *Layer) connsOf(ih metainfo.Hash) []*Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Conn, 0, len(l.conns[ih]))
	for c := range l.conns[ih] {
		out = append(out, c)
	}
	return out
}

// Conns returns the torrent's open plaintext connections.
func (l *Layer) Conns(ih metainfo.Hash) []*Conn { return l.connsOf(ih) }

// PieceEvicted tells peers we no longer have piece: lt_donthave (BEP 54) to
// those that support it and were told we had it. Others will get a REJECT
// (fast extension) or silence if they ask.
func (l *Layer) PieceEvicted(ih metainfo.Hash, piece int) {
	for _, c := range l.connsOf(ih) {
		c.mu.Lock()
		id, ok := c.st.extIDs["lt_donthave"]
		held := c.st.advertised.Has(piece)
		send := ok && held
		c.st.withheld.Clear(piece)
		if held {
			c.st.advW().Clear(piece)
		}
		if send {
			c.st.donthaves++
		}
		c.mu.Unlock()
		if send {
			l.stats.donthaves.Add(1)
			c.inject(msgExtBytes(id, u32(uint32(piece))))
		}
	}
}

// PieceAvailable tells peers that we have piece again. anacrolix sends HAVE
// once per piece and connection, so a piece fetched again after eviction
// would stay unannounced; pieces the library never announced on a
// connection it will announce itself.
func (l *Layer) PieceAvailable(ih metainfo.Hash, piece int) {
	for _, c := range l.connsOf(ih) {
		c.mu.Lock()
		// Only once the library has sent its own bitfield: before that, a
		// HAVE would come before BITFIELD, which peers reject.
		send := c.begun.Load() && c.st.announced.Has(piece) && !c.st.advertised.Has(piece) && !c.st.haveAll
		if send && c.withhold.Load() {
			// The offer order shows it (offer.go).
			c.st.withheld.Set(piece)
			send = false
		}
		if send {
			c.st.advW().Set(piece)
			c.st.havesSent++
		}
		c.mu.Unlock()
		if send {
			l.stats.haves.Add(1)
			c.inject(msgHaveBytes(uint32(piece)))
		}
	}
}

// PartialSeedChanged sends the BEP 21 upload_only extension message to
// every peer of the torrent that supports it, except those that drop
// uninteresting upload-only peers (see the package doc).
func (l *Layer) PartialSeedChanged(ih metainfo.Hash, uploadOnly bool) {
	flag := byte(0)
	if uploadOnly {
		flag = 1
	}
	for _, c := range l.connsOf(ih) {
		c.mu.Lock()
		id, ok := c.st.extIDs["upload_only"]
		ok = ok && !c.st.dropsUploadOnly
		c.st.partialSeed = uploadOnly && !c.st.dropsUploadOnly
		c.mu.Unlock()
		if ok {
			l.stats.uploadOnly.Add(1)
			c.inject(msgExtBytes(id, []byte{flag}))
		}
	}
}

// PeerState is a snapshot of one connection.
type PeerState struct {
	Remote, Local  net.Addr
	Outgoing       bool
	InfoHash       metainfo.Hash
	PeerID         [20]byte
	ClientName     string
	Fast           bool // both sides support BEP 6
	Extensions     map[string]byte
	PeerUploadOnly bool
	Have           Bitset
	HaveAll        bool
	Advertised     Bitset
	PeerChoking    bool
	PeerInterested bool
	AmChoking      bool
	AmInterested   bool // the library is interested
	Interested     bool // the peer was told we are interested (HoldInterest)
	InterestHeld   bool
	PartialSeed    bool
	BytesUp        int64 // payload sent
	BytesDown      int64 // payload received
	Dropped        int64 // requests for pieces we lack, kept from the library
	Rejected       int64
	Donthaves      int64
	HavesInjected  int64
	HavesKept      int64 // our HAVEs not sent, as the peer is a seed
	HavesWithheld  int64 // our HAVEs kept for the offer order (offer.go)
	RequestsOut    int64 // REQUESTs we sent
	CancelsOut     int64 // CANCELs we sent for requests outstanding
	AfterCancel    int64 // PIECEs for requests we had cancelled, sent all the same
	PiecesIn       int64 // PIECEs received
	RejectsIn      int64 // REJECTs received
	ChokesIn       int64 // CHOKEs received
	TimedOut       int64 // requests the peer never answered
	LateDropped    int64 // answers to those that came after all, kept from the library
	HeldLast       int64 // last-block requests held to keep the peer interested (keepinterest.go)
	Outstanding    int   // our requests awaiting an answer
	Compress       CompressState
}

// Has reports whether the peer has piece, from its bitfield, HAVEs and
// HAVE ALL.
func (p *PeerState) HasPiece(piece int) bool { return p.HaveAll || p.Have.Has(piece) }

// Seed reports whether the peer holds every one of the torrent's n pieces.
func (p *PeerState) Seed(n int) bool { return p.HaveAll || p.Have.Count() >= n }

// State returns a snapshot of the connection. Its bitsets and map are
// shared with later snapshots: read them, never change them.
func (c *Conn) State() PeerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	ps := PeerState{
		Remote: c.RemoteAddr(), Local: c.LocalAddr(), Outgoing: c.outgoing,
		InfoHash: s.infoHash, PeerID: s.peerID, ClientName: s.clientName,
		Fast: s.peerFast && s.ourFast, PeerUploadOnly: s.peerUpload,
		Have: s.have, HaveAll: s.haveAll, Advertised: s.advertised,
		PeerChoking: s.peerChoking, PeerInterested: s.peerInterest,
		AmChoking: s.amChoking, AmInterested: s.amInterested, PartialSeed: s.partialSeed,
		Interested: s.shownInterest, InterestHeld: c.holdInterest.Load(),
		BytesUp: s.bytesUp, BytesDown: s.bytesDown,
		Dropped: s.dropped, Rejected: s.rejected, Donthaves: s.donthaves, HavesInjected: s.havesSent, HavesKept: s.havesKept,
		HavesWithheld: s.havesWithheld,
		RequestsOut:   s.requestsOut, CancelsOut: s.cancelsOut, AfterCancel: s.afterCancel, PiecesIn: s.piecesIn, RejectsIn: s.rejectsIn, ChokesIn: s.chokesIn,
		TimedOut: s.timedOut, LateDropped: s.lateDropped, HeldLast: s.heldLast, Outstanding: len(s.outstanding),
		Compress: c.zs.state(),
	}
	ps.Compress.Offered = s.comp.ourID != 0
	// The snapshot shares the bitsets and the extension map; the next
	// change copies them first (peerState.haveW and the like), so a quiet
	// peer costs no copy per round.
	s.haveShared, s.advShared = true, true
	if len(s.extIDs) > 0 {
		ps.Extensions, s.extShared = s.extIDs, true
	}
	return ps
}

// Peers returns snapshots of every connection of the torrent.
func (l *Layer) Peers(ih metainfo.Hash) []PeerState {
	cs := l.connsOf(ih)
	out := make([]PeerState, len(cs))
	for i, c := range cs {
		out[i] = c.State()
	}
	return out
}

// Stats counts what the layer did since it started.
type Stats struct {
	Conns          int64 // connections wrapped
	Malformed      int64 // connections closed for malformed input
	Dropped        int64 // requests for missing pieces kept from the library
	Rejected       int64 // of those, answered with REJECT
	Donthaves      int64 // lt_donthave messages sent
	HavesInjected  int64 // HAVE messages injected
	UploadOnlySent int64 // upload_only extension messages sent
	RejectKicks    int64 // CHOKE+UNCHOKE pairs added after a REJECT (see kickAfterReject)
	TimedOut       int64 // requests the peer never answered
	LateDropped    int64 // answers to those that came after all, kept from the library (see RequestTimeout)
	HeldLast       int64 // last-block requests held to keep a peer interested (keepinterest.go)
	Encrypted      int64 // connections that started with MSE the layer could not read (passed through, or refused)
	Decrypted      int64 // incoming MSE connections the layer decrypted itself (Decrypt)
	InfoFetched    int64 // torrents whose metadata the layer fetched, checked and handed on
	InfoRefused    int64 // torrents whose metadata hashed but failed the checks
	// LastMalformed is the peer and reason of the last connection closed
	// for malformed input.
	LastMalformed string
	// BEP 56 (docs/bep56.md).
	Compressed      int64 // connections compressed one way or both
	CompressRefused int64 // connections closed for a bad or expanding compressed stream
	FramesSpliced   int64 // cached zstd frames sent as they are
	SavedUp         int64 // bytes compression kept off the wire, sent (plain minus wire)
	SavedDown       int64 // and received
}

// Stats returns the layer's counters.
func (l *Layer) Stats() Stats {
	st := Stats{
		Conns: l.stats.conns.Load(), Malformed: l.stats.malformed.Load(),
		Dropped: l.stats.dropped.Load(), Rejected: l.stats.rejected.Load(),
		Donthaves: l.stats.donthaves.Load(), HavesInjected: l.stats.haves.Load(),
		UploadOnlySent: l.stats.uploadOnly.Load(), RejectKicks: l.stats.kicks.Load(),
		TimedOut: l.stats.timedOut.Load(), LateDropped: l.stats.lateDropped.Load(), HeldLast: l.stats.heldLast.Load(), Encrypted: l.stats.refused.Load(),
		Decrypted:   l.stats.decrypted.Load(),
		InfoFetched: l.stats.metaFetched.Load(), InfoRefused: l.stats.metaRefused.Load(),
		Compressed: l.stats.compressed.Load(), CompressRefused: l.stats.compressBad.Load(),
		FramesSpliced: l.stats.spliced.Load(), SavedUp: l.stats.savedUp.Load(), SavedDown: l.stats.savedDown.Load(),
	}
	if m := l.lastMalformed.Load(); m != nil {
		st.LastMalformed = *m
	}
	return st
}

// countMalformed counts a connection closed for malformed input and keeps
// the last reason (truncated: it may quote the peer) for Stats.
func (l *Layer) countMalformed(c *Conn, err error) {
	l.stats.malformed.Add(1)
	msg := fmt.Sprintf("%v: %v", c.RemoteAddr(), err)
	if len(msg) > 200 {
		msg = msg[:200]
	}
	l.lastMalformed.Store(&msg)
}

func (l *Layer) countDropped(rejected bool) {
	l.stats.dropped.Add(1)
	if rejected {
		l.stats.rejected.Add(1)
	}
}

// Listener accepts TCP connections and wraps them. It satisfies
// anacrolix's torrent.Listener for Client.AddListener.
type Listener struct {
	net.Listener
	layer *Layer
}

// Listen listens on addr (tcp) through the layer.
func (l *Layer) Listen(network, addr string) (*Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return &Listener{Listener: ln, layer: l}, nil
}

// Accept waits for the next connection and wraps it.
func (ln *Listener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return ln.layer.Wrap(ln.layer.wrapDecrypt(c), false), nil
}

// Dialer dials TCP connections and wraps them. It satisfies anacrolix's
// torrent.Dialer for Client.AddDialer.
type Dialer struct {
	layer   *Layer
	network string
	d       net.Dialer
}

// Dialer returns a dialer for network ("tcp4", "tcp6" or "tcp") whose
// connections leave from local (nil for any), so that peers see the address
// we listen on.
func (l *Layer) Dialer(network string, local net.Addr) *Dialer {
	return &Dialer{layer: l, network: network, d: net.Dialer{LocalAddr: local}}
}

// Dial connects to addr.
func (d *Dialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := d.d.DialContext(ctx, d.network, addr)
	if err != nil {
		return nil, err
	}
	return d.layer.Wrap(c, true), nil
}

// DialerNetwork names the network for anacrolix.
func (d *Dialer) DialerNetwork() string { return d.network }
