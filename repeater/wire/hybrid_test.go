package wire

import (
	"bytes"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
)

// hybridPieces is a fakePieces whose piece 0 is a 1234-byte file's only
// piece, padded to 64 KiB for v1 peers.
type hybridPieces struct{ fakePieces }

func (*hybridPieces) PieceLength(_ metainfo.Hash, piece int) (lib, v1 int64) {
	if piece == 0 {
		return 1234, 64 << 10
	}
	return 64 << 10, 64 << 10
}

// Ensure a v1 peer's request that reaches into a hybrid's padding reaches
// the library cut to the piece's end and is answered at the length asked,
// padded with zeros; that a block wholly in padding is answered by the
// layer; and that requests that fit pass unchanged.
func TestHybridPaddingRequests(t *testing.T) {
	for _, chunk := range []int{1, 5, 13, 4096} {
		l := New(&hybridPieces{fakePieces{have: map[int]bool{0: true, 1: true}}})
		in := cat(handshake(true), request(0, 0, 16384), request(0, 16384, 16384), request(1, 0, 16384), request(0, 0, 1000))
		fc := &fakeConn{in: bytes.NewReader(in), chunk: chunk}
		c := l.Wrap(fc, false)
		if _, err := c.Write(handshake(true)); err != nil {
			t.Fatal(err)
		}
		got, err := readAll(c, 7)
		if err != nil {
			t.Fatal(err)
		}
		want := cat(handshake(true), request(0, 0, 1234), request(1, 0, 16384), request(0, 0, 1000))
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk=%d: library saw\n%x\nwant\n%x", chunk, got, want)
		}
		// The library answers in pieces of the given size.
		tail := bytes.Repeat([]byte{9}, 1234)
		lib := cat(pieceMsg(0, 0, tail), pieceMsg(1, 0, bytes.Repeat([]byte{8}, 16384)), pieceMsg(0, 0, tail[:1000]))
		for i := 0; i < len(lib); i += chunk {
			if _, err := c.Write(lib[i:min(i+chunk, len(lib))]); err != nil {
				t.Fatal(err)
			}
		}
		out := fc.written()[handshakeLen:]
		padded := append(append([]byte(nil), tail...), make([]byte, 16384-1234)...)
		wantOut := [][]byte{
			pieceMsg(0, 16384, make([]byte, 16384)), // the layer's, sent at once
			pieceMsg(0, 0, padded),
			pieceMsg(1, 0, bytes.Repeat([]byte{8}, 16384)),
			pieceMsg(0, 0, tail[:1000]),
		}
		if !bytes.Equal(out, cat(wantOut...)) {
			t.Errorf("chunk=%d: peer got %d bytes, want %d", chunk, len(out), len(cat(wantOut...)))
		}
		if st := c.State(); st.BytesUp != 16384+16384+1000 { // the library's blocks, padded
			t.Errorf("chunk=%d: bytes up %d", chunk, st.BytesUp)
		}
	}
}

// FuzzHybrid feeds a hybrid's connection any peer stream and answers
// every request the library sees: no request reaching into the padding
// gets to the library, and the peer's stream stays whole messages.
func FuzzHybrid(f *testing.F) {
	f.Add(cat(handshake(true), request(0, 0, 16384), request(0, 16384, 16384), request(0, 1000, 300)), uint8(3))
	f.Add(cat(handshake(true), request(0, 65530, 16384), request(1, 0, 16384)), uint8(13))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		fc := &fakeConn{in: bytes.NewReader(in), chunk: int(chunk%32) + 1}
		c := New(&hybridPieces{fakePieces{have: map[int]bool{0: true, 1: true}}}).Wrap(fc, false)
		if _, err := c.Write(handshake(true)); err != nil {
			t.Fatal(err)
		}
		got, _ := readAll(c, int(chunk%61)+1)
		if c.passthrough.Load() || len(got) < handshakeLen {
			return
		}
		for b := got[handshakeLen:]; len(b) >= 4; {
			n := int(be32(b))
			if len(b) < 4+n {
				break
			}
			if n == 13 && b[4] == msgRequest {
				index, begin, length := be32(b[5:]), be32(b[9:]), be32(b[13:])
				if end := int64(begin) + int64(length); index == 0 && end > 1234 && end <= 64<<10 {
					t.Fatalf("library saw a request into the padding: %d+%d", begin, length)
				}
				block := make([]byte, min(length, 1<<14))
				if _, err := c.Write(pieceMsg(index, begin, block)); err != nil {
					t.Fatal(err)
				}
			}
			b = b[4+n:]
		}
		out := fc.written()[handshakeLen:]
		for len(out) > 0 {
			if len(out) < 4 || len(out) < 4+int(be32(out)) {
				t.Fatalf("peer got a partial message: %x", out)
			}
			out = out[4+int(be32(out)):]
		}
	})
}
