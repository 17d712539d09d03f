package wire

import (
	"bytes"
	"fmt"
	"net"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// The write side: what the library sends, on its way to the peer.

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
