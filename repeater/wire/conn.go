package wire

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/bencode"
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

	// Read side, touched only by the library's reader goroutine.
	r reader

	// Write side, under wmu.
	wmu sync.Mutex
	w   writer

	// Injected messages wait in queue until the outbound stream is at a
	// message boundary.
	qmu   sync.Mutex
	queue []byte

	// State shared with the layer, under mu.
	mu sync.Mutex
	st peerState

	limiter atomic.Pointer[rate.Limiter]
	closed  atomic.Bool
	// begun is set once we sent a message other than the extended
	// handshake: from then on an injected HAVE cannot precede the
	// library's BITFIELD.
	begun atomic.Bool
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
	advertised   Bitset // pieces we told the peer we have
	peerChoking  bool
	peerInterest bool
	amChoking    bool
	amInterested bool
	partialSeed  bool // our handshake carried upload_only: 1
	bytesUp      int64
	bytesDown    int64
	dropped      int64 // requests for pieces we lack that the library never saw
	rejected     int64 // of those, answered with REJECT
	donthaves    int64
	havesSent    int64
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
	err      error // a read error to return once buf is drained

	hsLeft int
	hs     [handshakeLen]byte

	pass    int    // bytes of the current message still to hand over
	capture []byte // body of the current message, when we parse it
	capID   byte
	capLen  int
	// pieceHdr is how many PIECE header bytes (length, id, index, begin)
	// remain before the payload, which is counted as downloaded.
	pieceHdr int
	piece    bool
}

// Read hands the library the peer's bytes, minus requests we answer
// ourselves.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r := &c.r
	for {
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
		n, err := c.deliver(p)
		if err != nil {
			c.layer.countMalformed()
			return n, err
		}
		if n > 0 {
			return n, nil
		}
		if r.err != nil {
			return 0, r.err
		}
		// Need more bytes: make room, then read.
		if r.off > 0 {
			copy(r.buf, r.buf[r.off:r.end])
			r.end -= r.off
			r.off = 0
		}
		if r.end == len(r.buf) {
			// Only a REQUEST or a header is ever held back, so a full
			// buffer means a bug, not a big message.
			return 0, fmt.Errorf("%w: read buffer full", ErrBadMessage)
		}
		m, err := c.Conn.Read(r.buf[r.end:])
		r.end += m
		if err != nil {
			r.err = err
		}
	}
}

// deliver parses buffered bytes and copies what passes into p.
func (c *Conn) deliver(p []byte) (int, error) {
	r := &c.r
	out := 0
	for out < len(p) && r.off < r.end {
		avail := r.buf[r.off:r.end]
		switch {
		case r.hsLeft > 0:
			got := handshakeLen - r.hsLeft
			k := min(r.hsLeft, len(avail), len(p)-out)
			copy(r.hs[got:], avail[:k])
			if !bytes.HasPrefix([]byte(pstr), r.hs[:min(got+k, len(pstr))]) {
				// Not a plaintext BitTorrent handshake: MSE. Step aside.
				c.passthrough.Store(true)
				n := copy(p[out:], avail)
				r.off += n
				return out + n, nil
			}
			copy(p[out:], avail[:k])
			r.off += k
			out += k
			r.hsLeft -= k
			if r.hsLeft == 0 {
				c.onHandshake(r.hs[:], false)
			}
		case r.pass > 0:
			k := min(r.pass, len(avail), len(p)-out)
			copy(p[out:], avail[:k])
			if r.capture != nil {
				r.capture = append(r.capture, avail[:k]...)
			}
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
		if !c.wantRequest(avail[5:17]) {
			r.off += 17
			return false, nil
		}
	case msgPiece:
		if n < 9 {
			return false, fmt.Errorf("%w: piece with length %d", ErrBadMessage, n)
		}
		r.piece, r.pieceHdr = true, 13
	case msgHave, msgBitfield:
		r.capture, r.capID, r.capLen = make([]byte, 0, total), id, total
	case msgExtended:
		if n < 2 {
			return false, fmt.Errorf("%w: extended message with length %d", ErrBadMessage, n)
		}
		if len(avail) < 6 {
			return true, nil
		}
		if avail[5] == 0 { // the peer's extended handshake
			if n > maxExtHandshake {
				return false, fmt.Errorf("%w: %d bytes", ErrBadExtHandshake, n)
			}
			r.capture, r.capID, r.capLen = make([]byte, 0, total), id, total
		}
	}
	r.pass = total
	return false, nil
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
	case msgUnchoke:
		s.peerChoking = false
	case msgInterested:
		s.peerInterest = true
	case msgNotInterested:
		s.peerInterest = false
	case msgHaveAll:
		s.haveAll = true
	case msgHaveNone:
		s.haveAll = false
		s.have.Reset()
	case msgHave:
		if len(body) != 4 {
			return fmt.Errorf("%w: have with %d bytes", ErrBadMessage, len(body))
		}
		s.have.Set(int(be32(body)))
	case msgBitfield:
		s.have.setFromBitfield(body)
	case msgExtended:
		if len(body) < 1 || body[0] != 0 {
			return nil
		}
		return c.onPeerExtHandshakeLocked(body[1:])
	}
	return nil
}

