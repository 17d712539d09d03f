package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/anacrolix/torrent/mse"
)

// MSEHandshakeTimeout bounds the encryption handshake of an incoming
// connection.
const MSEHandshakeTimeout = 20 * time.Second

// SecretKeys lists the info-hashes an incoming MSE handshake may name: the
// torrents the client serves. It must be cheap and safe to call from any
// goroutine.
type SecretKeys = mse.SecretKeyIter

// Decrypt makes the layer terminate MSE on incoming connections itself:
// the layer does the handshake with keys, decrypts what the peer sends and
// encrypts what the library sends, so the library and the layer's parser
// both see a plaintext BitTorrent stream. This is what lets a partial seed
// serve peers that open encrypted (libtorrent does by default) without
// going blind to their requests. nil turns it off.
//
// Our own outgoing connections stay plaintext.
func (l *Layer) Decrypt(keys SecretKeys) { l.secretKeys = keys }

// decryptConn is an incoming connection whose first bytes decide what it
// is: a plaintext BitTorrent handshake passes through untouched; anything
// else is taken as MSE and the handshake is done here.
type decryptConn struct {
	net.Conn
	layer *Layer

	once sync.Once
	err  error
	// rw is the decrypted stream after an MSE handshake; nil for a
	// plaintext one, which goes straight to the conn after peeked, the
	// bytes read to tell.
	rw     io.ReadWriter
	peeked []byte
}

func (l *Layer) wrapDecrypt(c net.Conn) net.Conn {
	if l.secretKeys == nil || l.refuseEncrypted {
		return c
	}
	return &decryptConn{Conn: c, layer: l}
}

// start reads the first bytes and, for MSE, runs the handshake. It runs
// once, on the first Read or Write.
func (d *decryptConn) start() {
	d.once.Do(func() {
		// One byte tells: a plaintext handshake starts with 19 (the length
		// of "BitTorrent protocol"); MSE starts with a random public key,
		// which starts with 19 one time in 256, so read up to the whole
		// protocol string in that case.
		buf := make([]byte, 0, len(pstr))
		var b [len(pstr)]byte
		for len(buf) < len(pstr) {
			n, err := d.Conn.Read(b[:len(pstr)-len(buf)])
			buf = append(buf, b[:n]...)
			if len(buf) > 0 && !bytes.HasPrefix([]byte(pstr), buf) {
				break // not plaintext
			}
			if err != nil {
				d.err = err
				return
			}
		}
		if bytes.Equal(buf, []byte(pstr)) {
			if d.layer.requireEncrypted {
				d.err = ErrPlaintext
				return
			}
			d.peeked = buf
			return
		}
		d.layer.stats.decrypted.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), MSEHandshakeTimeout)
		defer cancel()
		raw := struct {
			io.Reader
			io.Writer
		}{io.MultiReader(bytes.NewReader(buf), d.Conn), d.Conn}
		rw, _, err := mse.ReceiveHandshake(ctx, raw, d.layer.secretKeys, mse.DefaultCryptoSelector)
		if err != nil {
			d.err = fmt.Errorf("%w: %w", ErrMSEHandshake, err)
			return
		}
		d.rw = rw
	})
}

// ErrMSEHandshake is returned by a connection whose encryption handshake
// failed (unknown torrent, garbage, timeout).
var ErrMSEHandshake = errors.New("wire: MSE handshake failed")

func (d *decryptConn) Read(p []byte) (int, error) {
	d.start()
	if d.err != nil {
		return 0, d.err
	}
	if len(d.peeked) > 0 {
		n := copy(p, d.peeked)
		d.peeked = d.peeked[n:]
		return n, nil
	}
	if d.rw == nil {
		return d.Conn.Read(p)
	}
	return d.rw.Read(p)
}

func (d *decryptConn) Write(p []byte) (int, error) {
	d.start()
	if d.err != nil {
		return 0, d.err
	}
	if d.rw == nil {
		return d.Conn.Write(p)
	}
	return d.rw.Write(p)
}

// direct is the TCP connection under a plaintext stream, for vectored
// writes (net.Buffers writes them with one writev only to a *net.TCPConn);
// nil when the stream is encrypted or failed.
func (d *decryptConn) direct() net.Conn {
	d.start()
	if d.err != nil || d.rw != nil {
		return nil
	}
	return d.Conn
}
