package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"golang.org/x/time/rate"

	"github.com/btslave/btslave/internal/torrentfile"
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

// ---- read side --------------------------------------------------------------

type reader struct {
	buf      []byte // network bytes not yet handed to the library: buf[off:end]
	off, end int
	// inPlace is set while buf is the library's own buffer (readInPlace):
	// what is handed on is written over what was read.
	inPlace bool
	err     error // a read error to return once buf is drained

	hsLeft int
	hs     [handshakeLen]byte

	pass    int    // bytes of the current message still to hand over
	skip    int    // bytes of the current message to drop (a late PIECE)
	capture []byte // body of the current message, when we parse it
	capID   byte
	// inject holds messages we add to what the library reads, delivered
	// at the next message boundary; kickAt is when a pending
	// CHOKE+UNCHOKE (kickAfterReject) becomes due.
	inject []byte
	kickAt time.Time
	// held is a peer's request not passed on yet (keepinterest.go).
	held *heldRequest
	// due is when the oldest outstanding request times out, as of the last
	// scan; scanAt is when to scan again.
	due, scanAt time.Time
	small       [32]byte // capture space for small messages (HAVE)
	// pieceHdr is how many PIECE header bytes (length, id, index, begin)
	// remain before the payload, which is counted as downloaded.
	pieceHdr int
	piece    bool
	// z decodes the peer's direction after its lt_compress marker.
	z *zreader
}

// Read hands the library the peer's bytes, minus requests we answer
// ourselves, plus messages we add for it.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r := &c.r
	for {
		if c.refused.Load() {
			return 0, ErrEncrypted
		}
		if c.passthrough.Load() {
			if r.off < r.end {
				n := copy(p, r.buf[r.off:r.end])
				r.off += n
				return n, nil
			}
			if r.err != nil {
				return 0, r.err
			}
			return c.Conn.Read(p)
		}
		wake := c.timers()
		n, err := c.deliver(p)
		if c.deferring.Load() {
			c.tryRelease() // the peer's bitfield may have just arrived
		}
		if err != nil {
			if !errors.Is(err, ErrEncrypted) {
				c.layer.countMalformed(c, err)
			}
			return n, err
		}
		if n > 0 {
			return n, nil
		}
		if r.err != nil {
			return 0, r.err
		}
		if r.off == r.end && len(p) >= 4<<10 {
			// Nothing held over: read straight into the library's buffer
			// and parse it in place, saving a copy of every byte.
			n, err := c.readInPlace(p, wake)
			if err != nil && !errors.Is(err, ErrEncrypted) && !isNetErr(err) {
				c.layer.countMalformed(c, err)
			}
			if n > 0 || err != nil {
				return n, err
			}
			continue
		}
		// Need more bytes: make room, then read.
		if r.off > 0 {
			copy(r.buf, r.buf[r.off:r.end])
			r.end -= r.off
			r.off = 0
		}
		if r.end == len(r.buf) {
			// Only a REQUEST, a header or a small extended handshake is
			// ever held back, so a full buffer means a bug.
			return 0, fmt.Errorf("%w: read buffer full", ErrBadMessage)
		}
		m, err := c.fill(r.buf[r.end:], wake)
		r.end += m
		if err != nil {
			r.err = err
		}
	}
}

// timers runs what is due — a kick, request timeouts — and returns when the
// reader must next wake up even if the peer sends nothing (zero: never).
func (c *Conn) timers() time.Time {
	r := &c.r
	now := time.Now()
	if !r.kickAt.IsZero() && !now.Before(r.kickAt) {
		r.inject = append(r.inject, 0, 0, 0, 1, msgChoke, 0, 0, 0, 1, msgUnchoke)
		r.kickAt = time.Time{}
	}
	if !now.Before(r.scanAt) || (!r.due.IsZero() && !now.Before(r.due)) {
		r.due = c.expireRequests()
		r.scanAt = now.Add(min(time.Second, RequestTimeout/4))
	}
	if c.deferring.Load() {
		c.tryRelease()
	}
	heldAt := c.releaseHeld(now)
	wake := r.kickAt
	var deferAt time.Time
	if c.deferring.Load() {
		deferAt = time.Unix(0, c.deferUntil.Load())
	}
	for _, t := range []time.Time{r.due, r.scanAt, deferAt, heldAt} {
		if !t.IsZero() && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	if r.due.IsZero() && r.kickAt.IsZero() && deferAt.IsZero() && heldAt.IsZero() && !c.hasOutstanding() {
		return time.Time{} // nothing to time: block as long as the library likes
	}
	return wake
}

func (c *Conn) hasOutstanding() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.st.outstanding) > 0
}

// netRead reads from the network, waking up by wake (if set) without
// overriding the library's own read deadline.
func (c *Conn) netRead(b []byte, wake time.Time) (n int, err error) {
	if wake.IsZero() {
		return c.Conn.Read(b)
	}
	lib := c.libDeadline()
	dl := wake
	if !lib.IsZero() && lib.Before(dl) {
		dl = lib
	}
	c.Conn.SetReadDeadline(dl)
	n, err = c.Conn.Read(b)
	c.Conn.SetReadDeadline(lib)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && (lib.IsZero() || time.Now().Before(lib)) {
		err = nil // our own wake-up, not the library's deadline
	}
	return n, err
}

