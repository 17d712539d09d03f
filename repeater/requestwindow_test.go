package repeater

import (
	"bytes"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// peak reads a connection's unexported peakRequests the way reflection
// allows (no unsafe), independently of the hook's offset arithmetic.
func peak(t *testing.T, pc *torrent.PeerConn) int64 {
	t.Helper()
	f := reflect.ValueOf(pc).Elem().FieldByName("peakRequests")
	if !f.IsValid() {
		t.Fatal("torrent.PeerConn has no peakRequests")
	}
	return f.Int()
}

func setPeak(t *testing.T, pc *torrent.PeerConn, n int64) {
	t.Helper()
	f := reflect.ValueOf(pc).Elem().FieldByName("peakRequests")
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetInt(n)
}

// TestRequestWindowFloor: on the pinned anacrolix the field is found, and
// the callback ClientConfig installs raises a connection's peak to the
// floor before a message is handled, leaves a higher peak alone and still
// calls a callback set before it.
func TestRequestWindowFloor(t *testing.T) {
	if err := peakRequestsField.err; err != nil {
		t.Fatalf("peakRequests not found on the pinned anacrolix: %v", err)
	}
	cc, err := ClientConfig(ClientOptions{Peer: testPeer(t, "127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	hook := cc.Callbacks.ReadMessage
	if hook == nil {
		t.Fatal("ClientConfig sets no ReadMessage callback")
	}
	pc := new(torrent.PeerConn)
	if got := peak(t, pc); got != 0 {
		t.Fatalf("a new connection's peak is %d, want 0", got)
	}
	hook(pc, &pp.Message{Type: pp.Unchoke})
	if got := peak(t, pc); got < requestWindowFloor {
		t.Fatalf("after an Unchoke the peak is %d, want >= %d", got, requestWindowFloor)
	}
	// An update that added few requests shrinks the peak; the next message
	// raises it again.
	setPeak(t, pc, 3)
	hook(pc, &pp.Message{Type: pp.Piece})
	if got := peak(t, pc); got != requestWindowFloor {
		t.Fatalf("after a Piece the peak is %d, want %d", got, requestWindowFloor)
	}
	setPeak(t, pc, 700)
	hook(pc, &pp.Message{Type: pp.Have})
	if got := peak(t, pc); got != 700 {
		t.Fatalf("a peak of 700 became %d", got)
	}

	// Chained: a callback set before keeps being called.
	var calls int
	chained := requestWindowHook(nil, func(*torrent.PeerConn, *pp.Message) { calls++ })
	pc2 := new(torrent.PeerConn)
	chained(pc2, &pp.Message{Type: pp.Unchoke})
	if calls != 1 || peak(t, pc2) != requestWindowFloor {
		t.Fatalf("chained hook: %d calls, peak %d", calls, peak(t, pc2))
	}
}

// TestRequestWindowMissingField: another library version (field gone,
// retyped or behind a pointer) disables the hook with one warning, and the
// callback chained under it is what remains.
func TestRequestWindowMissingField(t *testing.T) {
	type inner struct{ peakRequests int }
	type viaPointer struct{ *inner }
	type embedded struct {
		_ [3]int64
		inner
	}
	cases := map[string]reflect.Type{
		"missing":  reflect.TypeFor[struct{ other int }](),
		"retyped":  reflect.TypeFor[struct{ peakRequests uint32 }](),
		"pointer":  reflect.TypeFor[viaPointer](),
		"nostruct": reflect.TypeFor[int](),
	}
	for name, typ := range cases {
		if f := findIntField(typ, "peakRequests"); f.err == nil {
			t.Errorf("%s: found at %d, want an error", name, f.offset)
		}
	}
	// Promoted through an embedded struct it is found, at the right place.
	f := findIntField(reflect.TypeFor[embedded](), "peakRequests")
	if f.err != nil {
		t.Fatal(f.err)
	}
	var e embedded
	f.raise(unsafe.Pointer(&e), 9)
	if e.peakRequests != 9 {
		t.Fatalf("raise wrote elsewhere: field is %d", e.peakRequests)
	}

	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var once sync.Once
	bad := findIntField(cases["missing"], "peakRequests")
	if h := requestWindowHookFor(bad, &once, log, nil); h != nil {
		t.Fatal("a disabled hook with nothing chained is not nil")
	}
	var calls int
	h := requestWindowHookFor(bad, &once, log, func(*torrent.PeerConn, *pp.Message) { calls++ })
	h(new(torrent.PeerConn), &pp.Message{Type: pp.Unchoke})
	if calls != 1 {
		t.Fatalf("chained callback called %d times", calls)
	}
	if n := strings.Count(buf.String(), "request window floor disabled"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, buf.String())
	}
}