type extHandshake struct {
	M          map[string]int64 `bencode:"m"`
	V          string           `bencode:"v"`
	UploadOnly int64            `bencode:"upload_only"`
}

func (c *Conn) onPeerExtHandshakeLocked(payload []byte) error {
	var h extHandshake
	if err := bencode.Unmarshal(payload, &h); err != nil {
		// Tolerate odd types in keys we do not need by decoding loosely.
		var loose map[string]any
		if err2 := bencode.Unmarshal(payload, &loose); err2 != nil {
			return fmt.Errorf("%w: %v", ErrBadExtHandshake, err2)
		}
		h = extHandshake{}
		if m, ok := loose["m"].(map[string]any); ok {
			h.M = map[string]int64{}
			for k, v := range m {
				if n, ok := v.(int64); ok {
					h.M[k] = n
				}
			}
		}
		if v, ok := loose["v"].(string); ok {
			h.V = v
		}
		if u, ok := loose["upload_only"].(int64); ok {
			h.UploadOnly = u
		}
	}
	s := &c.st
	if s.extIDs == nil {
		s.extIDs = map[string]byte{}
	}
	// A later handshake updates the map: id 0 removes an extension.
	for k, v := range h.M {
		if v <= 0 || v > 255 {
			delete(s.extIDs, k)
			continue
		}
		s.extIDs[k] = byte(v)
	}
	if h.V != "" {
		s.clientName = h.V
	}
	s.peerUpload = h.UploadOnly != 0
	return nil
}

// onHandshake records the handshake of one side.
func (c *Conn) onHandshake(hs []byte, ours bool) {
	reserved, ih := hs[20:28], hs[28:48]
	c.mu.Lock()
	if ours {
		c.st.ourFast = fastBit(reserved)
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

	segs net.Buffers
}

// Write passes the library's bytes to the peer, rewriting our extended
// handshake, tracking what we advertise, pacing, and sending injected
// messages at the next message boundary.
func (c *Conn) Write(p []byte) (int, error) {
	if c.passthrough.Load() {
		return c.Conn.Write(p)
	}
	c.wmu.Lock()
	n, err := c.writeLocked(p)
	c.wmu.Unlock()
	if err == nil {
		c.flushQueue()
	}
	return n, err
}

func (c *Conn) writeLocked(p []byte) (int, error) {
	w := &c.w
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
				c.passthrough.Store(true)
				w.segs = append(w.segs, rest)
				i = len(p)
				continue
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
				w.segs = append(w.segs, c.rewriteExtHandshake(w.hold))
				w.hold = nil
			}
		case w.pass > 0:
			k := min(w.pass, len(rest))
			w.segs = append(w.segs, rest[:k])
			if w.capture != nil {
				w.capture = append(w.capture, rest[:k]...)
			}
			if w.piece {
				payload += k
			}
			w.pass -= k
			i += k
			if w.pass == 0 && w.capture != nil {
				c.onOurMessage(w.capID, w.capture[5:])
				w.capture = nil
			}
		default:
			// Collect the header: 4 length bytes, the id, and for extended
			// messages the extension id; decide as soon as it is whole.
			for len(w.pend) < headerNeed(w.pend) && i < len(p) {
				w.pend = append(w.pend, p[i])
				i++
			}
			if len(w.pend) == headerNeed(w.pend) {
				c.decideOutbound()
			}
		}
	}
	if w.hsLeft == 0 && w.hold == nil && w.pass == 0 && len(w.pend) == 0 {
		// At a message boundary: injected messages may go now.
		if q := c.takeQueue(); q != nil {
			w.segs = append(w.segs, q)
		}
	}
	if payload > 0 {
		c.mu.Lock()
		c.st.bytesUp += int64(payload)
		c.mu.Unlock()
	}
	if err := c.pace(p); err != nil {
		return 0, err
	}
	segs := w.segs
	_, err := segs.WriteTo(c.Conn)
	clear(w.segs) // do not keep the caller's buffer alive
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// headerNeed is how many header bytes decide an outbound message.
func headerNeed(pend []byte) int {
	switch {
	case len(pend) < 4 || be32(pend) == 0:
		return 4
	case len(pend) >= 5 && pend[4] == msgExtended && be32(pend) >= 2:
		return 6
	default:
		return 5
	}
}

