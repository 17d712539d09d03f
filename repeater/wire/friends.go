package wire

import (
	"fmt"
	"log/slog"

	"github.com/anacrolix/torrent/bencode"
)

// FriendsHook lets repeaters of different owners meet in a swarm (BEP 10
// extension "bts_friends", docs/friends-protocol.md): Hello makes the
// payload we send a peer that advertised the extension too, OnHello takes
// the peer's. friends.Meeter implements it; the wire layer does not import
// the friends package.
type FriendsHook interface {
	Hello(infoHash, ourPeerID, theirPeerID []byte) ([]byte, error)
	OnHello(infoHash, ourPeerID, theirPeerID, payload []byte) error
}

// FriendsExtension is the BEP 10 extension name of the swarm hello.
const FriendsExtension = "bts_friends"

// maxFriendsMsg bounds one bts_friends message (length prefix excluded).
const maxFriendsMsg = 2 + 1024

// friendsState is one connection's bts_friends exchange.
type friendsState struct {
	ourID     byte // our bts_friends id in our extended handshake; 0: not offered
	ourPeerID [20]byte
	sent, got bool
}

// SetFriends makes the layer offer bts_friends and hand hellos to h. Call
// it before the first connection.
func (l *Layer) SetFriends(h FriendsHook) { l.friends = h }

// offerFriends adds m.bts_friends to our extended handshake msg (length,
// id 20, ext id 0, dict) with the first id nothing else uses.
func (c *Conn) offerFriends(msg []byte) []byte {
	if c.layer.friends == nil {
		return msg
	}
	var d map[string]any
	if err := bencode.Unmarshal(msg[6:], &d); err != nil || d == nil {
		return msg
	}
	id := addExtension(d, FriendsExtension)
	if id == 0 {
		return msg
	}
	payload, err := bencode.Marshal(d)
	if err != nil {
		return msg
	}
	c.mu.Lock()
	c.st.fr.ourID = byte(id)
	c.mu.Unlock()
	return msgExtBytes(0, payload)
}

// isFriendsExt reports whether the peer's extension message ext is a
// bts_friends hello. c.mu must not be held.
func (c *Conn) isFriendsExt(ext byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ext != 0 && ext == c.st.fr.ourID
}

// onFriendsMsg hands the peer's hello (one per connection) to the hook. A
// refused hello is logged and otherwise ignored: the peer stays a peer.
func (c *Conn) onFriendsMsg(payload []byte) error {
	c.mu.Lock()
	s := &c.st
	if s.fr.got {
		c.mu.Unlock()
		return fmt.Errorf("%w: a second bts_friends hello", ErrBadMessage)
	}
	s.fr.got = true
	ih, ours, theirs := s.infoHash, s.fr.ourPeerID, s.peerID
	c.mu.Unlock()
	if err := c.layer.friends.OnHello(ih[:], ours[:], theirs[:], payload); err != nil {
		slog.Debug("wire: bts_friends hello refused", "peer", fmt.Sprintf("%x", theirs[:8]), "err", err)
	}
	return nil
}

// maybeFriendsHello sends our hello once both extended handshakes are
// exchanged and both offered bts_friends. c.mu must not be held.
func (c *Conn) maybeFriendsHello() {
	if c.layer.friends == nil || c.closed.Load() {
		return
	}
	c.mu.Lock()
	s := &c.st
	peer := s.extIDs[FriendsExtension]
	ready := !s.fr.sent && s.fr.ourID != 0 && s.ourExtShown && s.extShown && s.ihKnown && peer != 0
	if ready {
		s.fr.sent = true
	}
	ih, ours, theirs := s.infoHash, s.fr.ourPeerID, s.peerID
	c.mu.Unlock()
	if !ready {
		return
	}
	p, err := c.layer.friends.Hello(ih[:], ours[:], theirs[:])
	if err != nil || len(p) > maxFriendsMsg-2 {
		return
	}
	c.inject(msgExtBytes(peer, p))
}
