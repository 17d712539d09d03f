package wire

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/internal/torrentfile"
)

// maxFootprint bounds one connection's state while it reads any stream
// without a metadata fetch: the read buffer, a captured bitfield for the
// largest torrent and the peer's bitset.
const maxFootprint = 32<<10 + 3*(torrentfile.MaxPieces/8+64) + 64<<10

// Ensure a HAVE beyond the piece count closes the connection before the
// library sees it, and before the metadata is known a HAVE beyond what any
// torrent can have: one 9-byte HAVE for piece 0xFFFFFFFF used to grow the
// peer's bitset to 512 MiB.
func TestHaveOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pieces int
		index  uint32
		ok     bool
	}{
		{"known, last", 10, 9, true},
		{"known, past the end", 10, 10, false},
		{"unknown, huge", 0, 0xFFFFFFFF, false},
		{"unknown, past any torrent", 0, torrentfile.MaxPieces, false},
		{"unknown, plausible", 0, 5000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := cat(handshake(true), msg(msgHave, u32(tc.index)...))
			c := New(&fakePieces{n: tc.pieces}).Wrap(&fakeConn{in: bytes.NewReader(in)}, false)
			got, err := readAll(c, 64)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				if !errors.Is(err, ErrBadMessage) || len(got) != handshakeLen {
					t.Errorf("library saw %d bytes (%v); want only the handshake and ErrBadMessage", len(got), err)
				}
			}
			if fp := c.footprint(); fp > maxFootprint {
				t.Errorf("footprint %d bytes after one HAVE", fp)
			}
		})
	}
}

// Ensure a BITFIELD of the wrong size for the torrent, with spare bits set,
// or larger than any torrent closes the connection (BEP 3).
func TestBitfieldChecked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pieces int
		body   []byte
		ok     bool
	}{
		{"exact", 10, []byte{0xff, 0xc0}, true},
		{"spare bits", 10, []byte{0xff, 0xe0}, false},
		{"short", 10, []byte{0xff}, false},
		{"long", 10, []byte{0xff, 0xc0, 0}, false},
		{"unknown, plausible", 0, make([]byte, 1000), true},
		{"unknown, too large", 0, make([]byte, 1<<20), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := cat(handshake(true), msg(msgBitfield, tc.body...))
			c := New(&fakePieces{n: tc.pieces}).Wrap(&fakeConn{in: bytes.NewReader(in), chunk: 4096}, false)
			_, err := readAll(c, 4096)
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrBadMessage)) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if fp := c.footprint(); fp > maxFootprint {
				t.Errorf("footprint %d bytes", fp)
			}
		})
	}
}