// decideOutbound acts on a complete header in w.pend.
func (c *Conn) decideOutbound() {
	w := &c.w
	n := be32(w.pend)
	hdr := append([]byte(nil), w.pend...)
	w.pend = w.pend[:0]
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
		if len(hdr) >= 6 && hdr[5] == 0 && c.layer.pieces.PartialSeed(c.infoHash()) {
			w.hold = hdr
			w.holdLeft = total - len(hdr)
			if w.holdLeft == 0 {
				w.segs = append(w.segs, c.rewriteExtHandshake(w.hold))
				w.hold = nil
			}
			return
		}
	case msgChoke, msgUnchoke, msgInterested, msgNotInterested, msgHaveAll, msgHaveNone:
		c.onOurMessage(id, nil)
	case msgHave, msgBitfield:
		w.capture, w.capID = append(make([]byte, 0, total), hdr...), id
	case msgPiece:
		w.piece = true
	}
	w.segs = append(w.segs, hdr)
	w.pass = total - len(hdr)
	if w.pass == 0 && w.capture != nil {
		c.onOurMessage(w.capID, w.capture[5:])
		w.capture = nil
	}
}

// onOurMessage tracks what we told the peer.
func (c *Conn) onOurMessage(id byte, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	switch id {
	case msgChoke:
		s.amChoking = true
	case msgUnchoke:
		s.amChoking = false
	case msgInterested:
		s.amInterested = true
	case msgNotInterested:
		s.amInterested = false
	case msgHaveAll:
		s.advertised.SetRange(c.layer.pieces.NumPieces(s.infoHash))
	case msgHaveNone:
		s.advertised.Reset()
	case msgHave:
		if len(body) == 4 {
			s.advertised.Set(int(be32(body)))
		}
	case msgBitfield:
		s.advertised.setFromBitfield(body)
	}
}

// rewriteExtHandshake adds upload_only: 1 to our extended handshake msg
// (length, id 20, ext id 0, bencoded dict).
func (c *Conn) rewriteExtHandshake(msg []byte) []byte {
	var d map[string]any
	if err := bencode.Unmarshal(msg[6:], &d); err != nil || d == nil {
		return msg // not ours to fix; send as the library wrote it
	}
	d["upload_only"] = int64(1)
	payload, err := bencode.Marshal(d)
	if err != nil {
		return msg
	}
	c.mu.Lock()
	c.st.partialSeed = true
	c.mu.Unlock()
	out := make([]byte, 6+len(payload))
	copy(out, u32(uint32(2+len(payload))))
	out[4], out[5] = msgExtended, 0
	copy(out[6:], payload)
	return out
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

func (c *Conn) takeQueue() []byte {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if len(c.queue) == 0 {
		return nil
	}
	q := c.queue
	c.queue = nil
	return q
}

// flushQueue writes queued messages when nobody is writing and the stream
// is at a boundary. Whoever holds wmu checks the queue again after
// releasing it, so a message queued during a write is not stranded.
func (c *Conn) flushQueue() {
	for {
		c.qmu.Lock()
		empty := len(c.queue) == 0
		c.qmu.Unlock()
		if empty || c.passthrough.Load() || !c.wmu.TryLock() {
			return
		}
		w := &c.w
		if w.hsLeft != 0 || w.hold != nil || w.pass != 0 || len(w.pend) != 0 {
			c.wmu.Unlock()
			return // the write in progress will flush at its boundary
		}
		q := c.takeQueue()
		var err error
		if q != nil {
			c.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			_, err = c.Conn.Write(q)
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
