package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/mse"
)

// textData is n bytes of text-like data (about 4:1 with zstd).
func textData(seed uint64, n int) []byte {
	words := strings.Fields("the swarm peer piece block seed leech tracker announce choke unchoke interested have " +
		"bitfield request cancel port extended handshake metadata repeater friend ledger upload download ratio " +
		"of and to a in is it that for on with as was at")
	r := rand.New(rand.NewPCG(seed, 1))
	var b []byte
	for len(b) < n {
		for k := 60 + r.IntN(20); k > 0; k -= 5 {
			b = append(b, words[r.IntN(len(words))]...)
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(r.IntN(10000)), 10)
		b = append(b, '\n')
	}
	return b[:n]
}

// randomData is n random bytes.
func randomData(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

// pieceMsg is PIECE(index, begin, block).
func pieceMsg(index, begin uint32, block []byte) []byte {
	body := make([]byte, 8, 8+len(block))
	binary.BigEndian.PutUint32(body, index)
	binary.BigEndian.PutUint32(body[4:], begin)
	return msg(msgPiece, append(body, block...)...)
}

// compOpts is both algorithms offered, zstd first.
var compOpts = CompressOptions{Zstd: 2, LZ4: 1}

// libExt is an extended handshake as anacrolix writes it.
func libExt(v string) []byte {
	return extMsg(map[string]any{"m": map[string]any{"ut_metadata": 1, "ut_pex": 2}, "v": v, "reqq": 250})
}

// libSide is one end of a connection as the library uses it: its own
// reads run in a goroutine and collect what the library sees.
type libSide struct {
	c    *Conn
	mu   sync.Mutex
	got  []byte
	err  error
	done chan struct{}
}

func (s *libSide) read() {
	defer close(s.done)
	buf := make([]byte, 1<<17)
	for {
		n, err := s.c.Read(buf)
		s.mu.Lock()
		s.got = append(s.got, buf[:n]...)
		if err != nil {
			s.err = err
		}
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (s *libSide) seen() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.got...), s.err
}

// waitSeen waits until the side's library has read n bytes (or failed).
func (s *libSide) waitSeen(t testing.TB, n int) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := s.seen()
		if len(got) >= n || err != nil || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond)
	}
}

// compressedPair connects two layers over loopback TCP (a dials b) and
// has both libraries write their BitTorrent and extended handshakes. It
// returns once both handshakes were read on both sides.
func compressedPair(t testing.TB, la, lb *Layer) (a, b *libSide) {
	t.Helper()
	pa, pb := tcpPair(t)
	return libPair(t, la.Wrap(pa, true), lb.Wrap(pb, false))
}

func libPair(t testing.TB, ca, cb *Conn) (a, b *libSide) {
	t.Helper()
	a = &libSide{c: ca, done: make(chan struct{})}
	b = &libSide{c: cb, done: make(chan struct{})}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	go a.read()
	go b.read()
	for _, s := range []*libSide{a, b} {
		if _, err := s.c.Write(cat(handshake(true), libExt("btslave/test"))); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*libSide{a, b} {
		got := s.waitSeen(t, handshakeLen+1)
		if len(got) < handshakeLen {
			t.Fatalf("handshake not read: %x", got)
		}
	}
	return a, b
}

// waitCompressed waits until both of c's directions are compressed: its
// own marker queued (Out) and the peer's read (In). Out alone is set before
// the peer has seen anything, so a check of In right after it races the
// peer's marker.
func waitCompressed(t testing.TB, c *Conn) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); c.State().Compress.Out == "" || c.State().Compress.In == ""; {
		if time.Now().After(deadline) {
			t.Fatalf("never compressed: %+v", c.State().Compress)
		}
		time.Sleep(time.Millisecond)
	}
}