// fill reads the peer's stream: from the network, or decoded after the
// peer's lt_compress marker.
func (c *Conn) fill(b []byte, wake time.Time) (int, error) {
	if c.r.z != nil {
		return c.r.z.read(b, wake)
	}
	return c.netRead(b, wake)
}

// readInPlace reads from the network into p and parses it there: dropped
// requests are squeezed out, and an incomplete message at the end is moved
// to the read buffer for the next Read.
func (c *Conn) readInPlace(p []byte, wake time.Time) (int, error) {
	r := &c.r
	m, rerr := c.fill(p, wake)
	if m == 0 {
		return 0, rerr
	}
	own := r.buf
	r.buf, r.off, r.end = p[:m], 0, m
	r.inPlace = true
	n, err := c.deliver(p)
	r.inPlace = false
	rest := r.buf[r.off:r.end]
	if len(rest) > len(own) {
		// Stopped early for injected messages (see deliver): keep all of
		// it, in a buffer as large as the library's.
		own = make([]byte, len(rest))
	}
	r.buf = own
	r.off, r.end = 0, copy(own, rest)
	if err != nil {
		return n, err
	}
	if rerr != nil {
		r.err = rerr
	}
	return n, nil
}

// move copies src to dst, skipping the copy when they are the same bytes
// (parsing in place).
func move(dst, src []byte) int {
	n := min(len(dst), len(src))
	if n == 0 || &dst[0] == &src[0] {
		return n
	}
	return copy(dst, src[:n])
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF)
}

