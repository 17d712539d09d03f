package repeater

import (
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"unsafe"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// requestWindowFloor is the least peak the request window of a connection
// is given. anacrolix (v1.61) lets a connection have
// min(reqq, 2 × peakRequests, ~960) requests in flight, starts peakRequests
// at zero (one request) and sets it, after every request update, to the
// number of requests that update added: the window grows one doubling per
// emptied queue, a round trip each. Transmission answers at its 500 ms
// pulse, so after its unchoke the queue took about 4 s to reach 250 (aria2c
// asks for hundreds at once), and an update that found the queue nearly
// full shrank the peak back to the few slots it filled. With the floor the
// "unchoked" update and every later one fill up to min(reqq, 64) at once:
// 64 blocks of 16 KiB, 1 MiB in flight. A floor of 128 (4 MiB in flight)
// read 256 MiB from Transmission 1 s faster (1.00 × aria2c against
// 0.98 ×) but made the first seek after a sequential read wait for 2-3
// readahead pieces the seed had already committed to (TTFB 497-750 ms
// against 251 ms on a 4 MiB/s seed; docs/btfs.md).
const requestWindowFloor = 32

// peakRequestsField is where anacrolix keeps a connection's peak inside a
// torrent.PeerConn, found once by reflection; err says why it was not.
var peakRequestsField = findIntField(reflect.TypeFor[torrent.PeerConn](), "peakRequests")

// intField is the byte offset of an int field (promoted through embedded
// structs, never through a pointer) inside a struct type.
type intField struct {
	offset uintptr
	err    error
}

// findIntField looks up the field name of struct type t, promoted fields
// included, and checks that it is an int reached without a pointer hop.
// Another anacrolix version may have renamed, moved or retyped it: that is
// an error, never a guess.
func findIntField(t reflect.Type, name string) intField {
	if t.Kind() != reflect.Struct {
		return intField{err: fmt.Errorf("%v is not a struct", t)}
	}
	f, ok := t.FieldByName(name)
	if !ok {
		return intField{err: fmt.Errorf("%v has no field %s", t, name)}
	}
	var off uintptr
	typ := t
	for i, idx := range f.Index {
		if typ.Kind() != reflect.Struct {
			return intField{err: fmt.Errorf("%v.%s is behind a %v, not an embedded struct", t, name, typ.Kind())}
		}
		sf := typ.Field(idx)
		off += sf.Offset
		typ = sf.Type
		if i == len(f.Index)-1 && typ.Kind() != reflect.Int {
			return intField{err: fmt.Errorf("%v.%s is a %v, not an int", t, name, typ)}
		}
	}
	return intField{offset: off}
}

// raise makes the int field at f in the struct p points to at least floor.
// p must point to a value of the type f was found in.
func (f intField) raise(p unsafe.Pointer, floor int) {
	v := (*int)(unsafe.Add(p, f.offset))
	if *v < floor {
		*v = floor
	}
}

// installRequestWindow keeps the peak of every connection of cc's client
// at requestWindowFloor or more, through two callbacks; anacrolix calls
// both with the client lock held, the lock under which it reads and
// writes the peak:
//
//   - ReadMessage (chained with one set before) runs before each message
//     is handled, so the "unchoked" update that follows an Unchoke and
//     every update after a piece arrives start from the floor; raising on
//     every message, not only on Unchoke, also undoes the shrink an update
//     makes when it finds the queue nearly full (after an eviction, say).
//   - SentRequest runs for each request an update sends, and the update
//     checks the window again before each further request. An update no
//     message preceded (a reader's seek after an idle spell, a piece
//     becoming wanted) starts from the peak the last update left, as low
//     as zero, which allows one request; once that one is sent the window
//     is the floor's again, so the same update fills it. Without this
//     half, a read after an idle spell got one request in flight per
//     round trip (TestRequestWindowOnTheWire, "wanted later"); this half
//     alone would also cover the unchoke.
//
// When the field is missing or of another type (an anacrolix version
// other than v1.61.0), it logs one warning per process and installs
// nothing: downloads then work as the library has them, only slower to
// start.
func installRequestWindow(cc *torrent.ClientConfig, log *slog.Logger) {
	conn, peer := peakRequestsField, peerPeakRequestsField
	if peer.err != nil {
		conn = peer // disable both: one without the other is not what was measured
	}
	cc.Callbacks.ReadMessage = requestWindowHookFor(conn, &requestWindowWarned, log, cc.Callbacks.ReadMessage)
	if conn.err == nil {
		cc.Callbacks.SentRequest = append(cc.Callbacks.SentRequest, func(e torrent.PeerRequestEvent) {
			if e.Peer != nil {
				peer.raise(unsafe.Pointer(e.Peer), requestWindowFloor)
			}
		})
	}
}

// peerPeakRequestsField is the peak inside a torrent.Peer, which is what
// SentRequest is given.
var peerPeakRequestsField = findIntField(reflect.TypeFor[torrent.Peer](), "peakRequests")

// requestWindowWarned makes the warning of a missing field one per process,
// not one per client.
var requestWindowWarned sync.Once

// requestWindowHookFor returns a ReadMessage callback that raises the int
// field f of each connection to requestWindowFloor, then calls next (nil
// for none); or, when f was not found, next itself, after one warning
// (per warned).
func requestWindowHookFor(f intField, warned *sync.Once, log *slog.Logger, next func(*torrent.PeerConn, *pp.Message)) func(*torrent.PeerConn, *pp.Message) {
	if f.err != nil {
		warned.Do(func() {
			if log == nil {
				log = slog.Default()
			}
			log.Warn("request window floor disabled: anacrolix's connection has changed", "err", f.err)
		})
		return next
	}
	return func(pc *torrent.PeerConn, msg *pp.Message) {
		if pc != nil {
			f.raise(unsafe.Pointer(pc), requestWindowFloor)
		}
		if next != nil {
			next(pc, msg)
		}
	}
}
