package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/mse"

	"github.com/btslave/btslave/internal/torrentfile"
)

// fakePieces is a Pieces with a fixed answer.
type fakePieces struct {
	mu        sync.Mutex
	have      map[int]bool
	partial   bool
	n         int
	requested []int
}

func (f *fakePieces) Has(_ metainfo.Hash, p int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.have[p]
}
func (f *fakePieces) Requested(_ metainfo.Hash, p int) {
	f.mu.Lock()
	f.requested = append(f.requested, p)
	f.mu.Unlock()
}
func (f *fakePieces) PartialSeed(metainfo.Hash) bool { return f.partial }
func (f *fakePieces) NumPieces(metainfo.Hash) int    { return f.n }

// fakeConn reads a scripted peer stream in chunks of chunk bytes and records
// what is written to the peer.
type fakeConn struct {
	in    *bytes.Reader
	chunk int
	mu    sync.Mutex
	out   bytes.Buffer
}

func (f *fakeConn) Read(p []byte) (int, error) {
	if f.chunk > 0 && len(p) > f.chunk {
		p = p[:f.chunk]
	}
	return f.in.Read(p)
}
func (f *fakeConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.Write(p)
}
func (f *fakeConn) written() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.out.Bytes()...)
}
func (f *fakeConn) Close() error                     { return nil }
func (f *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

var testIH = metainfo.Hash{1, 2, 3}

func handshake(fast bool) []byte {
	b := []byte(pstr)
	res := make([]byte, 8)
	res[5] |= 0x10 // extended
	if fast {
		res[7] |= 0x04
	}
	b = append(b, res...)
	b = append(b, testIH[:]...)
	return append(b, bytes.Repeat([]byte{'P'}, 20)...)
}

func msg(id byte, body ...byte) []byte {
	b := make([]byte, 5+len(body))
	binary.BigEndian.PutUint32(b, uint32(1+len(body)))
	b[4] = id
	copy(b[5:], body)
	return b
}

func request(piece, begin, length uint32) []byte {
	body := make([]byte, 12)
	binary.BigEndian.PutUint32(body, piece)
	binary.BigEndian.PutUint32(body[4:], begin)
	binary.BigEndian.PutUint32(body[8:], length)
	return msg(msgRequest, body...)
}

func extMsg(d map[string]any) []byte {
	p, _ := bencode.Marshal(d)
	return msg(msgExtended, append([]byte{0}, p...)...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// readAllBounded is readAll that checks the connection's memory after
// every read: whatever a peer sends, its state stays within maxFootprint.
func readAllBounded(t *testing.T, c *Conn, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := c.Read(buf)
		out = append(out, buf[:k]...)
		if fp := c.footprint(); fp > maxFootprint {
			t.Fatalf("connection holds %d bytes after %d bytes of input", fp, len(out))
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// readAll reads the conn to EOF with reads of size n.
func readAll(c *Conn, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := c.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// Ensure that requests for pieces we lack never reach the library, that
// fast peers get a REJECT, and that everything else passes unchanged.
func TestRequestForMissingPiece(t *testing.T) {
	for _, fast := range []bool{true, false} {
		for _, chunk := range []int{1, 3, 17, 4096} {
			fp := &fakePieces{have: map[int]bool{1: true}}
			l := New(fp)
			piece := msg(msgPiece, append(make([]byte, 8), bytes.Repeat([]byte{7}, 100)...)...)
			in := cat(handshake(fast), extMsg(map[string]any{"m": map[string]any{"lt_donthave": 7}, "v": "Peer/1.0"}),
				msg(msgBitfield, 0xff), request(0, 0, 16384), msg(msgInterested), request(1, 0, 16384), piece, msg(msgHave, 0, 0, 0, 9), request(2, 16384, 16384))
			fc := &fakeConn{in: bytes.NewReader(in), chunk: chunk}
			c := l.Wrap(fc, false)
			// The library's side has sent its handshake, so the fast bit is
			// known on both ends.
			if _, err := c.Write(handshake(fast)); err != nil {
				t.Fatal(err)
			}
			got, err := readAll(c, 7)
			if err != nil {
				t.Fatal(err)
			}
			want := cat(handshake(fast), extMsg(map[string]any{"m": map[string]any{"lt_donthave": 7}, "v": "Peer/1.0"}),
				msg(msgBitfield, 0xff), msg(msgInterested), request(1, 0, 16384), piece, msg(msgHave, 0, 0, 0, 9))
			if !bytes.Equal(got, want) {
				t.Fatalf("fast=%v chunk=%d: library saw\n%x\nwant\n%x", fast, chunk, got, want)
			}
			out := fc.written()[handshakeLen:]
			rejects := cat(msgRejectBytes(request(0, 0, 16384)[5:]), msgRejectBytes(request(2, 16384, 16384)[5:]))
			if fast && !bytes.Equal(out, rejects) {
				t.Errorf("chunk=%d: peer got %x, want two REJECTs %x", chunk, out, rejects)
			}
			if !fast && len(out) != 0 {
				t.Errorf("non-fast peer got %x, want nothing", out)
			}
			st := c.State()
			if st.Dropped != 2 || st.ClientName != "Peer/1.0" || !st.PeerInterested || !st.HasPiece(9) || !st.HasPiece(3) || st.HasPiece(10) || st.BytesDown != 100 {
				t.Errorf("state %+v", st)
			}
			if len(fp.requested) != 1 || fp.requested[0] != 1 {
				t.Errorf("Requested calls %v", fp.requested)
			}
		}
	}
}

// Ensure the peer's advertised request queue is capped for the library and
// everything else in its handshake is kept.
func TestCapReqq(t *testing.T) {
	in := cat(handshake(true), extMsg(map[string]any{"reqq": 512, "v": "Transmission 3.00", "m": map[string]any{"ut_metadata": 3}}), msg(msgHaveAll))
	c := New(&fakePieces{}).Wrap(&fakeConn{in: bytes.NewReader(in), chunk: 7}, false)
	got, err := readAll(c, 5)
	want := cat(handshake(true), extMsg(map[string]any{"reqq": MaxPeerRequests, "v": "Transmission 3.00", "m": map[string]any{"ut_metadata": 3}}), msg(msgHaveAll))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("library saw\n%q\nwant\n%q (%v)", got, want, err)
	}
	if st := c.State(); st.ClientName != "Transmission 3.00" || !st.HaveAll {
		t.Errorf("state %+v", st)
	}
	small := cat(handshake(true), extMsg(map[string]any{"reqq": 100}))
	c = New(&fakePieces{}).Wrap(&fakeConn{in: bytes.NewReader(small)}, false)
	if got, _ := readAll(c, 64); !bytes.Equal(got, small) {
		t.Errorf("a small reqq was changed")
	}
}

// Ensure our extended handshake gains upload_only: 1 in partial-seed mode
// for peers that are not seeds, and not for seeds (Transmission and
// libtorrent seeds drop a peer that says it) nor libtorrent leechers (they
// drop an upload-only peer they are not interested in); that it waits for
// the peer's bitfield and extended handshake, with what the library writes
// after it kept in order, or for a timeout; and that without partial-seed
// mode nothing changes.
func TestExtHandshakeRewrite(t *testing.T) {
	old := extDeferTimeout
	extDeferTimeout = 100 * time.Millisecond
	defer func() { extDeferTimeout = old }()
	ours := extMsg(map[string]any{"m": map[string]any{"ut_metadata": 1}, "v": "btslave/test", "reqq": 250})
	withUO := extMsg(map[string]any{"m": map[string]any{"ut_metadata": 1}, "v": "btslave/test", "reqq": 250, "upload_only": 1})
	stream := cat(handshake(true), ours, msg(msgHaveNone), msg(msgUnchoke))
	peerExt := extMsg(map[string]any{"m": map[string]any{"ut_metadata": 3}, "v": "aria2/1.36.0"})
	ltExt := extMsg(map[string]any{"m": map[string]any{"share_mode": 8, "upload_only": 3}, "v": "qBittorrent/4.6.0"})
	for _, tc := range []struct {
		name    string
		partial bool
		peer    []byte // what the peer sent before our writes
		want    []byte
	}{
		{"leecher", true, cat(handshake(true), msg(msgHaveNone), peerExt), cat(handshake(true), withUO, msg(msgHaveNone), msg(msgUnchoke))},
		{"libtorrent leecher", true, cat(handshake(true), msg(msgHaveNone), ltExt), stream},
		{"seed", true, cat(handshake(true), msg(msgHaveAll)), stream},
		{"silent peer: timeout", true, handshake(true), cat(handshake(true), withUO, msg(msgHaveNone), msg(msgUnchoke))},
		{"not partial", false, handshake(true), stream},
	} {
		fc := &fakeConn{in: bytes.NewReader(tc.peer)}
		c := New(&fakePieces{partial: tc.partial, n: 8}).Wrap(fc, true)
		for i := 0; i < len(stream); i += 5 {
			if _, err := c.Write(stream[i:min(i+5, len(stream))]); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				readAll(c, 64) // the peer's handshake and bitfield arrive
			}
		}
		if tc.name == "silent peer: timeout" {
			if got := fc.written(); len(got) != handshakeLen {
				t.Errorf("%s: sent %d bytes before the timeout", tc.name, len(got))
			}
			time.Sleep(150 * time.Millisecond)
			c.Write(nil) // any write (or the reader's timer) releases it
		}
		if got := fc.written(); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: peer got\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
}

// Ensure evictions send lt_donthave to peers that support it, and that a
// piece available again is announced with HAVE, both at message boundaries.
func TestDonthaveAndHave(t *testing.T) {
	fp := &fakePieces{n: 16}
	l := New(fp)
	in := cat(handshake(true), extMsg(map[string]any{"m": map[string]any{"lt_donthave": 9, "upload_only": 3}}))
	fc := &fakeConn{in: bytes.NewReader(in)}
	c := l.Wrap(fc, false)
	if _, err := readAll(c, 1024); err != nil {
		t.Fatal(err)
	}
	c.Write(handshake(true))
	c.Write(msg(msgBitfield, 0xc0, 0x00)) // we have 0 and 1
	before := len(fc.written())

	// The library is mid-message: injections must wait for the boundary.
	piece := msg(msgPiece, append(make([]byte, 8), bytes.Repeat([]byte{1}, 64)...)...)
	c.Write(piece[:20])
	l.PieceEvicted(testIH, 1)
	l.PieceEvicted(testIH, 5) // never advertised: no message
	if len(fc.written()) != before+20 {
		t.Fatalf("injected mid-message")
	}
	c.Write(piece[20:])
	l.PieceAvailable(testIH, 1)
	l.PieceAvailable(testIH, 0) // advertised already: no HAVE
	l.PieceAvailable(testIH, 7) // never announced: the library will
	l.PartialSeedChanged(testIH, true)

	got := fc.written()[before:]
	want := cat(piece, msgExtBytes(9, u32(1)), msgHaveBytes(1), msgExtBytes(3, []byte{1}))
	if !bytes.Equal(got, want) {
		t.Errorf("peer got\n%x\nwant\n%x", got, want)
	}
	if st := l.Stats(); st.Donthaves != 1 || st.HavesInjected != 1 || st.UploadOnlySent != 1 {
		t.Errorf("stats %+v", st)
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// Ensure a burst of REJECTs from a fast peer that unchokes us is followed,
// for the library, by one CHOKE+UNCHOKE a little later (anacrolix stalls
// otherwise), and that a choking or non-fast peer's are not.
func TestKickAfterReject(t *testing.T) {
	rej := msgRejectBytes(request(0, 0, 16384)[5:])
	rej2 := msgRejectBytes(request(0, 16384, 16384)[5:])
	kick := cat(msg(msgChoke), msg(msgUnchoke))
	for _, tc := range []struct {
		name     string
		fast     bool
		in, want []byte
	}{
		{"fast unchoked", true, cat(msg(msgUnchoke), rej, rej2, msg(msgHave, 0, 0, 0, 1)), cat(msg(msgUnchoke), rej, rej2, msg(msgHave, 0, 0, 0, 1), kick)},
		{"fast choked", true, rej, rej},
		{"not fast", false, cat(msg(msgUnchoke), rej), cat(msg(msgUnchoke), rej)},
		// A REJECT for no request of ours (a second one) would make the
		// library close the connection: dropped.
		{"fast, rejected twice", true, cat(msg(msgUnchoke), rej, rej, msg(msgHave, 0, 0, 0, 1)), cat(msg(msgUnchoke), rej, msg(msgHave, 0, 0, 0, 1), kick)},
	} {
		peer, ours := tcpPair(t)
		c := New(&fakePieces{}).Wrap(ours, false)
		c.Write(cat(handshake(tc.fast), request(0, 0, 16384), request(0, 16384, 16384)))
		go peer.Write(cat(handshake(tc.fast), tc.in))
		// The library keeps a read deadline of its own, as anacrolix does.
		c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
		start := time.Now()
		var got []byte
		buf := make([]byte, 7)
		for {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("%s: %v", tc.name, err)
				}
				break // the library's own deadline must still fire
			}
		}
		if !bytes.Equal(got[handshakeLen:], tc.want) {
			t.Errorf("%s: library saw %x, want %x", tc.name, got[handshakeLen:], tc.want)
		}
		if el := time.Since(start); el < 350*time.Millisecond {
			t.Errorf("%s: library deadline came early (%v)", tc.name, el)
		}
	}
}

// Ensure malformed frames close the connection with a clear error.
func TestMalformed(t *testing.T) {
	cases := map[string][]byte{
		"too long":       {0x00, 0x20, 0x00, 0x00, msgPiece},
		"bad choke len":  {0, 0, 0, 3, msgChoke, 0, 0},
		"bad request":    {0, 0, 0, 5, msgRequest, 0, 0, 0, 0},
		"bad have":       msg(msgHave, 1, 2),
		"bad bencode":    msg(msgExtended, 0, 'd', '3', ':'),
		"short piece":    msg(msgPiece, 1, 2, 3),
		"huge handshake": cat([]byte{0, 0x10, 0, 3, msgExtended, 0}),
	}
	for name, m := range cases {
		c := New(&fakePieces{}).Wrap(&fakeConn{in: bytes.NewReader(cat(handshake(true), m))}, false)
		_, err := readAll(c, 1<<16)
		if err == nil || !(errors.Is(err, ErrFrameTooLong) || errors.Is(err, ErrBadMessage) || errors.Is(err, ErrBadExtHandshake)) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

// Ensure that a stream that is not a plaintext BitTorrent handshake (MSE)
// passes through untouched both ways.
func TestPassthrough(t *testing.T) {
	in := append([]byte{0x55, 0x13}, bytes.Repeat([]byte{0, 0, 0, 5, msgRequest}, 100)...)
	fc := &fakeConn{in: bytes.NewReader(in), chunk: 3}
	c := New(&fakePieces{}).Wrap(fc, false)
	got, err := readAll(c, 10)
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("read %v %x", err, got)
	}
	c.Write([]byte("ciphertext"))
	if string(fc.written()) != "ciphertext" {
		t.Errorf("write changed: %q", fc.written())
	}
}

// Ensure that with RefuseEncrypted an MSE stream is refused, both ways,
// and for good.
func TestRefuseEncrypted(t *testing.T) {
	in := append([]byte{0x55, 0x13}, make([]byte, 100)...)
	l := New(&fakePieces{})
	l.RefuseEncrypted(true)
	c := l.Wrap(&fakeConn{in: bytes.NewReader(in)}, false)
	for i := 0; i < 2; i++ {
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, ErrEncrypted) {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrEncrypted) {
		t.Errorf("write after refusal: %v", err)
	}
	out := l.Wrap(&fakeConn{in: bytes.NewReader(nil)}, true)
	if _, err := out.Write([]byte{0x99, 1, 2}); !errors.Is(err, ErrEncrypted) {
		t.Errorf("outgoing MSE: %v", err)
	}
	if st := l.Stats(); st.Encrypted != 2 || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// reference filters a peer stream the way the layer should: it removes
// REQUESTs for pieces not in have and stops at the first malformed frame.
func reference(in []byte, have func(int) bool) (out []byte, ok bool) {
	if len(in) < handshakeLen || !bytes.Equal(in[:20], []byte(pstr)) {
		return nil, false
	}
	out = append(out, in[:handshakeLen]...)
	rest := in[handshakeLen:]
	exts := 0
	for len(rest) >= 4 {
		n := int(be32(rest))
		if n > MaxMessageLen {
			return out, false
		}
		if len(rest) < 4+n {
			break
		}
		m := rest[:4+n]
		if n > 0 && m[4] == msgRequest && n == 13 && !have(int(be32(m[5:]))) {
			rest = rest[4+n:]
			continue
		}
		switch {
		case n == 5 && m[4] == msgHave && be32(m[5:]) >= torrentfile.MaxPieces,
			n > 0 && m[4] == msgBitfield && n-1 > (torrentfile.MaxPieces+7)/8:
			return out, false
		case n >= 2 && m[4] == msgExtended && m[5] == 0:
			exts++
			d, err := parseExtHandshake(m[6:])
			if err != nil || n > maxExtHandshake || exts > maxExtHandshakes {
				return out, false
			}
			if m, err = libraryView(d, false); err != nil {
				return out, false
			}
		}
		out = append(out, m...)
		rest = rest[4+n:]
	}
	return out, true
}

// FuzzRead feeds arbitrary peer streams through the layer. It must never
// panic; for well-formed streams what the library sees must be the input
// minus requests for pieces we lack.
func FuzzRead(f *testing.F) {
	f.Add(cat(handshake(true), request(0, 0, 16384), msg(msgHave, 0, 0, 0, 1)), uint8(3))
	f.Add(cat(handshake(false), extMsg(map[string]any{"m": map[string]any{"lt_donthave": 1}}), msg(msgBitfield, 1, 2, 3)), uint8(1))
	f.Add(cat(handshake(true), msg(msgPiece, make([]byte, 40)...), request(1, 0, 1)), uint8(16))
	f.Add([]byte{0x13, 'B', 0, 0}, uint8(2))
	f.Add(cat(handshake(true), msg(msgHave, 0xff, 0xff, 0xff, 0xff)), uint8(9))
	f.Add(cat(handshake(false), msg(msgBitfield, make([]byte, 200_000)...)), uint8(31))
	f.Add(cat(handshake(true), msg(msgExtended, append([]byte{0}, "d1:v"+strings.Repeat("l", 100)+strings.Repeat("e", 100)+"e"...)...)), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		have := func(p int) bool { return p%2 == 1 }
		c := New(havePieces(have)).Wrap(&fakeConn{in: bytes.NewReader(in), chunk: int(chunk%32) + 1}, false)
		got, err := readAllBounded(t, c, int(chunk%61)+1)
		if c.passthrough.Load() {
			if !bytes.Equal(got, in) {
				t.Fatalf("passthrough changed the stream")
			}
			return
		}
		want, _ := reference(in, have)
		switch {
		case len(got) > len(in):
			t.Fatalf("output longer than input")
		case err == nil && !bytes.HasPrefix(got, want):
			// A clean EOF: everything whole went through, plus at most the
			// start of a trailing partial message.
			t.Fatalf("library saw\n%x\nwant prefix\n%x", got, want)
		case err != nil && !bytes.HasPrefix(got, want) && !bytes.HasPrefix(want, got):
			t.Fatalf("malformed stream: library saw\n%x\nreference\n%x", got, want)
		}
	})
}

type havePieces func(int) bool

func (h havePieces) Has(_ metainfo.Hash, p int) bool { return h(p) }
func (havePieces) Requested(metainfo.Hash, int)      {}
func (havePieces) PartialSeed(metainfo.Hash) bool    { return false }
func (havePieces) NumPieces(metainfo.Hash) int       { return 0 }

// FuzzWrite checks that, with nothing to rewrite or inject, the peer sees
// exactly what the library wrote, however the writes are cut.
func FuzzWrite(f *testing.F) {
	f.Add(cat(handshake(true), extMsg(map[string]any{"v": "x"}), msg(msgBitfield, 0xff), msg(msgPiece, make([]byte, 30)...)), uint8(5))
	f.Add(cat(handshake(false), []byte{0, 0, 0, 0}, msg(msgHave, 0, 0, 0, 2)), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		fc := &fakeConn{in: bytes.NewReader(nil)}
		c := New(&fakePieces{}).Wrap(fc, true)
		step := int(chunk%40) + 1
		for i := 0; i < len(in); i += step {
			if n, err := c.Write(in[i:min(i+step, len(in))]); err != nil || n != min(step, len(in)-i) {
				t.Fatalf("write: %d %v", n, err)
			}
		}
		got := fc.written()
		// Bytes of an unfinished header may still be held back (13 for a
		// PIECE: padPiece reads its index and begin).
		if !bytes.HasPrefix(in, got) || len(in)-len(got) > 13 {
			t.Fatalf("peer saw\n%x\nlibrary wrote\n%x", got, in)
		}
	})
}

// Ensure a request a fast, unchoking peer never answers is rejected for the
// library after RequestTimeout (anacrolix has no timeout of its own), and
// that answered requests are not.
func TestRequestTimeout(t *testing.T) {
	setRequestTimeout(t, 150*time.Millisecond)
	peer, ours := tcpPair(t)
	c := New(&fakePieces{}).Wrap(ours, true)
	c.Write(cat(handshake(true), request(3, 0, 16384), request(4, 0, 16384)))
	piece4 := msg(msgPiece, append([]byte{0, 0, 0, 4, 0, 0, 0, 0}, make([]byte, 16384)...)...)
	go peer.Write(cat(handshake(true), msg(msgUnchoke), piece4))
	got := readUntil(c, 800*time.Millisecond)
	want := cat(handshake(true), msg(msgUnchoke), piece4, msgRejectBytes(request(3, 0, 16384)[5:]), msg(msgChoke), msg(msgUnchoke))
	if !bytes.Equal(got, want) {
		t.Fatalf("library saw %d bytes, want %d:\n%x\n%x", len(got), len(want), got[len(got)-40:], want[len(want)-40:])
	}
	if st := c.State(); st.TimedOut != 1 || st.Outstanding != 0 {
		t.Errorf("state %+v", st)
	}
}

// Ensure SetUploadRate paces what one peer receives, and that lifting it
// lets the rest through at once. Only a lower bound is asserted: a slow
// machine can take longer, never shorter.
func TestUploadPacing(t *testing.T) {
	peer, ours := tcpPair(t)
	c := New(&fakePieces{}).Wrap(ours, true)
	go io.Copy(io.Discard, peer)
	c.Write(handshake(true))
	c.SetUploadRate(64 << 10) // burst 64 KiB
	piece := msg(msgPiece, make([]byte, 8+16<<10)...)
	start := time.Now()
	for i := 0; i < 12; i++ { // 192 KiB: 64 KiB of burst, then ~2 s
		if _, err := c.Write(piece); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Errorf("192 KiB at 64 KiB/s took %v, want >= 1.5s", el)
	}
	if st := c.State(); st.BytesUp != 12*(16<<10) {
		t.Errorf("BytesUp %d", st.BytesUp)
	}
	c.SetUploadRate(0)
	start = time.Now()
	for i := 0; i < 12; i++ {
		c.Write(piece)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("unpaced writes took %v", el)
	}
}

// Ensure that with Decrypt the layer does an incoming MSE handshake
// itself: the library reads the peer's plaintext handshake and a REQUEST
// for a missing piece is still kept from it (answered with REJECT, which
// the peer reads decrypted); an unknown info-hash fails the handshake; a
// plaintext peer passes untouched.
func TestDecryptIncoming(t *testing.T) {
	ih := metainfo.Hash{1, 2, 3}
	keys := func(yield func([]byte) bool) { yield(ih[:]) }
	hs := handshake(true)
	copy(hs[28:48], ih[:])

	for _, tc := range []struct {
		name    string
		key     metainfo.Hash
		method  mse.CryptoMethod
		wantErr bool
	}{
		{"rc4", ih, mse.CryptoMethodRC4, false},
		{"plaintext after handshake", ih, mse.CryptoMethodPlaintext, false},
		{"unknown torrent", metainfo.Hash{9}, mse.CryptoMethodRC4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(&fakePieces{n: 4})
			l.Decrypt(keys)
			peer, ours := tcpPair(t)
			c := l.Wrap(l.wrapDecrypt(ours), false)
			type result struct {
				rw  io.ReadWriter
				err error
			}
			done := make(chan result, 1)
			go func() {
				rw, _, err := mse.InitiateHandshake(peer, tc.key[:], hs, tc.method)
				if err == nil {
					_, err = rw.Write(request(2, 0, 16<<10))
				}
				done <- result{rw, err}
			}()
			got := make([]byte, len(hs))
			_, err := io.ReadFull(c, got)
			if tc.wantErr {
				if !errors.Is(err, ErrMSEHandshake) {
					t.Fatalf("read: %v, want ErrMSEHandshake", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, hs) {
				t.Fatalf("library read %x (%v), want the plaintext handshake", got, err)
			}
			res := <-done
			if res.err != nil {
				t.Fatal(res.err)
			}
			// Our handshake back, then the REQUEST for piece 2 (missing)
			// must come back as a REJECT, through the cipher.
			if _, err := c.Write(hs); err != nil {
				t.Fatal(err)
			}
			go c.Read(make([]byte, 64)) // drives the parser; nothing reaches the library
			back := make([]byte, len(hs)+17)
			if _, err := io.ReadFull(res.rw, back); err != nil {
				t.Fatal(err)
			}
			if want := append(hs, msg(msgReject, request(2, 0, 16<<10)[5:]...)...); !bytes.Equal(back, want) {
				t.Errorf("peer read %x, want %x", back, want)
			}
			if st := l.Stats(); st.Decrypted != 1 || st.Rejected != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
	t.Run("plaintext", func(t *testing.T) {
		l := New(&fakePieces{n: 4})
		l.Decrypt(keys)
		peer, ours := tcpPair(t)
		c := l.Wrap(l.wrapDecrypt(ours), false)
		go peer.Write(hs)
		got := make([]byte, len(hs))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, hs) {
			t.Fatalf("read %x (%v)", got, err)
		}
		if st := l.Stats(); st.Decrypted != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// Ensure TrackSent counts the payload sent per piece, headers and blocks
// split across writes included, and nothing while it is off.
func TestTrackSent(t *testing.T) {
	peer, ours := tcpPair(t)
	c := New(&fakePieces{}).Wrap(ours, true)
	go io.Copy(io.Discard, peer)
	c.Write(handshake(true))
	block := func(i byte, n int) []byte {
		return msg(msgPiece, append([]byte{0, 0, 0, i, 0, 0, 0, 0}, make([]byte, n)...)...)
	}
	c.Write(block(1, 100)) // before TrackSent: not counted
	c.TrackSent(true)
	two := cat(block(2, 1000), block(3, 500), block(2, 24))
	for _, cut := range []int{3, 11, 600, 420} { // mid-header, mid-block, across messages
		c.Write(two[:cut])
		two = two[cut:]
	}
	c.Write(two)
	got := c.SentPieces()
	if len(got) != 2 || got[2] != 1024 || got[3] != 500 {
		t.Errorf("sent per piece %v, want map[2:1024 3:500]", got)
	}
	if st := c.State(); st.BytesUp != 100+1524 {
		t.Errorf("BytesUp %d", st.BytesUp)
	}
}

// Ensure a request given up on (a REJECT synthesized for the library) is
// given up for good: the peer's late PIECE or REJECT for it never reaches
// the library, which would take it for an unexpected chunk or an invalid
// reject and close the connection.
func TestLateAnswerDropped(t *testing.T) {
	setRequestTimeout(t, 150*time.Millisecond)
	peer, ours := tcpPair(t)
	l := New(&fakePieces{})
	c := l.Wrap(ours, true)
	c.Write(cat(handshake(true), request(3, 0, 16384), request(5, 0, 16384)))
	piece3 := msg(msgPiece, append([]byte{0, 0, 0, 3, 0, 0, 0, 0}, make([]byte, 16384)...)...)
	go func() {
		peer.Write(cat(handshake(true), msg(msgUnchoke)))
		time.Sleep(400 * time.Millisecond) // both time out meanwhile
		peer.Write(cat(piece3, msgRejectBytes(request(5, 0, 16384)[5:]), msg(msgHaveNone)))
	}()
	got := readUntil(c, 900*time.Millisecond)
	// The two synthesized REJECTs (either order), one kick, then only the
	// HAVE NONE that followed the late answers.
	rej3, rej5 := msgRejectBytes(request(3, 0, 16384)[5:]), msgRejectBytes(request(5, 0, 16384)[5:])
	head := cat(handshake(true), msg(msgUnchoke))
	tail := cat(msg(msgChoke), msg(msgUnchoke), msg(msgHaveNone))
	if !bytes.Equal(got, cat(head, rej3, rej5, tail)) && !bytes.Equal(got, cat(head, rej5, rej3, tail)) {
		t.Fatalf("library saw %x", got)
	}
	if st := c.State(); st.TimedOut != 2 || st.LateDropped != 2 || st.Outstanding != 0 {
		t.Errorf("timed out %d, late dropped %d, outstanding %d; want 2, 2, 0", st.TimedOut, st.LateDropped, st.Outstanding)
	}
	if st := l.Stats(); st.TimedOut != 2 || st.LateDropped != 2 {
		t.Errorf("layer counted %d timed out, %d late dropped; want 2, 2", st.TimedOut, st.LateDropped)
	}
}

// Ensure the timeout counts from the peer's last answer, not the request's
// age: a peer that answers slowly but steadily, in order, keeps our deep
// queue; a request it skipped while answering later ones is given up on.
func TestRequestTimeoutOrder(t *testing.T) {
	setRequestTimeout(t, 300*time.Millisecond)
	peer, ours := tcpPair(t)
	c := New(&fakePieces{}).Wrap(ours, true)
	const n = orderSlack + 8
	reqs := handshake(true)
	for i := range n {
		reqs = append(reqs, request(uint32(i), 0, 1024)...)
	}
	c.Write(reqs)
	block := func(i int) []byte {
		return msg(msgPiece, append([]byte{0, 0, 0, byte(i), 0, 0, 0, 0}, make([]byte, 1024)...)...)
	}
	go func() {
		peer.Write(cat(handshake(true), msg(msgUnchoke)))
		// Block 0 is skipped; the others come one every 20 ms: the whole
		// answer takes longer than RequestTimeout.
		for i := 1; i < n; i++ {
			time.Sleep(20 * time.Millisecond)
			peer.Write(block(i))
		}
	}()
	got := readUntil(c, time.Duration(n)*20*time.Millisecond+200*time.Millisecond)
	if st := c.State(); st.TimedOut != 1 || st.Outstanding != 0 {
		t.Errorf("timed out %d, outstanding %d; want 1 (the skipped block) and 0", st.TimedOut, st.Outstanding)
	}
	if !bytes.Contains(got, msgRejectBytes(request(0, 0, 1024)[5:])) {
		t.Errorf("the skipped request was not given up on")
	}
	for i := 1; i < n; i++ {
		if !bytes.Contains(got, block(i)) {
			t.Fatalf("block %d did not reach the library", i)
		}
	}
}

// Ensure a REJECT for a request the library cancelled reaches it only from
// a peer it expects to acknowledge cancels: anacrolix v1.61 forgets a
// request cancelled at Transmission 3.x at once, and takes a REJECT for it
// as invalid and closes the connection (the crowd bench lost its seed so);
// from other fast peers it waits for that REJECT.
func TestRejectAfterCancel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		peerID string
		passed bool
	}{
		{"Transmission 3.00", "-TR3000-abcdefghijkl", false},
		{"Transmission 4.0", "-TR4000-abcdefghijkl", true},
		{"libtorrent", "-LT2080-abcdefghijkl", true},
	} {
		peer, ours := tcpPair(t)
		c := New(&fakePieces{}).Wrap(ours, true)
		req := request(2, 0, 16384)
		c.Write(cat(handshake(true), req, msg(msgCancel, req[5:]...)))
		hs := append(handshake(true)[:handshakeLen-20], tc.peerID...)
		piece := msg(msgPiece, append([]byte{0, 0, 0, 2, 0, 0, 0, 0}, make([]byte, 16384)...)...)
		go peer.Write(cat(hs, msg(msgUnchoke), msgRejectBytes(req[5:]), piece, msg(msgHaveNone)))
		got := readUntil(c, 300*time.Millisecond)
		got = got[handshakeLen:]
		// The late PIECE is the library's either way (it accepts it).
		want := cat(msg(msgUnchoke), piece, msg(msgHaveNone))
		if tc.passed {
			want = cat(msg(msgUnchoke), msgRejectBytes(req[5:]), piece, msg(msgHaveNone))
		}
		if !bytes.HasPrefix(got, want) {
			t.Errorf("%s: library saw %x\nwant %x", tc.name, got[:min(len(got), 64)], want[:min(len(want), 64)])
		}
	}
}

// readUntil reads what the library would see until the read deadline d
// from now, or another error, ends it.
func readUntil(c *Conn, d time.Duration) []byte {
	c.SetReadDeadline(time.Now().Add(d))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got
		}
	}
}

// setRequestTimeout sets RequestTimeout for one test.
func setRequestTimeout(t *testing.T, d time.Duration) {
	old := RequestTimeout
	RequestTimeout = d
	t.Cleanup(func() { RequestTimeout = old })
}
