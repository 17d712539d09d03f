package lab

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/mse"
)

// RawPeer is a scripted BitTorrent peer on a plain TCP connection: the
// hostile-input tests play attackers and quiet peers with it, byte by byte.
type RawPeer struct {
	Conn net.Conn
	rw   io.ReadWriter // Conn, or the RC4 stream over it
	r    *bufio.Reader
	// Theirs is the handshake the other side sent.
	Theirs [68]byte
}

// DialPeer connects to addr and exchanges handshakes for info hash ih,
// announcing the extension protocol (BEP 10) and, with fast, BEP 6.
func DialPeer(ctx context.Context, addr string, ih [20]byte, fast bool) (*RawPeer, error) {
	return dialPeer(ctx, addr, ih, fast, false)
}

// DialPeerMSE is DialPeer over an MSE (RC4) connection.
func DialPeerMSE(ctx context.Context, addr string, ih [20]byte, fast bool) (*RawPeer, error) {
	return dialPeer(ctx, addr, ih, fast, true)
}

func dialPeer(ctx context.Context, addr string, ih [20]byte, fast, encrypt bool) (*RawPeer, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	var rw io.ReadWriter = c
	if encrypt {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		rw, _, err = mse.InitiateHandshakeContext(ctx, c, ih[:], nil, mse.CryptoMethodRC4)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("MSE handshake with %s: %w", addr, err)
		}
		c.SetDeadline(time.Time{})
	}
	p := &RawPeer{Conn: c, rw: rw, r: bufio.NewReaderSize(rw, 64<<10)}
	if err := p.Send(Handshake(ih, fast)); err != nil {
		c.Close()
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(p.r, p.Theirs[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("read handshake from %s: %w", addr, err)
	}
	c.SetReadDeadline(time.Time{})
	return p, nil
}

// Handshake is a BitTorrent handshake for ih with the extension bit and,
// with fast, the fast-extension bit.
func Handshake(ih [20]byte, fast bool) []byte {
	b := append([]byte("\x13BitTorrent protocol"), make([]byte, 8)...)
	b[20+5] |= 0x10
	if fast {
		b[20+7] |= 0x04
	}
	b = append(b, ih[:]...)
	return append(b, []byte("-XX0000-rawpeer00000")...)
}

// Send writes messages.
func (p *RawPeer) Send(msgs ...[]byte) error {
	for _, m := range msgs {
		if _, err := p.rw.Write(m); err != nil {
			return err
		}
	}
	return nil
}

// ErrNoMessage is returned by ReadMsg when nothing came in time.
var ErrNoMessage = errors.New("no message in time")

// ReadMsg reads the next message other than a keep-alive, waiting at most
// timeout; id and payload follow BEP 3 framing.
func (p *RawPeer) ReadMsg(timeout time.Duration) (id byte, payload []byte, err error) {
	p.Conn.SetReadDeadline(time.Now().Add(timeout))
	defer p.Conn.SetReadDeadline(time.Time{})
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, nil, ErrNoMessage
			}
			return 0, nil, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 {
			continue
		}
		if n > 2<<20 {
			return 0, nil, fmt.Errorf("message of %d bytes", n)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(p.r, b); err != nil {
			return 0, nil, err
		}
		return b[0], b[1:], nil
	}
}

// Drain reads and discards what comes until the connection ends or d
// passes.
func (p *RawPeer) Drain(d time.Duration) {
	p.Conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 32<<10)
	for {
		if _, err := p.r.Read(buf); err != nil {
			return
		}
	}
}

// Close closes the connection.
func (p *RawPeer) Close() error { return p.Conn.Close() }

// Msg frames a message: length, id, payload.
func Msg(id byte, payload ...byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b, uint32(1+len(payload)))
	b[4] = id
	return append(b, payload...)
}

// ExtMsg frames a BEP 10 extended message: ext is the receiver's id for the
// extension (0: the handshake), v is bencoded, and raw follows it.
func ExtMsg(ext byte, v any, raw ...byte) []byte {
	body, err := bencode.Marshal(v)
	if err != nil {
		panic(err)
	}
	return Msg(20, append(append([]byte{ext}, body...), raw...)...)
}