// Ensure that two layers that both offer compression negotiate it, that
// what one library writes after the marker reaches the other library
// exactly, and that text shrinks on the wire while random data grows by
// less than 0.5%.
func TestCompressRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		a, b   CompressOptions
		want   string
		textLt float64 // wire/plain for text must be below this
	}{
		{"zstd", compOpts, compOpts, "zstd", 0.33},
		{"lz4 preferred by both", CompressOptions{Zstd: 1, LZ4: 9}, CompressOptions{Zstd: 1, LZ4: 9}, "lz4", 0.6},
		{"only lz4 in common", CompressOptions{LZ4: 1}, CompressOptions{Zstd: 5, LZ4: 1}, "lz4", 0.6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			la, lb := New(&fakePieces{n: 64}), New(&fakePieces{n: 64})
			if err := la.Compress(tc.a); err != nil {
				t.Fatal(err)
			}
			if err := lb.Compress(tc.b); err != nil {
				t.Fatal(err)
			}
			a, b := compressedPair(t, la, lb)
			waitCompressed(t, a.c)
			waitCompressed(t, b.c)
			if got := a.c.State().Compress; got.Out != tc.want || got.In != tc.want {
				t.Fatalf("negotiated %+v, want %s both ways", got, tc.want)
			}
			text, rnd := textData(1, 1<<20), randomData(2, 1<<20)
			mixed := make([]byte, 0, 1<<20)
			for off := 0; off < 1<<19; off += 16 << 10 { // alternating blocks
				mixed = append(mixed, text[off:off+16<<10]...)
				mixed = append(mixed, rnd[off:off+16<<10]...)
			}
			for _, phase := range []struct {
				name string
				data []byte
				max  float64
			}{{"text", text, tc.textLt}, {"random", rnd, 1.005}, {"alternating", mixed, (1+tc.textLt)/2 + 0.03}} {
				plain, wire := sendPieces(t, a, b, phase.data)
				r := float64(wire) / float64(plain)
				t.Logf("%s: %d bytes as %d on the wire (%.4f)", phase.name, plain, wire, r)
				if r > phase.max {
					t.Errorf("%s: wire/plain %.4f, want <= %.4f", phase.name, r, phase.max)
				}
			}
			if r, s := b.c.State().Compress, a.c.State().Compress; r.InPlain != s.OutPlain || r.InWire != s.OutWire {
				t.Errorf("receiver counted %+v, sender %+v", r, s)
			}
		})
	}
}

