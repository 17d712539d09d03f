package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/btslave/btslave/internal/torrentfile"
)

// The read side: what the peer sends, on its way to the library.

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
