package wire

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"golang.org/x/time/rate"
)

// Conn wraps one peer connection under the BitTorrent library. It reads the
// framing in both directions; it changes the stream only to rewrite our
// extended handshake, to drop requests for pieces we do not hold, and to
// inject its own messages at message boundaries.
type Conn struct {
	net.Conn
	layer    *Layer
	outgoing bool
	ctx      context.Context
	cancel   context.CancelFunc

	// passthrough is set when the stream is not a plaintext BitTorrent
	// stream (MSE): from then on bytes are neither read nor changed.
	passthrough atomic.Bool
	// refused is set when such a stream was refused (Layer.RefuseEncrypted).
	refused atomic.Bool

	// Read side, touched only by the library's reader goroutine.
	r reader

	// Write side, under wmu.
	wmu sync.Mutex
	w   writer

	// Injected messages wait in queue until the outbound stream is at a
	// message boundary. When our lt_compress marker is queued, zAt is the
	// end of it in queue: what follows goes through the encoder zAlgo.
	qmu   sync.Mutex
	queue []byte
	zAt   int
	zAlgo algo

	// zw compresses our direction after our marker (BEP 56), under wmu;
	// zs counts both directions.
	zw *zwriter
	zs zstats

	// State shared with the layer, under mu.
	mu sync.Mutex
	st peerState

	limiter atomic.Pointer[rate.Limiter]
	closed  atomic.Bool
	// libReadDeadline is the read deadline the library set (unix nanos, 0
	// for none); the reader arms its own shorter one for a pending kick.
	libReadDeadline atomic.Int64
	// deferring is set while our extended handshake waits for the peer's
	// bitfield (extHandshakeReady); deferUntil is when it stops waiting.
	deferring  atomic.Bool
	deferUntil atomic.Int64
	// begun is set once we sent a message other than the extended
	// handshake: from then on an injected HAVE cannot precede the
	// library's BITFIELD.
	begun atomic.Bool

	// pads are the requests fitRequest cut, by index and begin, under mu.
	pads map[[8]byte]padCut

	// trackSent is set by TrackSent: the payload sent is counted per
	// piece too (peerState.sent).
	trackSent atomic.Bool

	// holdInterest keeps the peer told we are interested (interest.go);
	// interestDirty is set when what it was told may need a message.
	holdInterest  atomic.Bool
	interestDirty atomic.Bool

	// withhold keeps the library's HAVEs from the peer (offer.go).
	withhold atomic.Bool
	// keepInterest lets the layer hold the peer's last-block request
	// (keepinterest.go).
	keepInterest atomic.Bool
}