func (c *Conn) libDeadline() time.Time {
	if n := c.libReadDeadline.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// SetDeadline records the library's read deadline and sets both.
func (c *Conn) SetDeadline(t time.Time) error {
	c.storeReadDeadline(t)
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline records the library's read deadline and sets it.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.storeReadDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *Conn) storeReadDeadline(t time.Time) {
	if t.IsZero() {
		c.libReadDeadline.Store(0)
	} else {
		c.libReadDeadline.Store(t.UnixNano())
	}
}

// deliver parses buffered bytes and copies what passes into p.
func (c *Conn) deliver(p []byte) (int, error) {
	r := &c.r
	out := 0
	for out < len(p) && (r.off < r.end || (r.hsLeft == 0 && r.pass == 0 && r.skip == 0 && len(r.inject) > 0)) {
		avail := r.buf[r.off:r.end]
		switch {
		case r.skip > 0:
			k := min(r.skip, len(avail))
			r.off += k
			r.skip -= k
		case r.hsLeft > 0:
			got := handshakeLen - r.hsLeft
			k := min(r.hsLeft, len(avail), len(p)-out)
			copy(r.hs[got:], avail[:k])
			if !bytes.HasPrefix([]byte(pstr), r.hs[:min(got+k, len(pstr))]) {
				// Not a plaintext BitTorrent handshake: MSE.
				if err := c.onEncrypted(); err != nil {
					return out, err
				}
				n := move(p[out:], avail)
				r.off += n
				return out + n, nil
			}
			move(p[out:], avail[:k])
			r.off += k
			out += k
			r.hsLeft -= k
			if r.hsLeft == 0 {
				c.onHandshake(r.hs[:], false)
			}
		case r.pass == 0 && r.skip == 0 && len(r.inject) > 0:
			if r.inPlace && out+len(r.inject) > r.off {
				// Parsing in place, the messages we add would overwrite
				// input not yet parsed: stop here; readInPlace keeps the
				// rest, and the next Read adds them first.
				return out, nil
			}
			k := copy(p[out:], r.inject)
			r.inject = r.inject[k:]
			out += k
		case r.pass > 0:
			k := min(r.pass, len(avail), len(p)-out)
			if r.capture != nil {
				r.capture = append(r.capture, avail[:k]...)
			}
			move(p[out:], avail[:k])
			if r.piece {
				h := min(k, r.pieceHdr)
				r.pieceHdr -= h
				if payload := k - h; payload > 0 {
					c.mu.Lock()
					c.st.bytesDown += int64(payload)
					c.mu.Unlock()
				}
			}
			r.off += k
			out += k
			r.pass -= k
			if r.pass == 0 && r.capture != nil {
				body := r.capture[5:] // after length and id
				r.capture = nil
				if err := c.onPeerMessage(r.capID, body); err != nil {
					return out, err
				}
			}
		default:
			more, err := c.readHeader(avail)
			if err != nil {
				return out, err
			}
			if more {
				return out, nil // need more bytes
			}
		}
	}
	return out, nil
}

// readHeader decides what to do with the message starting at avail[0]; it
// reports more when it needs more input to decide.
func (c *Conn) readHeader(avail []byte) (more bool, err error) {
	r := &c.r
	if len(avail) < 4 {
		return true, nil
	}
	n := be32(avail)
	if n > MaxMessageLen {
		return false, fmt.Errorf("%w (%d bytes)", ErrFrameTooLong, n)
	}
	if n == 0 { // keep-alive
		r.pass = 4
		return false, nil
	}
	if len(avail) < 5 {
		return true, nil
	}
	id := avail[4]
	total := 4 + int(n)
	r.piece = false
	switch id {
	case msgChoke, msgUnchoke, msgInterested, msgNotInterested, msgHaveAll, msgHaveNone:
		if n != 1 {
			return false, fmt.Errorf("%w: message %d with length %d", ErrBadMessage, id, n)
		}
		c.onPeerMessage(id, nil)
	case msgRequest:
		if n != 13 {
			return false, fmt.Errorf("%w: request with length %d", ErrBadMessage, n)
		}
		if len(avail) < 17 {
			return true, nil
		}
		if !c.wantRequest(avail[5:17]) || !c.fitRequest(avail[5:17]) || c.holdLastBlock(avail[5:17]) {
			r.off += 17
			return false, nil
		}
	case msgCancel:
		if n == 13 {
			if len(avail) < 17 {
				return true, nil
			}
			c.cancelHeld(avail[5:17])
		}
	case msgPiece:
		if n < 9 {
			return false, fmt.Errorf("%w: piece with length %d", ErrBadMessage, n)
		}
		if len(avail) < 13 {
			return true, nil
		}
		r.piece, r.pieceHdr = true, 13
		var key [12]byte
		copy(key[:], avail[5:13])
		binary.BigEndian.PutUint32(key[8:], n-9)
		if c.onPieceIn(key) {
			r.piece, r.skip = false, total
			return false, nil
		}
	case msgReject:
		if n != 13 {
			return false, fmt.Errorf("%w: reject with length %d", ErrBadMessage, n)
		}
		if len(avail) < 17 {
			return true, nil
		}
		if c.onRejectIn([12]byte(avail[5:17])) {
			r.off += 17 // the library gave that request up already
			return false, nil
		}
		c.onPeerMessage(id, nil)
		c.kickAfterReject()
	case msgHave:
		if n != 5 {
			return false, fmt.Errorf("%w: have with length %d", ErrBadMessage, n)
		}
		if len(avail) < total {
			return true, nil // held whole: an index out of range never reaches the library
		}
		if err := c.onPeerMessage(id, avail[5:total]); err != nil {
			return false, err
		}
	case msgBitfield:
		if err := c.checkBitfieldLen(int(n) - 1); err != nil {
			return false, err
		}
		r.capture, r.capID = captureBuf(r.small[:0], total), id
	case msgExtended:
		if n < 2 {
			return false, fmt.Errorf("%w: extended message with length %d", ErrBadMessage, n)
		}
		if len(avail) < 6 {
			return true, nil
		}
		switch ext := avail[5]; {
		case ext == 0: // the peer's extended handshake: held, checked, rewritten
			if total > 4+maxExtHandshake {
				return false, fmt.Errorf("%w: %d bytes", ErrBadExtHandshake, n)
			}
			if len(avail) < total {
				return true, nil
			}
			msg, err := c.onPeerExtHandshake(avail[:total])
			if err != nil {
				return false, err
			}
			r.inject = append(r.inject, msg...)
			r.off += total
			c.maybeFetchInfo()
			c.maybeFriendsHello()
			return false, nil
		case c.isMarker(ext):
			// The peer's stream is compressed from the next byte on: what
			// is buffered after the marker goes to the decoder.
			if total > maxMarker {
				return false, fmt.Errorf("%w: lt_compress message of %d bytes", ErrCompressedStream, n)
			}
			if len(avail) < total {
				return true, nil
			}
			if err := c.onMarker(avail[:total], avail[total:]); err != nil {
				return false, err
			}
			r.end = r.off
			return false, nil
		case c.isFriendsExt(ext):
			if total > 4+maxFriendsMsg {
				return false, fmt.Errorf("%w: bts_friends message of %d bytes", ErrBadMessage, n)
			}
			if len(avail) < total {
				return true, nil
			}
			if err := c.onFriendsMsg(avail[6:total]); err != nil {
				return false, err
			}
			r.off += total
			return false, nil
		case c.decodedExt(ext):
			// ut_metadata and ut_pex messages are bencoded: held whole and
			// their dictionary checked before the library decodes it; the
			// metadata the layer fetches itself stops here.
			if total > 4+maxDecodedExt {
				return false, fmt.Errorf("%w: extension message %d of %d bytes", ErrBadMessage, ext, n)
			}
			if len(avail) < total {
				return true, nil
			}
			deliver, err := c.onDecodedExt(ext, avail[6:total])
			if err != nil {
				return false, err
			}
			if !deliver {
				r.off += total
				return false, nil
			}
		}
	}
	r.pass = total
	return false, nil
}

// ErrEncrypted is returned on a connection that starts with an MSE
// handshake when the layer refuses encrypted connections.
var ErrEncrypted = errors.New("wire: encrypted (MSE) connection refused: the partial seed must read the stream")

// onEncrypted handles a stream that is not plaintext BitTorrent: it is
// passed through unread, or refused.
func (c *Conn) onEncrypted() error {
	if c.layer.refuseEncrypted {
		if !c.refused.Swap(true) {
			c.layer.stats.refused.Add(1)
		}
		return ErrEncrypted
	}
	if !c.passthrough.Swap(true) {
		c.layer.stats.refused.Add(1)
	}
	return nil
}

// wantRequest decides whether the library may see a REQUEST for req
// (index, begin, length). A request for a piece we do not hold never reaches
// it (anacrolix would close the connection): with the fast extension the
// peer gets a REJECT, otherwise the request is dropped.
func (c *Conn) wantRequest(req []byte) bool {
	c.mu.Lock()
	ih, known, fast := c.st.infoHash, c.st.ihKnown, c.st.peerFast && c.st.ourFast
	c.mu.Unlock()
	if !known {
		return true
	}
	piece := int(be32(req))
	if c.layer.pieces.Has(ih, piece) {
		c.layer.pieces.Requested(ih, piece)
		return true
	}
	c.mu.Lock()
	c.st.dropped++
	if fast {
		c.st.rejected++
	}
	c.mu.Unlock()
	c.layer.countDropped(fast)
	if fast {
		c.inject(msgRejectBytes(req))
	}
	return false
}

// onPeerMessage updates what we know about the peer from one of its messages.
func (c *Conn) onPeerMessage(id byte, body []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	switch id {
	case msgChoke:
		s.peerChoking = true
		s.chokesIn++
		if !(s.peerFast && s.ourFast) {
			clear(s.outstanding) // BEP 3: a choke discards every request
		}
	case msgUnchoke:
		s.peerChoking = false
	case msgReject:
		s.rejectsIn++
	case msgInterested:
		s.peerInterest = true
	case msgNotInterested:
		s.peerInterest = false
	case msgHaveAll:
		s.haveAll, s.peerShown = true, true
	case msgHaveNone:
		s.haveAll, s.peerShown = false, true
		s.haveW().Reset()
	case msgHave:
		if len(body) != 4 {
			return fmt.Errorf("%w: have with %d bytes", ErrBadMessage, len(body))
		}
		i := be32(body)
		if limit := c.pieceLimit(); i >= uint32(limit) {
			return fmt.Errorf("%w: have for piece %d of %d", ErrBadMessage, i, limit)
		}
		s.haveW().Set(int(i))
	case msgBitfield:
		if n := c.layer.pieces.NumPieces(s.infoHash); n > 0 && n%8 != 0 && len(body) > 0 &&
			body[len(body)-1]&(0xff>>(n%8)) != 0 {
			return fmt.Errorf("%w: bitfield has spare bits set", ErrBadMessage) // BEP 3
		}
		s.haveW().setFromBitfield(body)
		s.peerShown = true
	}
	return nil
}

// pieceLimit is one past the highest piece index a peer may name: the
// torrent's piece count, or before the metadata is known the most any
// torrent btslave accepts can have.
func (c *Conn) pieceLimit() int {
	if n := c.layer.pieces.NumPieces(c.st.infoHash); n > 0 {
		return n
	}
	return torrentfile.MaxPieces
}

// checkBitfieldLen refuses a BITFIELD of n payload bytes that does not fit
// the torrent (BEP 3: exactly ceil(pieces/8) bytes) or, before the
// metadata is known, any torrent btslave accepts.
func (c *Conn) checkBitfieldLen(n int) error {
	c.mu.Lock()
	ih := c.st.infoHash
	c.mu.Unlock()
	if pieces := c.layer.pieces.NumPieces(ih); pieces > 0 {
		if n != (pieces+7)/8 {
			return fmt.Errorf("%w: bitfield of %d bytes for %d pieces", ErrBadMessage, n, pieces)
		}
		return nil
	}
	if n > (torrentfile.MaxPieces+7)/8 {
		return fmt.Errorf("%w: bitfield of %d bytes, more than any torrent", ErrBadMessage, n)
	}
	return nil
}

// onHandshake records the handshake of one side.
func (c *Conn) onHandshake(hs []byte, ours bool) {
	reserved, ih := hs[20:28], hs[28:48]
	c.mu.Lock()
	if ours {
		c.st.ourFast = fastBit(reserved)
		copy(c.st.fr.ourPeerID[:], hs[48:68])
	} else {
		c.st.peerFast = fastBit(reserved)
		c.st.peerExt = extendedBit(reserved)
		copy(c.st.peerID[:], hs[48:68])
	}
	first := !c.st.ihKnown
	if first {
		copy(c.st.infoHash[:], ih)
		c.st.ihKnown = true
	}
	c.mu.Unlock()
	if first {
		c.layer.register(c)
	}
}

// ---- write side -------------------------------------------------------------

type writer struct {
	hsLeft int
	hs     [handshakeLen]byte

	pend []byte // header bytes seen but not yet decided on
	pass int    // bytes of the current message still to pass
	// hold collects a whole message we rewrite (our extended handshake).
	hold     []byte
	holdLeft int
	capture  []byte
	capID    byte
	piece    bool
	small    [32]byte // capture space for small messages (REQUEST, HAVE)
	pieceHdr int      // PIECE header bytes still to pass before the block
	skip     int      // bytes of a dropped message still to drop (HAVE to a seed)
	// withheld collects a HAVE being withheld (offer.go) while skipped.
	withheld []byte
	padding  int // zeros to send after the current PIECE (padPiece)
	curPiece int // the index of the current PIECE
	// sentNow is this write's payload per piece, while trackSent.
	sentNow []pieceBytes
	// dirty is set when this write's output differs from its input (bytes
	// held from or to another write, rewritten or injected).
	dirty bool
	// ext is our extended handshake, held until we know whether the peer
	// is a seed; deferred is everything the library wrote after it.
	ext, deferred []byte
	// holdPartial is set when the held extended handshake is for a
	// partial seed (it waits for the peer's bitfield).
	holdPartial bool
	// zRest follows our lt_compress marker in this write: it goes through
	// the encoder zAlgo, which starts once what precedes is sent.
	zRest []byte
	zAlgo algo
	// dzAt and dzAlgo mark such a marker's end in deferred.
	dzAt   int
	dzAlgo algo

	segs net.Buffers
}

// Write passes the library's bytes to the peer, rewriting our extended
// handshake, tracking what we advertise, pacing, and sending injected
// messages at the next message boundary.
func (c *Conn) Write(p []byte) (int, error) {
	if c.refused.Load() {
		return 0, ErrEncrypted
	}
	if c.passthrough.Load() {
		return c.Conn.Write(p)
	}
	c.wmu.Lock()
	n, err := c.writeLocked(p)
	c.wmu.Unlock()
	if err == nil {
		c.tryRelease()
		c.flushQueue()
	}
	return n, err
}

func (c *Conn) writeLocked(p []byte) (int, error) {
	w := &c.w
	if err := c.releaseLocked(); err != nil {
		return 0, err
	}
	w.segs = w.segs[:0]
	payload := 0
	for i := 0; i < len(p); {
		rest := p[i:]
		switch {
		case w.hsLeft > 0:
			got := handshakeLen - w.hsLeft
			k := min(w.hsLeft, len(rest))
			copy(w.hs[got:], rest[:k])
			if !bytes.HasPrefix([]byte(pstr), w.hs[:min(got+k, len(pstr))]) {
				if err := c.onEncrypted(); err != nil {
					return 0, err
				}
				w.segs = append(w.segs, rest)
				w.dirty = true
				i = len(p)
				continue
			}
			if c.layer.requireEncrypted && c.outgoing {
				// The library's plaintext retry (incoming plaintext was
				// refused before this layer, by decryptConn).
				return 0, ErrPlaintext
			}
			w.segs = append(w.segs, rest[:k])
			i += k
			w.hsLeft -= k
			if w.hsLeft == 0 {
				c.onHandshake(w.hs[:], true)
			}
		case w.hold != nil:
			k := min(w.holdLeft, len(rest))
			w.hold = append(w.hold, rest[:k]...)
			w.holdLeft -= k
			i += k
			if w.holdLeft == 0 {
				c.heldExtHandshake(w.hold)
				w.hold = nil
			}
			w.dirty = true
		case w.skip > 0:
			k := min(w.skip, len(rest))
			if w.withheld != nil {
				w.withheld = append(w.withheld, rest[:k]...)
			}
			w.skip -= k
			i += k
			w.dirty = true
			if w.skip == 0 && len(w.withheld) == 9 {
				c.onWithheld(int(be32(w.withheld[5:9])))
			}
			if w.skip == 0 {
				w.withheld = nil
			}
		case w.pass > 0:
			k := min(w.pass, len(rest))
			w.segs = append(w.segs, rest[:k])
			if w.capture != nil {
				w.capture = append(w.capture, rest[:k]...)
			}
			if w.piece {
				h := min(k, w.pieceHdr)
				w.pieceHdr -= h
				payload += k - h
				if k > h && c.trackSent.Load() {
					w.sentNow = append(w.sentNow, pieceBytes{w.curPiece, int64(k - h)})
				}
			}
			w.pass -= k
			i += k
			if w.pass == 0 && w.capture != nil {
				c.onOurMessage(w.capID, w.capture[5:])
				w.capture = nil
			}
			if w.pass == 0 && w.padding > 0 {
				payload += w.padding
				w.endPadding()
			}
		default:
			// Collect the header: 4 length bytes, the id, and for extended
			// messages the extension id; decide as soon as it is whole.
			start, fromPrev := i, len(w.pend) > 0
			for len(w.pend) < headerNeed(w.pend) && i < len(p) {
				w.pend = append(w.pend, p[i])
				i++
			}
			if len(w.pend) < headerNeed(w.pend) {
				w.dirty = true // held to the next write
				continue
			}
			hdr := p[start:i]
			if fromPrev {
				hdr = append([]byte(nil), w.pend...)
				w.dirty = true
			}
			w.pend = w.pend[:0]
			c.decideOutbound(hdr)
		}
	}
	if w.hsLeft == 0 && w.hold == nil && w.pass == 0 && len(w.pend) == 0 {
		// At a message boundary: injected messages may go now.
		if q, at, a := c.takeQueue(); q != nil {
			w.segs = append(w.segs, q[:at])
			w.zRest, w.zAlgo = q[at:], a
			w.dirty = true
		}
	}
	if payload > 0 {
		c.mu.Lock()
		c.st.bytesUp += int64(payload)
		for _, pb := range w.sentNow {
			if c.st.sent == nil {
				c.st.sent = map[int]int64{}
			}
			c.st.sent[pb.piece] += pb.n
		}
		c.mu.Unlock()
		w.sentNow = w.sentNow[:0]
	}
	if c.deferring.Load() {
		// Held behind our extended handshake until the peer shows what
		// it has (releaseLocked).
		for _, seg := range w.segs {
			w.deferred = append(w.deferred, seg...)
		}
		if w.zAlgo != algoNone {
			// Our marker was queued before this handshake came (a
			// second one): the encoder starts where it ends.
			w.dzAt, w.dzAlgo = len(w.deferred), w.zAlgo
			w.deferred = append(w.deferred, w.zRest...)
			w.zRest, w.zAlgo = nil, algoNone
		}
		clear(w.segs)
		w.dirty = false
		return len(p), nil
	}
	if err := c.pace(p); err != nil {
		return 0, err
	}
	var err error
	switch {
	case w.dirty:
		err = c.send(w.segs)
	case c.zw == nil:
		// Nothing changed, held or added: the library's bytes as they are.
		_, err = c.Conn.Write(p)
	default:
		err = c.send(net.Buffers{p})
	}
	if err == nil && w.zAlgo != algoNone {
		err = c.startCompress(w.zAlgo, w.zRest)
	}
	clear(w.segs) // do not keep the caller's buffer alive
	w.dirty, w.zRest, w.zAlgo = false, nil, algoNone
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// captureBuf returns small when a message of total bytes fits it, so that
// the frequent small messages are parsed without allocating.
func captureBuf(small []byte, total int) []byte {
	if total <= cap(small) {
		return small
	}
	return make([]byte, 0, total)
}

// headerNeed is how many header bytes decide an outbound message.
func headerNeed(pend []byte) int {
	switch {
	case len(pend) < 4 || be32(pend) == 0:
		return 4
	case len(pend) >= 5 && pend[4] == msgExtended && be32(pend) >= 2:
		return 6
	case len(pend) >= 5 && pend[4] == msgPiece && be32(pend) >= 9:
		return 13 // index and begin: padPiece
	default:
		return 5
	}
}

// decideOutbound acts on a complete message header (4 to 6 bytes).
func (c *Conn) decideOutbound(hdr []byte) {
	w := &c.w
	n := be32(hdr)
	total := 4 + int(n)
	w.piece, w.capture = false, nil
	if n == 0 {
		w.segs = append(w.segs, hdr)
		return
	}
	id := hdr[4]
	if id != msgExtended && !c.begun.Load() {
		c.begun.Store(true)
	}
	switch id {
	case msgExtended:
		if len(hdr) >= 6 && hdr[5] == 0 && total <= 4+maxExtHandshake {
			// Held whole: it gains the compression keys, and in partial-
			// seed mode waits for the peer's bitfield.
			w.holdPartial = c.layer.pieces.PartialSeed(c.infoHash())
			if w.holdPartial || c.layer.comp.on() || c.layer.friends != nil {
				w.hold = append([]byte(nil), hdr...)
				w.dirty = true
				w.holdLeft = total - len(hdr)
				if w.holdLeft == 0 {
					c.heldExtHandshake(w.hold)
					w.hold = nil
				}
				return
			}
			w.capture, w.capID = append(make([]byte, 0, total), hdr...), id
		}
	case msgInterested, msgNotInterested:
		if total == 5 && !c.ourInterest(id) {
			w.dirty = true // kept from the peer: our interest is held
			return
		}
	case msgChoke, msgUnchoke, msgHaveAll, msgHaveNone:
		c.onOurMessage(id, nil)
	case msgHave, msgBitfield, msgRequest, msgCancel:
		if id == msgHave && total == 9 && c.peerIsSeed() {
			// A seed needs no HAVE, and one that has counted a HAVE for
			// every piece (pieces we evicted and fetched again included:
			// it ignores lt_donthave or lacks it) takes us for a seed,
			// drops us as seed-to-seed and, for Transmission, refuses the
			// address until restarted.
			w.skip = total - len(hdr)
			w.dirty = true
			c.mu.Lock()
			c.st.havesKept++
			c.mu.Unlock()
			return
		}
		if id == msgHave && total == 9 && len(hdr) < total && c.withhold.Load() {
			// Kept until the repeater shows it (offer.go).
			w.skip = total - len(hdr)
			w.withheld = append(w.small[:0], hdr...)
			w.dirty = true
			return
		}
		w.capture, w.capID = append(captureBuf(w.small[:0], total), hdr...), id
	case msgPiece:
		w.piece = true
		w.pieceHdr = max(13-len(hdr), 0) // index and begin precede the block
		if len(hdr) == 13 {
			w.curPiece = int(be32(hdr[5:9]))
			if hdr, w.padding = c.padPiece(hdr); w.padding > 0 {
				w.dirty = true
			}
		}
	}
	w.segs = append(w.segs, hdr)
	w.pass = total - len(hdr)
	if w.pass == 0 && w.capture != nil {
		c.onOurMessage(w.capID, w.capture[5:])
		w.capture = nil
	}
	if w.pass == 0 && w.padding > 0 {
		w.endPadding()
	}
}

// pieceBytes is payload sent of one piece.
type pieceBytes struct {
	piece int
	n     int64
}

// TrackSent turns on (or off) counting the payload sent on this
// connection per piece, for SentPieces: a helper counts what it forwarded
// to its master, to measure the overlap between helpers. Off, nothing is
// kept (a swarm connection needs no such map).
func (c *Conn) TrackSent(on bool) { c.trackSent.Store(on) }

// SentPieces returns a copy of the payload sent per piece since TrackSent
// was turned on.
func (c *Conn) SentPieces() map[int]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]int64, len(c.st.sent))
	for p, n := range c.st.sent {
		out[p] = n
	}
	return out
}

