package wire

import "github.com/anacrolix/torrent/metainfo"

// Interest held for the repeater (issue #9). anacrolix is interested only
// in a peer that holds a piece it is fetching now, so a repeater that
// fetches a few pieces at a time is not interested in the leechers at all
// while the swarm is young: their tit-for-tat chokers never consider it,
// although it is their best uploader once it holds anything, and its intake
// stays the seed's fair share. A held interest keeps the peer seeing
// INTERESTED whatever the library says meanwhile: the library's
// NOT_INTERESTED is kept from the peer, and an INTERESTED is injected at a
// message boundary when the library has not said it. The library's view
// (PeerState.AmInterested) is unchanged, so it still requests only what it
// fetches; PeerState.Interested is what the peer was told.

// msgInterestedBytes and msgNotInterestedBytes are the two whole messages.
var (
	msgInterestedBytes    = []byte{0, 0, 0, 1, msgInterested}
	msgNotInterestedBytes = []byte{0, 0, 0, 1, msgNotInterested}
)

// HoldInterest keeps (on) or stops keeping the peer told we are
// interested. Stopping tells the peer NOT_INTERESTED unless the library is
// interested itself.
func (c *Conn) HoldInterest(on bool) {
	if c.holdInterest.Swap(on) == on {
		return
	}
	c.interestDirty.Store(true)
	c.flushQueue()
}

// HoldInterest holds our interest in each connection of the torrent whose
// peer has one of pieces, and stops holding it in the others (nil pieces:
// in none).
func (l *Layer) HoldInterest(ih metainfo.Hash, pieces []int) {
	for _, c := range l.connsOf(ih) {
		c.HoldInterest(c.hasAny(pieces))
	}
}

// hasAny reports whether the peer has one of pieces.
func (c *Conn) hasAny(pieces []int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(pieces) > 0 && c.st.haveAll {
		return true
	}
	for _, p := range pieces {
		if c.st.have.Has(p) {
			return true
		}
	}
	return false
}

// interestMsgLocked is the message that brings what the peer was told in
// line with the library's interest and the hold, nil when none is due. wmu
// is held and the outbound stream is at a message boundary past the
// library's first message (an INTERESTED must not precede its BITFIELD).
func (c *Conn) interestMsgLocked() []byte {
	if !c.begun.Load() || !c.interestDirty.Swap(false) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	want := c.st.amInterested || c.holdInterest.Load()
	if want == c.st.shownInterest {
		return nil
	}
	c.st.shownInterest = want
	if want {
		return msgInterestedBytes
	}
	return msgNotInterestedBytes
}

// ourInterest handles the library's INTERESTED or NOT_INTERESTED header:
// false when the message must be kept from the peer (a held interest).
func (c *Conn) ourInterest(id byte) (send bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.amInterested = id == msgInterested
	if id == msgNotInterested && c.holdInterest.Load() {
		return false
	}
	c.st.shownInterest = id == msgInterested
	return true
}