// peerState is what the layer knows about the peer; see PeerState for the
// exported snapshot.
type peerState struct {
	infoHash     metainfo.Hash
	ihKnown      bool
	peerID       [20]byte
	peerFast     bool
	peerExt      bool
	ourFast      bool
	clientName   string
	extIDs       map[string]byte // the peer's LTEP ids ("m")
	peerUpload   bool            // the peer said upload_only
	have         Bitset          // pieces the peer has
	haveAll      bool
	advertised   Bitset // pieces the peer believes we have
	announced    Bitset // pieces the library ever announced: it will not again
	lastAsked    Bitset // pieces whose last block the peer asked for (keepinterest.go)
	peerChoking  bool
	peerInterest bool
	amChoking    bool
	amInterested bool // the library's word
	// shownInterest is what the peer was told: the library's word, or
	// INTERESTED while held (interest.go).
	shownInterest bool
	partialSeed   bool // our handshake carried upload_only: 1
	peerShown     bool // the peer sent HAVE ALL, HAVE NONE or BITFIELD
	extShown      bool // the peer sent its extended handshake
	// dropsUploadOnly is set for peers that close the connection to an
	// upload-only peer they are not interested in (libtorrent's
	// close_redundant_connections): they never hear upload_only from us.
	dropsUploadOnly bool
	bytesUp         int64
	bytesDown       int64
	dropped         int64 // requests for pieces we lack that the library never saw
	rejected        int64 // of those, answered with REJECT
	donthaves       int64
	havesSent       int64
	havesKept       int64 // our HAVEs not sent to a seed
	// withheld are pieces the library announced that the peer was not
	// told of yet (offer.go); havesWithheld counts such HAVEs.
	withheld      Bitset
	havesWithheld int64
	requestsOut   int64 // REQUESTs we sent
	cancelsOut    int64 // CANCELs we sent for requests outstanding
	afterCancel   int64 // PIECEs for requests we had cancelled (sent anyway)
	piecesIn      int64 // PIECEs received
	rejectsIn     int64 // REJECTs received
	chokesIn      int64 // CHOKEs received
	kicks         int64 // CHOKE+UNCHOKE pairs added after a REJECT
	heldLast      int64 // last-block requests held (keepinterest.go)
	timedOut      int64 // our requests the peer never answered (REJECT synthesized)
	// sent is the payload sent per piece, while TrackSent is on.
	sent map[int]int64
	// outstanding are our requests (index, begin, length) not yet answered,
	// with when and in which order we sent them; reqSeq numbers them.
	// answeredSeq is the latest-sent request the peer answered, at
	// answeredAt.
	outstanding map[[12]byte]sentRequest
	reqSeq      uint64
	answeredSeq uint64
	answeredAt  time.Time
	// expired are requests we gave up on (a REJECT synthesized for the
	// library), with when: the peer's late answer must not reach the
	// library, which counts it an unexpected chunk and closes the
	// connection (anacrolix v1.61). lateDropped counts such answers.
	expired     map[[12]byte]time.Time
	lateDropped int64
	// cancelled are requests the library cancelled, with when: their
	// PIECE may still come and is the library's; a REJECT for one is the
	// library's only from a peer it expects to reject cancels
	// (libraryAwaitsCancelAck).
	cancelled map[[12]byte]time.Time

	extHandshakes int   // extended handshakes the peer sent
	metaSize      int64 // the peer's metadata_size, 0 if none
	// ourMetaID and ourPexID are the library's ids for ut_metadata and
	// ut_pex (from our own extended handshake; 0: not offered), which the
	// peer's messages of those extensions carry.
	ourMetaID, ourPexID byte
	ourExtShown         bool
	meta                *metaConn    // our metadata fetch on this connection
	comp                compState    // BEP 56 negotiation
	fr                  friendsState // bts_friends

	// haveShared, advShared and extShared are set while State's last
	// snapshot shares have, advertised or extIDs: they are copied before
	// the next change (copy on write), so that a round of snapshots copies
	// only what changed since the last.
	haveShared, advShared, extShared bool
}

// haveW returns have for writing, unshared from any snapshot.
func (s *peerState) haveW() *Bitset {
	if s.haveShared {
		s.have, s.haveShared = s.have.Clone(), false
	}
	return &s.have
}

// advW returns advertised for writing, unshared from any snapshot.
func (s *peerState) advW() *Bitset {
	if s.advShared {
		s.advertised, s.advShared = s.advertised.Clone(), false
	}
	return &s.advertised
}

// extIDsW returns extIDs for writing, unshared from any snapshot.
func (s *peerState) extIDsW() map[string]byte {
	if s.extShared || s.extIDs == nil {
		m := make(map[string]byte, len(s.extIDs)+4)
		for k, v := range s.extIDs {
			m[k] = v
		}
		s.extIDs, s.extShared = m, false
	}
	return s.extIDs
}

func newConn(l *Layer, c net.Conn, outgoing bool) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	wc := &Conn{Conn: c, layer: l, outgoing: outgoing, ctx: ctx, cancel: cancel}
	wc.st.peerChoking, wc.st.amChoking = true, true
	wc.r.hsLeft, wc.w.hsLeft = handshakeLen, handshakeLen
	wc.r.buf = make([]byte, 32<<10)
	return wc
}

// Close closes the connection and forgets it.
func (c *Conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.cancel()
		c.layer.remove(c)
	}
	return c.Conn.Close()
}

// SetUploadRate paces what we send this peer to bytes per second; 0 removes
// the cap. Pacing happens in Write, which runs on the library's writer
// goroutine for this peer only, so it slows no one else.
func (c *Conn) SetUploadRate(bytesPerSec int64) {
	if bytesPerSec <= 0 {
		c.limiter.Store(nil)
		return
	}
	burst := int(bytesPerSec)
	burst = max(min(burst, 1<<20), 32<<10)
	c.limiter.Store(rate.NewLimiter(rate.Limit(bytesPerSec), burst))
}
