package wire

import "time"

// Our requests to the peer: when to give one up (a REJECT synthesized for
// the library, which has no request timeout of its own), and which of the
// peer's answers the library no longer expects (anacrolix v1.61 closes the
// connection on an unexpected PIECE or an invalid REJECT).

// onPieceIn books the peer's PIECE for request key; late is set for the
// answer to a request we gave up on and the library no longer expects:
// it is dropped.
func (c *Conn) onPieceIn(key [12]byte) (late bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	s.piecesIn++
	if r, ok := s.outstanding[key]; ok {
		delete(s.outstanding, key)
		if r.seq > s.answeredSeq {
			s.answeredSeq = r.seq
		}
		s.answeredAt = time.Now()
		return false
	}
	if _, ok := s.cancelled[key]; ok {
		delete(s.cancelled, key)
		s.afterCancel++
		return false
	}
	if _, ok := s.expired[key]; ok {
		delete(s.expired, key)
		s.lateDropped++
		c.layer.stats.lateDropped.Add(1)
		return true
	}
	return false
}

// libraryAwaitsCancelAck mirrors anacrolix v1.61's remoteRejectsCancels:
// after a CANCEL it waits for the peer's REJECT only from fast peers other
// than Transmission before 4.0 (which did not send one; when it does all
// the same, the library takes it for invalid and closes the connection).
// mu must be held.
func (s *peerState) libraryAwaitsCancelAck() bool {
	if !(s.peerFast && s.ourFast) {
		return false
	}
	if s.transmission() {
		return s.peerID[3] >= '4'
	}
	return true
}

// transmission reports whether the peer is Transmission, by its peer id
// ("-TR" and the version). mu must be held.
func (s *peerState) transmission() bool { return string(s.peerID[:3]) == "-TR" }

// onRejectIn books the peer's REJECT of request key; late is set when the
// library has no such request (we gave it up already, or the peer
// rejects twice, as Transmission 3.00 did in the crowd bench): the library
// would take it for an invalid REJECT and close the connection, so it is
// dropped.
func (c *Conn) onRejectIn(key [12]byte) (late bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	if _, ok := s.outstanding[key]; ok || !(s.peerFast && s.ourFast) {
		delete(s.outstanding, key)
		return false // a REJECT without the fast extension: the library's to judge
	}
	if _, ok := s.cancelled[key]; ok {
		delete(s.cancelled, key)
		if s.libraryAwaitsCancelAck() {
			return false
		}
	}
	delete(s.expired, key)
	s.lateDropped++
	c.layer.stats.lateDropped.Add(1)
	return true
}

// sentRequest is when, and as which, we sent a request.
type sentRequest struct {
	at  time.Time
	seq uint64
}

// orderSlack is how many requests sent after one must be answered before
// that one counts as skipped: Transmission and libtorrent answer in order,
// give or take their disk reads; anacrolix answers its queue in no order
// at all, which is why a skipped request must also be RequestTimeout old.
const orderSlack = 32

// RequestTimeout is how long a fast peer that unchokes us may leave one of
// our requests unanswered before the library is told it was rejected.
// Some clients (Transmission 3.00 under load) drop requests silently, and
// anacrolix has no request timeout of its own: it would wait forever.
//
// The age of a request is not enough: a seed that splits its upload among
// many peers takes longer than that to work through a deep queue of ours
// (anacrolix keeps up to 2 x its peak in flight: 250 blocks, 4 MiB, are
// 36 s at a seventh of 768 KiB/s), and a REJECT we synthesized for a
// request it then answers made the library close the connection
// ("received unexpected chunk"): the crowd bench lost its seed that way,
// and the master bench its master. So a request is given up on only when
// the peer answered nothing for RequestTimeout since we sent it, or when
// it is RequestTimeout old and at least orderSlack requests sent after it
// were answered (a peer that drops some requests and answers the rest);
// and a late answer is dropped, not handed to the library. (A third of
// RequestTimeout for a skipped request was too soon: an anacrolix seed,
// which answers in no order, shared by five leechers that keep 64
// requests each at it, had requests "skipped" for seconds and stalled the
// demo's crowd.)
var RequestTimeout = 15 * time.Second

// expireRequests synthesizes a REJECT, for the library, for each request
// the peer left unanswered past RequestTimeout, and schedules a kick. It
// returns when the oldest remaining request will be due (zero if none).
func (c *Conn) expireRequests() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	now := time.Now()
	for k, at := range s.expired {
		if now.Sub(at) > 4*RequestTimeout {
			delete(s.expired, k) // the peer never answered it after all
		}
	}
	for k, at := range s.cancelled {
		if now.Sub(at) > 4*RequestTimeout {
			delete(s.cancelled, k)
		}
	}
	if len(s.outstanding) == 0 || !(s.peerFast && s.ourFast) || s.peerChoking {
		return time.Time{}
	}
	var next time.Time
	expired := 0
	for k, rq := range s.outstanding {
		// Silent: nothing answered since it was sent.
		due := rq.at.Add(RequestTimeout)
		if s.answeredAt.After(rq.at) {
			due = s.answeredAt.Add(RequestTimeout)
		}
		// Skipped: later requests answered, and it is as old.
		if skipped := rq.at.Add(RequestTimeout); rq.seq+orderSlack < s.answeredSeq && skipped.Before(due) {
			due = skipped
		}
		if now.Before(due) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		delete(s.outstanding, k)
		if s.expired == nil {
			s.expired = map[[12]byte]time.Time{}
		}
		s.expired[k] = now
		c.r.inject = append(c.r.inject, msgRejectBytes(k[:])...)
		s.timedOut++
		expired++
	}
	if expired > 0 && c.r.kickAt.IsZero() {
		c.r.kickAt = now.Add(kickDelay)
		if next.IsZero() || c.r.kickAt.Before(next) {
			next = c.r.kickAt
		}
		c.layer.stats.kicks.Add(1)
	}
	if expired > 0 {
		c.layer.stats.timedOut.Add(int64(expired))
	}
	return next
}

// kickDelay is how long after a REJECT the CHOKE+UNCHOKE kick comes.
const kickDelay = 50 * time.Millisecond

// kickAfterReject works around anacrolix v1.61: after a REJECT that
// leaves it with no outstanding requests it sends no more until the peer
// unchokes it, but a peer that rejected because its queue was full
// (Transmission at 512) is already unchoking us and never will. A CHOKE
// then UNCHOKE right after the REJECT changes nothing for a fast peer
// (requests survive a choke under BEP 6) and makes the library request
// again.
func (c *Conn) kickAfterReject() {
	c.mu.Lock()
	kick := c.st.peerFast && c.st.ourFast && !c.st.peerChoking
	if kick {
		c.st.kicks++
	}
	c.mu.Unlock()
	if !kick || !c.r.kickAt.IsZero() {
		return
	}
	// Later, not now: the library handles the REJECT by scheduling a
	// request update that adds nothing, and an UNCHOKE seen before that
	// update runs is folded into it. kickDelay lets it run first.
	c.r.kickAt = time.Now().Add(kickDelay)
	c.layer.stats.kicks.Add(1)
}
