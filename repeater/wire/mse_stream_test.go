package wire

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/mse"
)

// Ensure a long decrypted stream reaches the library byte for byte, cut
// into odd writes with pauses that make the reader's own wake-up deadlines
// fire mid-stream (it wakes for our outstanding requests), as
// qBittorrent's RC4 stream does in the lab.
func TestDecryptedStreamIntact(t *testing.T) {
	for _, method := range []mse.CryptoMethod{mse.CryptoMethodRC4, mse.CryptoMethodPlaintext} {
		ih := metainfo.Hash{1, 2, 3}
		hs := handshake(true)
		copy(hs[28:48], ih[:])
		l := New(&fakePieces{n: 64, have: map[int]bool{}})
		l.Decrypt(func(yield func([]byte) bool) { yield(ih[:]) })
		peer, ours := tcpPair(t)
		c := l.Wrap(l.wrapDecrypt(ours), false)

		rng := rand.New(rand.NewPCG(1, uint64(method)))
		stream := cat(msg(msgHaveAll), msg(msgUnchoke))
		for i := range 200 {
			block := make([]byte, 16<<10)
			for j := range block {
				block[j] = byte(rng.IntN(256))
			}
			stream = append(stream, msg(msgPiece, append(u32(uint32(i%64)), append(u32(0), block...)...)...)...)
			if i%7 == 0 {
				stream = append(stream, msg(msgHave, u32(uint32(i%64))...)...)
			}
		}
		wrng := rand.New(rand.NewPCG(2, uint64(method))) // the writer's own
		go func() {
			rw, _, err := mse.InitiateHandshake(peer, ih[:], hs, method)
			if err != nil {
				t.Error(err)
				return
			}
			for off, n := 0, 0; off < len(stream); off += n {
				n = min(1+wrng.IntN(40000), len(stream)-off)
				rw.Write(stream[off : off+n])
				if wrng.IntN(40) == 0 {
					time.Sleep(1200 * time.Millisecond) // past the reader's 1 s wake-up
				}
			}
			time.Sleep(200 * time.Millisecond)
			peer.Close()
		}()
		got := make([]byte, len(hs))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, hs) {
			t.Fatalf("handshake: %x %v", got, err)
		}
		// Our handshake and requests never answered: the reader wakes
		// every second to time them out.
		c.Write(cat(hs, request(60, 0, 16<<10), request(61, 0, 16<<10)))
		var lib []byte
		buf := make([]byte, 17<<10)
		for {
			n, err := c.Read(buf[:4<<10+rng.IntN(13<<10)])
			lib = append(lib, buf[:n]...)
			if err != nil {
				break
			}
		}
		if !bytes.Equal(lib, stream) {
			i := 0
			for i < min(len(lib), len(stream)) && lib[i] == stream[i] {
				i++
			}
			t.Fatalf("method %v: library saw %d bytes, want %d; first difference at %d; layer %+v", method, len(lib), len(stream), i, l.Stats())
		}
	}
}

// Ensure messages the layer adds for the library (a kick, a synthesized
// REJECT) never overwrite input not yet parsed when it parses in the
// library's buffer: a CHOKE+UNCHOKE due in the middle of a PIECE used to
// be written over the next message's header, and the connection closed on
// a garbage length (seen with qBittorrent seeds).
func TestInjectWhileParsingInPlace(t *testing.T) {
	piece := msg(msgPiece, append(u32(3), append(u32(0), bytes.Repeat([]byte{7}, 4000)...)...)...)
	next := cat(msg(msgHave, u32(5)...), msg(msgUnchoke), msg(msgHave, u32(6)...))
	// The handshake and the first 500 bytes of the PIECE arrive first,
	// the rest of it and the next messages in one read.
	first := cat(handshake(true), piece[:500])
	in := cat(first, piece[500:], next)
	fc := &fakeConn{in: bytes.NewReader(in), chunk: len(first)}
	c := New(&fakePieces{n: 10}).Wrap(fc, false)
	buf := make([]byte, 8<<10)
	n, err := c.Read(buf)
	if err != nil || n != len(first) {
		t.Fatalf("first read: %d %v", n, err)
	}
	kick := cat(msg(msgChoke), msg(msgUnchoke))
	c.r.inject = append(c.r.inject, kick...) // a kick came due mid-PIECE
	fc.chunk = len(in)
	got := append([]byte(nil), buf[:n]...)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if err != io.EOF {
				t.Fatalf("read: %v", err)
			}
			break
		}
	}
	if want := cat(first, piece[500:], kick, next); !bytes.Equal(got, want) {
		t.Fatalf("library saw %d bytes, want %d:\n%x\nwant\n%x", len(got), len(want), got[len(got)-40:], want[len(want)-40:])
	}
}
