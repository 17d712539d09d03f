package tracker

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker/udp"
)

// escapeAll percent-encodes every byte.
func escapeAll(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "%%%02X", c)
	}
	return sb.String()
}

var eventNames = map[event]string{eventNone: "", eventStarted: "started", eventCompleted: "completed", eventStopped: "stopped", eventPaused: "paused"}

// FuzzParseAnnounceQuery checks that any query either fails or parses
// into values that survive being encoded again, and that the scrape
// parser never panics on it.
func FuzzParseAnnounceQuery(f *testing.F) {
	f.Add("info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A&peer_id=-TR3000-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=100&event=started&compact=1&numwant=80&key=ABCD")
	f.Add("info_hash=aaaaaaaaaaaaaaaaaaaa&port=1&left=0&event=paused&compact=0&numwant=-1")
	f.Add("info_hash=%zz&port=70000")
	f.Add("&&info_hash=+++++++++++++++++++%2B&port=65535&left=-5")
	f.Fuzz(func(t *testing.T, raw string) {
		var a httpAnnounce
		err := parseAnnounceQuery(raw, &a)
		parseScrapeQuery(raw, nil)
		if err != nil {
			return
		}
		if a.port < 1 || a.port > 65535 || a.numWant < -1 || a.left < -1 {
			t.Fatalf("out of range: %+v", a)
		}
		again := fmt.Sprintf("info_hash=%s&port=%d&compact=%d", escapeAll(a.ih[:]), a.port, map[bool]int{false: 0, true: 1}[a.compact])
		if a.hasLeft {
			again += fmt.Sprintf("&left=%d", a.left)
		}
		if a.numWant >= 0 {
			again += fmt.Sprintf("&numwant=%d", a.numWant)
		}
		if a.event != eventNone {
			again += "&event=" + eventNames[a.event]
		}
		var b httpAnnounce
		if err := parseAnnounceQuery(again, &b); err != nil {
			t.Fatalf("%q: %v", again, err)
		}
		a.key, a.trackerID = "", ""
		if a != b {
			t.Fatalf("%q gave %+v, encoded again %+v", raw, a, b)
		}
	})
}

// FuzzParseUDPRequest checks that any datagram either fails or decodes
// into a request that, encoded by anacrolix's udp package, decodes the
// same.
func FuzzParseUDPRequest(f *testing.F) {
	var b bytes.Buffer
	udp.Write(&b, udp.RequestHeader{ConnectionId: 7, Action: udp.ActionAnnounce, TransactionId: 9})
	udp.Write(&b, udp.AnnounceRequest{InfoHash: [20]byte{1}, Left: 5, Event: 4, NumWant: -1, Port: 6881})
	f.Add(b.Bytes())
	f.Add(append(b.Bytes(), 2, 3, '/', 'x', 'y'))
	b.Reset()
	udp.Write(&b, udp.RequestHeader{ConnectionId: udp.ConnectRequestConnectionId, Action: udp.ActionConnect, TransactionId: 1})
	f.Add(b.Bytes())
	b.Reset()
	udp.Write(&b, udp.RequestHeader{ConnectionId: 7, Action: udp.ActionScrape, TransactionId: 2})
	f.Add(append(b.Bytes(), make([]byte, 45)...))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		var r udpRequest
		if err := parseUDPRequest(pkt, &r); err != nil {
			return
		}
		var b bytes.Buffer
		udp.Write(&b, udp.RequestHeader{ConnectionId: r.connID, Action: r.action, TransactionId: r.tid})
		switch r.action {
		case udp.ActionAnnounce:
			ev := map[event]int32{eventNone: 0, eventCompleted: 1, eventStarted: 2, eventStopped: 3, eventPaused: 4}[r.event]
			udp.Write(&b, udp.AnnounceRequest{InfoHash: r.ih, Downloaded: r.downloaded, Left: r.left, Uploaded: r.uploaded,
				Event: udp.AnnounceEvent(ev), Key: int32(r.key), NumWant: r.numWant, Port: r.port})
		case udp.ActionScrape:
			if len(r.hashes)%20 != 0 || len(r.hashes) > 20*udpMaxScrape {
				t.Fatalf("%d bytes of hashes", len(r.hashes))
			}
			b.Write(r.hashes)
		}
		var again udpRequest
		if err := parseUDPRequest(b.Bytes(), &again); err != nil {
			t.Fatalf("re-encoded %x: %v", b.Bytes(), err)
		}
		if fmt.Sprint(again) != fmt.Sprint(r) {
			t.Fatalf("%+v re-encoded as %+v", r, again)
		}
	})
}

// FuzzParseSyncPacket checks that any packet either fails or decodes into
// whole entries, and that an authenticated one verifies only with its
// key and sealed again gives the same bytes.
func FuzzParseSyncPacket(f *testing.F) {
	key := []byte("fuzzing key")
	live := appendSyncHeader(nil, 1, syncLive, false)
	live = appendLiveEntry(live, metainfo.Hash{2}, netip.MustParseAddrPort("192.0.2.1:6881"), flagSeed)
	f.Add(live, false)
	tell := appendTellEntry(appendSyncHeader(nil, 1, syncTell, true), metainfo.Hash{3}, 5, 99)
	f.Add(sealSyncPacket(tell, key, 42), true)
	beacon := append(appendSyncHeader(nil, 1, syncBeacon, true), 0, 0, 0, 0, 0, 0, 0, 9)
	f.Add(sealSyncPacket(beacon, key, 1), true)
	f.Add(appendSyncHeader(nil, 1, syncLive6, false), false)
	f.Fuzz(func(t *testing.T, pkt []byte, withKey bool) {
		k := []byte(nil)
		if withKey {
			k = key
		}
		var p syncPacket
		if err := parseSyncPacket(pkt, k, &p); err != nil {
			return
		}
		n := 0
		switch p.typ {
		case syncLive, syncLive6:
			liveEntries(p.body, p.typ == syncLive6, func(e syncLiveEntry) {
				if !e.addr.IsValid() {
					t.Fatalf("entry %+v", e)
				}
				n++
			})
		case syncTell:
			tellEntries(p.body, func(metainfo.Hash, uint32, uint64) { n++ })
		}
		if p.auth {
			head := appendSyncHeader(nil, p.sender, p.typ, true)
			if !bytes.Equal(sealSyncPacket(append(head, p.body...), key, p.seq), pkt) {
				t.Fatal("sealed again differs")
			}
			if parseSyncPacket(pkt, []byte("another key"), &p) == nil {
				t.Fatal("verified with another key")
			}
		}
	})
}
