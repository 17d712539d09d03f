package friends

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

// ExtensionName is the BEP 10 extension daemons advertise in "m" of their
// extended handshake to meet in a swarm.
const ExtensionName = "bts_friends"

// MaxSwarmHello bounds a bts_friends message's payload.
const MaxSwarmHello = 1024

// HelloSkew is how far a swarm hello's time may be from ours.
const HelloSkew = 10 * time.Minute

const swarmHelloContext = "btslave swarm hello v1\x00"

// SwarmHello is the one bts_friends message: a bencoded dictionary with
// the sender's key "k", its direct channel address "a" (may be empty), the
// time "t" (Unix seconds) and "s", the signature over the context string,
// the info hash, the sender's and the receiver's peer IDs, t and a. Bound
// to both peer IDs and the swarm, a hello cannot be replayed into another
// connection; relayed, it can only introduce its true key.
type SwarmHello struct {
	Key  []byte `bencode:"k"`
	Addr string `bencode:"a"`
	Time int64  `bencode:"t"`
	Sig  []byte `bencode:"s"`
}

// ErrStaleHello is returned for a hello whose time is too far from ours.
var ErrStaleHello = errors.New("swarm hello is too old or from the future")

func swarmHelloSigned(infoHash, from, to []byte, t int64, addr string) []byte {
	b := append([]byte(swarmHelloContext), infoHash...)
	b = append(b, from...)
	b = append(b, to...)
	b = binary.BigEndian.AppendUint64(b, uint64(t))
	return append(b, addr...)
}

// NewSwarmHello makes our hello for the peer with peer ID to, in the swarm
// infoHash, where our peer ID is from. It returns the bencoded payload.
func NewSwarmHello(id Identity, infoHash, from, to []byte, addr string, now time.Time) ([]byte, error) {
	if len(addr) > MaxAddrLen {
		return nil, fmt.Errorf("swarm hello: address of %d bytes", len(addr))
	}
	h := SwarmHello{Key: id.Public(), Addr: addr, Time: now.Unix()}
	h.Sig = id.Sign(swarmHelloSigned(infoHash, from, to, h.Time, addr))
	return bencode.Marshal(h)
}

// ParseSwarmHello decodes and checks a hello that the peer with peer ID
// from sent us (peer ID to) in the swarm infoHash.
func ParseSwarmHello(payload, infoHash, from, to []byte, now time.Time) (SwarmHello, error) {
	var h SwarmHello
	if len(payload) > MaxSwarmHello {
		return h, fmt.Errorf("swarm hello of %d bytes: %w", len(payload), ErrMalformed)
	}
	if err := bencode.Unmarshal(payload, &h); err != nil {
		return SwarmHello{}, fmt.Errorf("swarm hello: %v: %w", err, ErrMalformed)
	}
	if len(h.Key) != ed25519.PublicKeySize || len(h.Sig) != ed25519.SignatureSize || len(h.Addr) > MaxAddrLen {
		return SwarmHello{}, fmt.Errorf("swarm hello: field sizes: %w", ErrMalformed)
	}
	if !ed25519.Verify(h.Key, swarmHelloSigned(infoHash, from, to, h.Time, h.Addr), h.Sig) {
		return SwarmHello{}, fmt.Errorf("swarm hello from %s: %w", NewID(h.Key).Short(), ErrBadSignature)
	}
	if d := now.Sub(time.Unix(h.Time, 0)); d > HelloSkew || d < -HelloSkew {
		return SwarmHello{}, fmt.Errorf("swarm hello from %s, %v off: %w", NewID(h.Key).Short(), d, ErrStaleHello)
	}
	return h, nil
}

// Meet handles a checked hello: our own key is ignored, a friend is known,
// and anyone else is a friend request decided by accept (ask|auto|never).
// It reports whether the sender is now a friend.
func (bk *Book) Meet(self Identity, h SwarmHello, accept string) (bool, error) {
	if bytes.Equal(h.Key, self.Public()) {
		return false, nil
	}
	return bk.Request(ed25519.PublicKey(h.Key), h.Addr, accept)
}

// SwarmMeeter is the hook the wire layer calls for bts_friends: Hello
// gives the payload to send a peer once both sides advertised
// ExtensionName; OnHello takes the peer's. repeater/wire calls it through
// its FriendsHook (docs/friends-protocol.md, Meeting in a swarm).
type SwarmMeeter interface {
	Hello(infoHash, ourPeerID, theirPeerID []byte) ([]byte, error)
	OnHello(infoHash, ourPeerID, theirPeerID, payload []byte) error
}

// Meeter implements SwarmMeeter with an identity, a book and the accept
// policy.
type Meeter struct {
	ID     Identity
	Book   *Book
	Accept string // ask | auto | never
	Addr   string // our direct channel address, for the hello
	Now    func() time.Time
}

func (m *Meeter) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Hello implements SwarmMeeter.
func (m *Meeter) Hello(infoHash, ours, theirs []byte) ([]byte, error) {
	return NewSwarmHello(m.ID, infoHash, ours, theirs, m.Addr, m.now())
}

// OnHello implements SwarmMeeter.
func (m *Meeter) OnHello(infoHash, ours, theirs, payload []byte) error {
	h, err := ParseSwarmHello(payload, infoHash, theirs, ours, m.now())
	if err != nil {
		return err
	}
	_, err = m.Book.Meet(m.ID, h, m.Accept)
	return err
}
