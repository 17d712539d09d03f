package repeater

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/internal/lab"
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
// the callbacks ClientConfig installs raise a connection's peak to the
// floor before a message is handled and after a request is sent, leave a
// higher peak alone and still call callbacks set before them.
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

	// The SentRequest callback raises the same field, given the Peer.
	if err := peerPeakRequestsField.err; err != nil {
		t.Fatalf("peakRequests not found in torrent.Peer: %v", err)
	}
	if len(cc.Callbacks.SentRequest) != 1 {
		t.Fatalf("%d SentRequest callbacks, want 1", len(cc.Callbacks.SentRequest))
	}
	setPeak(t, pc, 0)
	cc.Callbacks.SentRequest[0](torrent.PeerRequestEvent{Peer: &pc.Peer})
	if got := peak(t, pc); got != requestWindowFloor {
		t.Fatalf("after a request sent the peak is %d, want %d", got, requestWindowFloor)
	}

	// Chained: callbacks set before keep being called.
	var calls, sent int
	cc2 := torrent.NewDefaultClientConfig()
	cc2.Callbacks.ReadMessage = func(*torrent.PeerConn, *pp.Message) { calls++ }
	cc2.Callbacks.SentRequest = []func(torrent.PeerRequestEvent){func(torrent.PeerRequestEvent) { sent++ }}
	installRequestWindow(cc2, nil)
	pc2 := new(torrent.PeerConn)
	cc2.Callbacks.ReadMessage(pc2, &pp.Message{Type: pp.Unchoke})
	for _, f := range cc2.Callbacks.SentRequest {
		f(torrent.PeerRequestEvent{Peer: &pc2.Peer})
	}
	if calls != 1 || sent != 1 || peak(t, pc2) != requestWindowFloor {
		t.Fatalf("chained hooks: %d and %d calls, peak %d", calls, sent, peak(t, pc2))
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

// TestRequestWindowOnTheWire: a client of ours asks a peer that unchoked
// it for a full window at once (min(reqq 250, 2 × floor)), where anacrolix
// v1.61 alone sends one request and waits for its answer: after the
// unchoke (the ReadMessage half of the floor), and when more pieces
// become wanted after an update that asked for few, with no message from
// the peer in between (the SentRequest half).
func TestRequestWindowOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		name       string
		wantBefore bool // the client wants the data before the unchoke
	}{{"unchoked", true}, {"wanted later", false}} {
		t.Run(tc.name, func(t *testing.T) {
			// 64: twice the floor of 32; without the floor, 1.
			if n := requestsInFlight(t, tc.wantBefore); n < 64 {
				t.Fatalf("%d requests in flight, want >= 64 (the floor's window)", n)
			} else {
				t.Logf("%d requests in flight", n)
			}
		})
	}
}

// requestsInFlight connects a scripted seed (lab.RawPeer) to a new client
// of ours with an 8 MiB torrent, unchokes it, has the client want all of
// it (before the unchoke or a moment after), answers nothing, and counts
// the requests that come.
func requestsInFlight(t *testing.T, wantBefore bool) int {
	mi, data := makeTorrent(t, t.TempDir(), 8<<20, 256<<10) // 512 blocks of 16 KiB
	c, err := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tt, err := c.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until every piece is checked (and, with wantBefore, wanted):
	// then the window, not what is wanted, bounds what an update asks for.
	wantAll := func() {
		tt.DownloadAll()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			ready := true
			for i := range tt.NumPieces() {
				if st := tt.Piece(i).State(); !st.Ok || st.Checking || (!st.Complete && st.Priority == torrent.PiecePriorityNone) {
					ready = false
					break
				}
			}
			if ready {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the torrent's pieces were never all checked and wanted")
			}
		}
	}
	if wantBefore {
		wantAll()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := lab.DialPeer(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(c.LocalPort())), mi.HashInfoBytes(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Unchoke, then say we have every piece (32 pieces: 4 bytes of bits).
	if err := p.Send(lab.Msg(byte(pp.Unchoke)), lab.Msg(byte(pp.Bitfield), 0xff, 0xff, 0xff, 0xff)); err != nil {
		t.Fatal(err)
	}
	requests := 0
	count := func(quiet time.Duration) {
		for {
			id, _, err := p.ReadMsg(quiet)
			if errors.Is(err, lab.ErrNoMessage) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id == byte(pp.Request) {
				requests++
			}
		}
	}
	if !wantBefore {
		// Nothing is wanted: no requests. Then one piece: its 16 blocks,
		// answered; the update on the emptied queue asks for nothing and
		// leaves the peak at zero, and the queue stays empty (idle) until
		// the rest is wanted, as a reader's seek after a pause does.
		count(500 * time.Millisecond)
		if requests != 0 {
			t.Fatalf("%d requests before anything was wanted", requests)
		}
		tt.Piece(0).SetPriority(torrent.PiecePriorityNormal)
		var asked [][]byte
		for len(asked) < 16 {
			id, payload, err := p.ReadMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("after %d requests for the one piece wanted: %v", len(asked), err)
			}
			if id == byte(pp.Request) {
				asked = append(asked, payload)
			}
		}
		for _, r := range asked {
			index, begin, length := binary.BigEndian.Uint32(r), binary.BigEndian.Uint32(r[4:]), binary.BigEndian.Uint32(r[8:])
			off := int64(index)*(256<<10) + int64(begin)
			if err := p.Send(lab.Msg(byte(pp.Piece), append(r[:8:8], data[off:off+int64(length)]...)...)); err != nil {
				t.Fatal(err)
			}
		}
		count(500 * time.Millisecond)
		if requests != 0 || !tt.Piece(0).State().Complete {
			t.Fatalf("after the one piece: %d more requests, piece complete %v", requests, tt.Piece(0).State().Complete)
		}
		wantAll()
	}
	// Answer nothing: every request sent is one the window allowed.
	count(time.Second)
	return requests
}