// peerIsSeed reports whether the peer has every piece (HAVE ALL, or a
// bitfield and HAVEs covering the torrent).
func (c *Conn) peerIsSeed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.haveAll {
		return true
	}
	n := c.layer.pieces.NumPieces(c.st.infoHash)
	return n > 0 && c.st.have.Count() >= n
}

// endPadding sends the zeros padPiece added after a PIECE's block.
func (w *writer) endPadding() {
	w.segs = append(w.segs, make([]byte, w.padding))
	w.padding, w.dirty = 0, true
}

// onOurMessage tracks what we told the peer.
func (c *Conn) onOurMessage(id byte, body []byte) {
	if id == msgExtended {
		if len(body) > 0 && body[0] == 0 {
			c.onOurExtHandshake(body[1:])
			c.maybeFetchInfo()
			c.maybeFriendsHello()
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	switch id {
	case msgChoke:
		s.amChoking = true
	case msgUnchoke:
		s.amChoking = false
	case msgHaveAll:
		s.advW().SetRange(c.layer.pieces.NumPieces(s.infoHash))
		s.announced.SetRange(c.layer.pieces.NumPieces(s.infoHash))
	case msgHaveNone:
		s.advW().Reset()
	case msgHave:
		if len(body) == 4 {
			s.advW().Set(int(be32(body)))
			s.announced.Set(int(be32(body)))
		}
	case msgCancel:
		if len(body) == 12 {
			k := [12]byte(body)
			if _, ok := s.outstanding[k]; ok {
				s.cancelsOut++
				delete(s.outstanding, k)
				if s.cancelled == nil {
					s.cancelled = map[[12]byte]time.Time{}
				}
				s.cancelled[k] = time.Now()
			}
		}
	case msgRequest:
		if len(body) == 12 {
			s.requestsOut++
			if s.outstanding == nil {
				s.outstanding = map[[12]byte]sentRequest{}
			}
			s.reqSeq++
			s.outstanding[[12]byte(body)] = sentRequest{time.Now(), s.reqSeq}
		}
	case msgBitfield:
		s.advW().setFromBitfield(body)
		for i := range len(body) * 8 {
			if s.advertised.Has(i) {
				s.announced.Set(i)
			}
		}
	}
}

// extDeferTimeout bounds how long our extended handshake waits for the
// peer's bitfield (a variable for tests).
var extDeferTimeout = time.Second

// extHandshakeReady holds our complete extended handshake (partial-seed
// mode) until we know whether the peer is a seed: seeds get no upload_only,
// because Transmission and libtorrent seeds drop a peer that says it, as
// seed-to-seed, and a repeater must fetch from seeds. Everything the
// library writes meanwhile waits behind it, in order.
func (c *Conn) extHandshakeReady(msg []byte) {
	c.onOurExtHandshake(msg[6:])
	c.w.ext = append([]byte(nil), msg...)
	c.deferUntil.Store(time.Now().Add(extDeferTimeout).UnixNano())
	c.deferring.Store(true)
	c.releaseLocked()
	// Our ids are known now: what waits for both extended handshakes
	// starts here, whether the handshake went out at once (the peer's
	// bitfield came first) or waits. Its messages are queued and go out
	// behind the handshake (flushQueue holds them while it waits).
	c.maybeFetchInfo()
	c.maybeFriendsHello()
	if c.deferring.Load() {
		// Nothing else may come to release it: a quiet peer (no pieces, no
		// fast extension, so no bitfield) sends nothing, the library
		// writes nothing more and the reader is blocked. The wait ends on
		// time whatever happens.
		time.AfterFunc(extDeferTimeout, c.releaseDue)
	}
}

// flushSegsLocked writes what this write passed before our extended
// handshake (the BitTorrent handshake, when the library writes both at
// once): only what follows the held handshake waits behind it.
func (c *Conn) flushSegsLocked() {
	if len(c.w.segs) == 0 {
		return
	}
	c.send(c.w.segs) // an error shows on the next write
	clear(c.w.segs)
	c.w.segs = c.w.segs[:0]
}

// releaseDue releases a held extended handshake whose wait ran out.
func (c *Conn) releaseDue() {
	if !c.deferring.Load() || c.closed.Load() {
		return
	}
	c.wmu.Lock()
	err := c.releaseLocked()
	c.wmu.Unlock()
	if err == nil {
		c.flushQueue()
	}
	c.maybeFetchInfo()
	c.maybeFriendsHello()
}

// releaseLocked sends the held extended handshake and what followed it
// once the peer's bitfield (HAVE ALL, HAVE NONE, BITFIELD) was seen, or the
// wait ran out. wmu must be held.
func (c *Conn) releaseLocked() error {
	if !c.deferring.Load() {
		return nil
	}
	c.mu.Lock()
	seed, drops := c.st.haveAll, c.st.dropsUploadOnly
	if n := c.layer.pieces.NumPieces(c.st.infoHash); n > 0 && c.st.have.Count() >= n {
		seed = true
	}
	// A seed gets no upload_only; a leecher's extended handshake tells
	// whether it drops upload-only peers.
	known := c.st.peerShown && (seed || c.st.extShown || !c.st.peerExt)
	c.mu.Unlock()
	if !known && time.Now().UnixNano() < c.deferUntil.Load() {
		return nil
	}
	w := &c.w
	out := w.ext
	if !seed && !drops {
		out = c.rewriteExtHandshake(w.ext)
	}
	at, a := len(out)+w.dzAt, w.dzAlgo
	out = append(out, w.deferred...)
	w.ext, w.deferred, w.dzAt, w.dzAlgo = nil, nil, 0, algoNone
	c.deferring.Store(false)
	if a == algoNone {
		at = len(out)
	}
	err := c.send(net.Buffers{out[:at]})
	if err == nil && a != algoNone {
		err = c.startCompress(a, out[at:])
	}
	c.ourExtSent()
	return err
}

// tryRelease releases a held extended handshake when it is due, unless a
// write is in progress (which releases it itself).
func (c *Conn) tryRelease() {
	if !c.deferring.Load() || !c.wmu.TryLock() {
		return
	}
	c.releaseLocked()
	c.wmu.Unlock()
	c.flushQueue()
}

// pace waits for the peer's upload allowance.
func (c *Conn) pace(p []byte) error {
	lim := c.limiter.Load()
	if lim == nil {
		return nil
	}
	for n := len(p); n > 0; {
		k := min(n, lim.Burst())
		if err := lim.WaitN(c.ctx, k); err != nil {
			return fmt.Errorf("wire: pacing: %w", err)
		}
		n -= k
	}
	return nil
}

// inject queues a whole message for the peer; it goes out at the next
// message boundary of our outbound stream.
func (c *Conn) inject(msg []byte) {
	if c.closed.Load() {
		return
	}
	c.qmu.Lock()
	c.queue = append(c.queue, msg...)
	c.qmu.Unlock()
	c.flushQueue()
}

// takeQueue takes the queued messages; when our lt_compress marker is
// among them, at is where it ends and a is the algorithm for the rest,
// else at is len(q).
func (c *Conn) takeQueue() (q []byte, at int, a algo) {
	im := c.interestMsgLocked()
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if len(c.queue) == 0 {
		if im != nil {
			return append([]byte(nil), im...), len(im), algoNone
		}
		return nil, 0, algoNone
	}
	q, at, a = append(im[:len(im):len(im)], c.queue...), len(im)+len(c.queue), c.zAlgo
	if a != algoNone {
		at = len(im) + c.zAt
	}
	c.queue, c.zAt, c.zAlgo = nil, 0, algoNone
	return q, at, a
}

// flushQueue writes queued messages when nobody is writing and the stream
// is at a boundary. Whoever holds wmu checks the queue again after
// releasing it, so a message queued during a write is not stranded.
func (c *Conn) flushQueue() {
	for {
		c.qmu.Lock()
		empty := len(c.queue) == 0 && !(c.interestDirty.Load() && c.begun.Load())
		c.qmu.Unlock()
		// While our extended handshake is held, so is everything after it.
		if empty || c.passthrough.Load() || c.deferring.Load() || !c.wmu.TryLock() {
			return
		}
		w := &c.w
		if w.hsLeft != 0 || w.hold != nil || w.pass != 0 || len(w.pend) != 0 {
			c.wmu.Unlock()
			return // the write in progress will flush at its boundary
		}
		q, at, a := c.takeQueue()
		var err error
		if q != nil {
			c.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			err = c.send(net.Buffers{q[:at]})
			if err == nil && a != algoNone {
				err = c.startCompress(a, q[at:])
			}
			c.Conn.SetWriteDeadline(time.Time{})
		}
		c.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

func (c *Conn) infoHash() metainfo.Hash {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.infoHash
}