// sendPieces has a's library write data as 16 KiB PIECE messages (with a
// HAVE now and then) in writes of whole messages of at least 32 KiB, as
// anacrolix does, checks that b's library reads exactly that, and returns
// the plain and wire bytes a's encoder counted.
func sendPieces(t testing.TB, a, b *libSide, data []byte) (plain, wire int64) {
	t.Helper()
	start := len(b.waitSeen(t, 0))
	var stream, buf []byte
	before := a.c.State().Compress
	for off := 0; off < len(data); off += 16 << 10 {
		m := pieceMsg(uint32(off>>18), uint32(off&(256<<10-1)), data[off:min(off+16<<10, len(data))])
		if off%(64<<10) == 0 {
			m = append(m, msg(msgHave, 0, 0, 0, byte(off>>16&63))...)
		}
		stream, buf = append(stream, m...), append(buf, m...)
		if len(buf) >= 32<<10 || off+16<<10 >= len(data) {
			if _, err := a.c.Write(buf); err != nil {
				t.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	got := b.waitSeen(t, start+len(stream))
	if !bytes.Equal(got[start:], stream) {
		_, err := b.seen()
		t.Fatalf("library read %d bytes, want the %d written (first difference at %d): %v", len(got)-start, len(stream), firstDiff(got[start:], stream), err)
	}
	after := a.c.State().Compress
	return after.OutPlain - before.OutPlain, after.OutWire - before.OutWire
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// plainPeer reads what c sends to a peer that has no BEP 56: the test is
// that peer, on the other end of loopback TCP.
func readExt(t *testing.T, r io.Reader) (map[string]any, []byte) {
	t.Helper()
	var hdr [6]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, be32(hdr[:])-2)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	if hdr[4] != msgExtended || hdr[5] != 0 {
		t.Fatalf("want an extended handshake, got %x", hdr)
	}
	var d map[string]any
	if err := bencode.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	return d, append(hdr[:], body...)
}

// Ensure that a peer without "c" sees an ordinary connection: our
// extended handshake carries c, cp and m.lt_compress, nothing else
// changes, no marker is ever sent, and the peer's bytes reach the library
// as they came; and that with every priority 0 the handshake is the
// library's own.
func TestCompressOrdinaryPeer(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts CompressOptions
		want map[string]any // c, or nil for no keys at all
	}{
		{"offered", CompressOptions{Zstd: 2, LZ4: 1, Preferred: "zstd"}, map[string]any{"zstd": int64(2), "lz4": int64(1)}},
		{"zstd only", CompressOptions{Zstd: 7}, map[string]any{"zstd": int64(7)}},
		{"off", CompressOptions{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(&fakePieces{n: 64, have: map[int]bool{0: true}})
			if err := l.Compress(tc.opts); err != nil {
				t.Fatal(err)
			}
			peer, ours := tcpPair(t)
			c := l.Wrap(ours, true)
			lib := &libSide{c: c, done: make(chan struct{})}
			go lib.read()
			// The peer: an ordinary client (aria2's handshake).
			peerExt := extMsg(map[string]any{"m": map[string]any{"ut_metadata": 3}, "v": "aria2/1.36.0", "p": 6881})
			later := cat(msg(msgBitfield, 0x80, 0, 0, 0, 0, 0, 0, 0), msg(msgInterested), request(0, 0, 16384))
			peer.Write(cat(handshake(true), peerExt))
			ours1 := cat(handshake(true), libExt("btslave/test"))
			if _, err := c.Write(ours1); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, handshakeLen)
			if _, err := io.ReadFull(peer, got); err != nil {
				t.Fatal(err)
			}
			d, raw := readExt(t, peer)
			if tc.want == nil {
				if !bytes.Equal(raw, libExt("btslave/test")) {
					t.Errorf("with compression off the handshake changed: %q", raw)
				}
			} else {
				m, _ := d["m"].(map[string]any)
				if cd, _ := d["c"].(map[string]any); len(cd) != len(tc.want) || cd["zstd"] != tc.want["zstd"] || cd["lz4"] != tc.want["lz4"] {
					t.Errorf("c = %v, want %v", d["c"], tc.want)
				}
				if id, _ := m[compressMarker].(int64); id != 3 || m["ut_metadata"] != int64(1) || m["ut_pex"] != int64(2) {
					t.Errorf("m = %v: want the library's ids and lt_compress at the first free one, 3", m)
				}
				if cp, _ := d["cp"].(string); cp != tc.opts.Preferred {
					t.Errorf("cp = %q, want %q", cp, tc.opts.Preferred)
				}
				if d["v"] != "btslave/test" || d["reqq"] != int64(250) {
					t.Errorf("the library's keys changed: %v", d)
				}
			}
			// From here on the stream is plain both ways.
			peer.Write(later)
			afterExt := cat(msg(msgHaveAll), msg(msgUnchoke), pieceMsg(0, 0, textData(3, 16<<10)))
			time.Sleep(20 * time.Millisecond) // the peer's handshake is in
			if _, err := c.Write(afterExt); err != nil {
				t.Fatal(err)
			}
			back := make([]byte, len(afterExt))
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(peer, back); err != nil || !bytes.Equal(back, afterExt) {
				t.Fatalf("peer read %x (%v), want what the library wrote", back[:min(len(back), 64)], err)
			}
			want := cat(handshake(true), extMsg(map[string]any{"m": map[string]any{"ut_metadata": 3}, "v": "aria2/1.36.0", "p": 6881}), later)
			if seen := lib.waitSeen(t, len(want)); !bytes.Equal(seen, want) {
				t.Errorf("library read\n%q\nwant\n%q", seen, want)
			}
			if st := c.State().Compress; st.Out != "" || st.In != "" || st.OutWire != 0 || st.Offered != (tc.want != nil) {
				t.Errorf("compression state %+v with a peer that has none", st)
			}
			if s := l.Stats(); s.Compressed != 0 || s.Malformed != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// Ensure the algorithm choice: our cp when the peer takes it, else the
// highest sum of priorities, zstd on a tie, none without a common one.
func TestChooseAlgo(t *testing.T) {
	for _, tc := range []struct {
		ours CompressOptions
		peer [numAlgos]int
		want algo
	}{
		{CompressOptions{Zstd: 2, LZ4: 1}, [numAlgos]int{0, 2, 1}, algoZstd},
		{CompressOptions{Zstd: 1, LZ4: 2}, [numAlgos]int{0, 2, 1}, algoZstd}, // 3 each: zstd
		{CompressOptions{Zstd: 1, LZ4: 9}, [numAlgos]int{0, 5, 1}, algoLZ4},
		{CompressOptions{Zstd: 1, LZ4: 9, Preferred: "zstd"}, [numAlgos]int{0, 5, 1}, algoZstd},
		{CompressOptions{Zstd: 1, LZ4: 9, Preferred: "zstd"}, [numAlgos]int{0, 0, 1}, algoLZ4},
		{CompressOptions{Zstd: 1}, [numAlgos]int{0, 0, 1}, algoNone},
		{CompressOptions{}, [numAlgos]int{0, 3, 3}, algoNone},
	} {
		if got := chooseAlgo(tc.ours, tc.peer); got != tc.want {
			t.Errorf("ours %+v, peer %v: %v, want %v", tc.ours, tc.peer, got, tc.want)
		}
	}
	if err := New(&fakePieces{}).Compress(CompressOptions{Zstd: 256}); err == nil {
		t.Error("priority 256 accepted")
	}
	if err := New(&fakePieces{}).Compress(CompressOptions{LZ4: 1, Preferred: "zstd"}); err == nil {
		t.Error("cp for an algorithm not offered accepted")
	}
}

// Ensure that messages the layers inject travel compressed: a REQUEST
// for a piece the other side lacks comes back as a REJECT through the
// compressed stream, and lt_donthave and HAVE go out compressed at
// message boundaries.
func TestCompressedInjection(t *testing.T) {
	la, lb := New(&fakePieces{n: 64}), New(&fakePieces{n: 64, have: map[int]bool{1: true}})
	la.Compress(compOpts)
	lb.Compress(compOpts)
	a, b := compressedPair(t, la, lb)
	waitCompressed(t, a.c)
	waitCompressed(t, b.c)
	startA, startB := len(a.waitSeen(t, 0)), len(b.waitSeen(t, 0))
	// a asks b for piece 5 (b lacks it) and piece 1 (b has it).
	if _, err := a.c.Write(cat(request(5, 0, 16384), request(1, 0, 16384))); err != nil {
		t.Fatal(err)
	}
	if got := b.waitSeen(t, startB+17); !bytes.Equal(got[startB:], request(1, 0, 16384)) {
		t.Errorf("b's library read %x, want only the request for piece 1", got[startB:])
	}
	if got := a.waitSeen(t, startA+17); !bytes.Equal(got[startA:], msgRejectBytes(request(5, 0, 16384)[5:])) {
		t.Errorf("a's library read %x, want a REJECT for piece 5", got[startA:])
	}
	if st := b.c.State(); st.Rejected != 1 || st.Compress.OutWire == 0 {
		t.Errorf("b's state %+v", st)
	}
}

// Ensure compression works inside MSE decrypted by the layer: a peer
// that encrypts below its own compressing layer dials a layer that
// decrypts incoming MSE, and pieces and injected REJECTs cross both ways.
func TestCompressUnderMSE(t *testing.T) {
	ih := testIH
	keys := func(yield func([]byte) bool) { yield(ih[:]) }
	lb := New(&fakePieces{n: 64})
	lb.Decrypt(keys)
	lb.Compress(compOpts)
	la := New(&fakePieces{n: 64})
	la.Compress(compOpts)
	pa, pb := tcpPair(t)
	type res struct {
		rw  io.ReadWriter
		err error
	}
	done := make(chan res, 1)
	go func() {
		// The dialer encrypts under its layer; its library's handshake is
		// the initial payload, so the layer's parser must see it first:
		// the test writes it through the layer below.
		rw, _, err := mse.InitiateHandshake(pa, ih[:], nil, mse.CryptoMethodRC4)
		done <- res{rw, err}
	}()
	cb := lb.Wrap(lb.wrapDecrypt(pb), false)
	b := &libSide{c: cb, done: make(chan struct{})}
	go b.read()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	ca := la.Wrap(rwConn{Conn: pa, rw: r.rw}, true)
	a := &libSide{c: ca, done: make(chan struct{})}
	go a.read()
	t.Cleanup(func() { ca.Close(); cb.Close() })
	for _, s := range []*libSide{a, b} {
		if _, err := s.c.Write(cat(handshake(true), libExt("btslave/test"))); err != nil {
			t.Fatal(err)
		}
	}
	waitCompressed(t, a.c)
	waitCompressed(t, b.c)
	plain, wire := sendPieces(t, a, b, textData(4, 1<<20))
	if wire*2 > plain {
		t.Errorf("text under MSE: %d bytes as %d on the wire", plain, wire)
	}
	if plain, wire = sendPieces(t, b, a, textData(5, 1<<20)); wire*2 > plain {
		t.Errorf("text under MSE, back: %d bytes as %d on the wire", plain, wire)
	}
	if s := lb.Stats(); s.Decrypted != 1 || s.Compressed != 1 || s.Malformed != 0 {
		t.Errorf("decrypting layer: %+v", s)
	}
}

// rwConn is a net.Conn whose bytes go through rw (an MSE stream).
type rwConn struct {
	net.Conn
	rw io.ReadWriter
}

func (c rwConn) Read(p []byte) (int, error)  { return c.rw.Read(p) }
func (c rwConn) Write(p []byte) (int, error) { return c.rw.Write(p) }

var _ = errors.New
var _ metainfo.Hash

// framePieces holds every block of data as a zstd frame of its own, as
// the cache does with cache.compress.
type framePieces struct {
	fakePieces
	data  []byte
	asked int
}

func (f *framePieces) ZstdFrame(_ metainfo.Hash, piece, begin, length int, dst []byte) ([]byte, bool) {
	f.asked++
	off := piece<<18 + begin
	if begin%(16<<10) != 0 || off+length > len(f.data) {
		return dst, false
	}
	enc, _ := zstdEncoder()
	return enc.EncodeAll(f.data[off:off+length], dst), true
}

// Ensure that with cp, blocks the pieces hold as zstd frames are sent as
// those frames (no compression on the way), read back exactly, and that
// incompressible ones still go raw.
func TestCompressSplice(t *testing.T) {
	data := cat(textData(8, 1<<20), randomData(9, 1<<20))
	fp := &framePieces{fakePieces: fakePieces{n: 64}, data: data}
	la, lb := New(fp), New(&fakePieces{n: 64})
	if err := la.Compress(CompressOptions{Zstd: 2, LZ4: 1, Preferred: "zstd"}); err != nil {
		t.Fatal(err)
	}
	lb.Compress(compOpts)
	a, b := compressedPair(t, la, lb)
	waitCompressed(t, a.c)
	plain, wire := sendPieces(t, a, b, data)
	s := la.Stats()
	t.Logf("%d bytes as %d; %d frames spliced of %d asked", plain, wire, s.FramesSpliced, fp.asked)
	if s.FramesSpliced != 64 || fp.asked != 128 {
		t.Errorf("spliced %d frames of %d asked, want the 64 text blocks of 128", s.FramesSpliced, fp.asked)
	}
	if float64(wire) > 0.5*float64(plain)+float64(len(data))/2*0.35 {
		t.Errorf("%d bytes as %d on the wire", plain, wire)
	}
}
