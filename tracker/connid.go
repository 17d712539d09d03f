package tracker

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
)

// connIDRotation is how often the UDP connection-ID secret changes. IDs
// made with the current and the previous secret are accepted, so an ID is
// good for 2 to 4 minutes: BEP 15 lets a client use one for a minute and
// asks trackers to accept it for two.
const connIDRotation = 2 * time.Minute

// connIDs makes and checks BEP 15 connection IDs. An ID is the first 8
// bytes of AES-128 under a secret key of the client's IPv6 (or
// IPv4-mapped) address: a pseudo-random function, so an ID for an address
// cannot be guessed without having received it there, which is what makes
// a UDP announce's source address trustworthy. There is no state per
// client.
type connIDs struct {
	keys atomic.Pointer[[2]cipher.Block] // current, previous
}

func newConnIDs() (*connIDs, error) {
	c := &connIDs{}
	cur, err := newConnIDKey()
	if err != nil {
		return nil, err
	}
	c.keys.Store(&[2]cipher.Block{cur, cur})
	return c, nil
}

func newConnIDKey() (cipher.Block, error) {
	var k [16]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, fmt.Errorf("connection id secret: %w", err)
	}
	return aes.NewCipher(k[:])
}

// rotate makes a new current secret; the old current one stays valid.
func (c *connIDs) rotate() error {
	k, err := newConnIDKey()
	if err != nil {
		return err
	}
	old := c.keys.Load()
	c.keys.Store(&[2]cipher.Block{k, old[0]})
	return nil
}

// connIDBuf is the scratch space of one ID: the block cipher's input and
// output, which escape through its interface and so are kept by the
// caller (a socket's handler) instead of allocated for every packet.
type connIDBuf [32]byte

func connIDWith(b cipher.Block, ip netip.Addr, buf *connIDBuf) uint64 {
	in := ip.Unmap().As16()
	copy(buf[:16], in[:])
	b.Encrypt(buf[16:], buf[:16])
	return binary.BigEndian.Uint64(buf[16:24])
}

// make returns the connection ID for ip.
func (c *connIDs) make(ip netip.Addr, buf *connIDBuf) uint64 {
	return connIDWith(c.keys.Load()[0], ip, buf)
}

// valid reports whether id was made for ip with a secret still accepted.
func (c *connIDs) valid(ip netip.Addr, id uint64, buf *connIDBuf) bool {
	k := c.keys.Load()
	return connIDWith(k[0], ip, buf) == id || connIDWith(k[1], ip, buf) == id
}
