package wire

import (
	"math/bits"
	"time"
)

// Keeping a Transmission leecher interested (issue #9). Transmission, in
// every version to 4.1, decides which peers it is interested in only in
// its rechoke pulse, every 10 s (peer-mgr's rechokeDownloads; the
// per-message updateInterest is empty), and requests nothing from a peer
// it is not interested in. A Transmission leecher that has completed every
// piece we told it of when its pulse comes is not interested in us for the
// next 10 s, whatever we get and tell it of meanwhile. In the crowd
// matrix's Transmission-leecher cells its leechers take nearly everything
// from the repeater, and a trace showed them idle on it for 10–15 s at a
// time while told of three or four pieces they lacked.
//
// So, from such a peer only, and only from a leecher the repeater says is
// the swarm's (OfferDecision.KeepInterest: never the master), the layer
// holds back the request for the last block of the last piece it could ask
// us for (holdLastBlock): that piece stays incomplete, which Transmission's
// pulse counts as something to want from us. The request reaches the
// library as soon as the peer is told of another piece it lacks, or after
// lastBlockHold. Nothing false is said, and nothing is lost: a
// request is answered late, as a busy peer's may be. A peer's last missing
// piece is never held, and neither is a request for a piece we no longer
// hold by then (it gets a REJECT, as any such request does).

// lastBlockHold bounds how long a request stays held: one Transmission
// rechoke period, so that a pulse comes while it is.
var lastBlockHold = 10 * time.Second

// SetHoldLastBlock turns holding last-block requests on (the default) or
// off, for the benchmarks' comparisons.
func (l *Layer) SetHoldLastBlock(on bool) { l.noHoldLast.Store(!on) }

// heldPoll is how often a held request's release is checked.
const heldPoll = 250 * time.Millisecond

// heldRequest is a peer's request the layer has not passed on yet.
type heldRequest struct {
	req [12]byte // index, begin, length
	at  time.Time
}

// periodicInterest reports whether the peer's client decides its interest
// only periodically (Transmission). mu must be held.
func (s *peerState) periodicInterest() bool { return s.transmission() }

// holdLastBlock reports whether the peer's REQUEST req is held back (and
// holds it): it asks for the last block of a piece, and every other piece
// we told the peer of that it lacks it has asked the last block of too,
// so that it will have nothing left to ask us for once they arrive; and it
// lacks pieces beyond these. Transmission asks a piece's blocks in order,
// and many pieces ahead, so a piece whose last block it asked for is one it
// has asked whole. Only one request is held at a time.
func (c *Conn) holdLastBlock(req []byte) bool {
	if c.layer.noHoldLast.Load() || !c.keepInterest.Load() {
		return false
	}
	pl, ok := c.layer.pieces.(PieceLengths)
	if !ok {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	if !s.ihKnown || !s.periodicInterest() || s.haveAll {
		return false
	}
	piece := int(be32(req))
	if piece >= c.pieceLimit() {
		return false
	}
	lib, _ := pl.PieceLength(s.infoHash, piece)
	if lib <= 0 || int64(be32(req[4:]))+int64(be32(req[8:])) != lib {
		return false // not the piece's last block
	}
	s.lastAsked.Set(piece)
	// Nothing held if all the peer lacks is what we told it of: holding
	// would only delay its finish.
	if c.r.held != nil || s.freshWant(piece) || c.pieceLimit()-s.have.Count() <= s.toldLacked() {
		return false
	}
	c.r.held = &heldRequest{req: [12]byte(req), at: time.Now()}
	s.heldLast++
	c.layer.stats.heldLast.Add(1)
	return true
}

// freshWant reports whether we told the peer of a piece other than piece
// that it lacks and has not asked the last block of: something it will
// still ask us for. mu must be held.
func (s *peerState) freshWant(piece int) bool {
	for i := range s.advertised.w {
		w := s.toldLackedWord(i)
		if i < len(s.lastAsked.w) {
			w &^= s.lastAsked.w[i]
		}
		if i == piece/64 {
			w &^= 1 << (piece % 64)
		}
		if w != 0 {
			return true
		}
	}
	return false
}

// toldLacked counts the pieces we told the peer of that it lacks. mu
// must be held.
func (s *peerState) toldLacked() int {
	n := 0
	for i := range s.advertised.w {
		n += bits.OnesCount64(s.toldLackedWord(i))
	}
	return n
}

// toldLackedWord is word i of the pieces we told the peer of that it
// lacks. mu must be held.
func (s *peerState) toldLackedWord(i int) uint64 {
	w := s.advertised.w[i]
	if i < len(s.have.w) {
		w &^= s.have.w[i]
	}
	return w
}

// releaseHeld passes a held request on to the library when it is due:
// the peer has something else to want from us, or lastBlockHold passed.
// It returns when to check again (zero: nothing held). Only the reader
// calls it.
func (c *Conn) releaseHeld(now time.Time) time.Time {
	h := c.r.held
	if h == nil {
		return time.Time{}
	}
	c.mu.Lock()
	other := c.st.freshWant(int(be32(h.req[:])))
	c.mu.Unlock()
	if !other && now.Sub(h.at) < lastBlockHold {
		if due := h.at.Add(lastBlockHold); due.Before(now.Add(heldPoll)) {
			return due
		}
		return now.Add(heldPoll)
	}
	c.r.held = nil
	if c.wantRequest(h.req[:]) { // still ours to serve; otherwise rejected
		c.r.inject = append(c.r.inject, msgReqBytes(msgRequest, h.req[:])...)
	}
	return time.Time{}
}

// cancelHeld drops a held request the peer cancels; a fast peer gets the
// REJECT BEP 6 asks for, as the library never saw the request.
func (c *Conn) cancelHeld(req []byte) {
	h := c.r.held
	if h == nil || h.req != [12]byte(req) {
		return
	}
	c.r.held = nil
	c.mu.Lock()
	fast := c.st.peerFast && c.st.ourFast
	c.mu.Unlock()
	if fast {
		c.inject(msgRejectBytes(req))
	}
}