// Ensure repeated extended handshakes naming thousands of extensions keep
// the peer's map bounded, show the library only the extensions it
// implements, and close the connection past maxExtHandshakes.
func TestExtHandshakeFlood(t *testing.T) {
	var in []byte
	in = append(in, handshake(true)...)
	for i := range 300 {
		m := map[string]any{"ut_metadata": 2}
		for j := range 600 {
			m["x"+strings.Repeat("y", j%5)+string(rune('a'+i%26))+itoa(j)] = 1 + j%200
		}
		in = append(in, extMsg(map[string]any{"m": m, "v": strings.Repeat("v", 500)})...)
		if i > 2*maxExtHandshakes {
			break // enough to pass the limit
		}
	}
	c := New(&fakePieces{}).Wrap(&fakeConn{in: bytes.NewReader(in), chunk: 16 << 10}, false)
	got, err := readAll(c, 32<<10)
	if !errors.Is(err, ErrBadExtHandshake) {
		t.Fatalf("err = %v, want ErrBadExtHandshake after %d handshakes", err, maxExtHandshakes)
	}
	st := c.State()
	if len(st.Extensions) > maxPeerExtensions || len(st.ClientName) > maxClientName {
		t.Errorf("kept %d extensions and a %d-byte name", len(st.Extensions), len(st.ClientName))
	}
	// What the library saw: handshakes with only ut_metadata in m.
	rest := got[handshakeLen:]
	seen := 0
	for len(rest) >= 4 {
		n := int(be32(rest))
		d, err := parseExtHandshake(rest[6 : 4+n])
		if err != nil {
			t.Fatal(err)
		}
		if m := d["m"].(map[string]any); len(m) != 1 {
			t.Errorf("library was shown %d extensions", len(m))
		}
		seen++
		rest = rest[4+n:]
	}
	if seen != maxExtHandshakes {
		t.Errorf("library saw %d handshakes, want %d", seen, maxExtHandshakes)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// Ensure deep nesting or trailing bytes in an extended handshake close the
// connection before anything decodes it, and an oversized one too.
func TestExtHandshakeDepth(t *testing.T) {
	deep := []byte("d1:v" + strings.Repeat("l", 32<<10) + strings.Repeat("e", 32<<10) + "e")
	for name, payload := range map[string][]byte{
		"nested":   deep[:min(len(deep), maxExtHandshake-1)],
		"deep64k":  deep,
		"trailing": []byte("d1:vi1eexx"),
		"list":     []byte("li1ee"),
	} {
		in := cat(handshake(true), msg(msgExtended, append([]byte{0}, payload...)...))
		c := New(&fakePieces{}).Wrap(&fakeConn{in: bytes.NewReader(in), chunk: 8 << 10}, false)
		got, err := readAll(c, 16<<10)
		if !errors.Is(err, ErrBadExtHandshake) || len(got) != handshakeLen {
			t.Errorf("%s: library saw %d bytes, err %v; want only the handshake and ErrBadExtHandshake", name, len(got), err)
		}
	}
}

// Ensure snapshots do not copy what did not change, and a change after a
// snapshot leaves the snapshot as it was.
func TestStateCopyOnWrite(t *testing.T) {
	peer, ours := tcpPair(t)
	c := New(&fakePieces{n: 100}).Wrap(ours, false)
	body := make([]byte, 13)
	body[0] = 0x80
	go peer.Write(cat(handshake(true), extMsg(map[string]any{"m": map[string]any{"lt_donthave": 7}}), msg(msgBitfield, body...)))
	buf := make([]byte, 4096)
	for st := c.State(); st.Have.Count() == 0; st = c.State() {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	a, b := c.State(), c.State()
	if &a.Have.w[0] != &b.Have.w[0] {
		t.Errorf("two snapshots of an unchanged bitfield were copied")
	}
	go peer.Write(msg(msgHave, u32(5)...))
	for st := c.State(); !st.Have.Has(5); st = c.State() {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	if a.Have.Has(5) || a.Have.Count() != 1 {
		t.Errorf("an earlier snapshot changed: %d pieces", a.Have.Count())
	}
	if a.Extensions["lt_donthave"] != 7 {
		t.Errorf("extensions %v", a.Extensions)
	}
}

// Ensure our held extended handshake reaches a quiet peer — one that sends
// a handshake and nothing else, as BEP 3 allows a peer with no pieces and
// no fast extension — after extDeferTimeout, although nothing else
// happens on the connection: no read, no write by the library.
func TestDeferredHandshakeReleasedOnTime(t *testing.T) {
	old := extDeferTimeout
	extDeferTimeout = 150 * time.Millisecond
	defer func() { extDeferTimeout = old }()
	peer, ours := tcpPair(t)
	c := New(&fakePieces{partial: true}).Wrap(ours, true)
	go io.Copy(io.Discard, c) // the library's reader, blocked on a quiet peer
	if _, err := c.Write(cat(handshake(false), extMsg(map[string]any{"m": map[string]any{"upload_only": 3}}))); err != nil {
		t.Fatal(err)
	}
	peer.Write(handshake(false))
	peer.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, handshakeLen+12)
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatalf("the quiet peer got no extended handshake: %v", err)
	}
	if got[handshakeLen+4] != msgExtended || got[handshakeLen+5] != 0 {
		t.Errorf("got %x", got)
	}
}

// Ensure peer.encryption = "require" refuses plaintext both ways in the
// layer: an incoming plaintext handshake before the library reads it, and
// the library's outgoing plaintext retry.
func TestRequireEncrypted(t *testing.T) {
	l := New(&fakePieces{})
	l.RequireEncrypted(true)
	l.Decrypt(func(yield func([]byte) bool) { yield(testIH[:]) })
	in := l.Wrap(l.wrapDecrypt(&fakeConn{in: bytes.NewReader(handshake(true))}), false)
	if _, err := in.Read(make([]byte, 100)); !errors.Is(err, ErrPlaintext) {
		t.Errorf("incoming plaintext: %v, want ErrPlaintext", err)
	}
	out := l.Wrap(&fakeConn{in: bytes.NewReader(nil)}, true)
	if _, err := out.Write(handshake(true)); !errors.Is(err, ErrPlaintext) {
		t.Errorf("outgoing plaintext: %v, want ErrPlaintext", err)
	}
}
