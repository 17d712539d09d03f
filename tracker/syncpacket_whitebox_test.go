package tracker

import (
	"net/netip"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
)

// Ensure that SYNC_LIVE and SYNC_LIVE6 entries and tell entries decode to
// what was encoded, at the documented sizes, authenticated or not.
func TestSyncPacketRoundTrip(t *testing.T) {
	key := []byte("sixteen byte key")
	v4 := netip.MustParseAddrPort("192.0.2.9:51413")
	v6 := netip.MustParseAddrPort("[2001:db8::7]:6881")
	for _, auth := range []bool{false, true} {
		k := []byte(nil)
		if auth {
			k = key
		}
		for _, c := range []struct {
			typ  uint32
			addr netip.AddrPort
			size int
		}{{syncLive, v4, syncLiveLen}, {syncLive6, v6, syncLive6Len}} {
			pkt := appendSyncHeader(nil, 0xabcd, c.typ, auth)
			pkt = appendLiveEntry(pkt, metainfo.Hash{1}, c.addr, flagSeed|flagCompleted)
			pkt = appendLiveEntry(pkt, metainfo.Hash{2}, c.addr, flagPartial)
			if len(pkt) != syncHeaderLen+2*c.size {
				t.Fatalf("type %d: %d bytes", c.typ, len(pkt))
			}
			if auth {
				pkt = sealSyncPacket(pkt, key, 77)
			}
			var p syncPacket
			if err := parseSyncPacket(pkt, k, &p); err != nil {
				t.Fatalf("type %d auth %v: %v", c.typ, auth, err)
			}
			var got []syncLiveEntry
			liveEntries(p.body, c.typ == syncLive6, func(e syncLiveEntry) { got = append(got, e) })
			want := []syncLiveEntry{{metainfo.Hash{1}, c.addr, flagSeed | flagCompleted}, {metainfo.Hash{2}, c.addr, flagPartial}}
			if len(got) != 2 || got[0] != want[0] || got[1] != want[1] || p.sender != 0xabcd || p.auth != auth || (auth && p.seq != 77) {
				t.Errorf("type %d auth %v: %+v %+v", c.typ, auth, p, got)
			}
			if parseSyncPacket(pkt[:len(pkt)-1], k, &p) == nil {
				t.Errorf("type %d auth %v: a truncated packet parsed", c.typ, auth)
			}
		}
	}
	tell := appendTellEntry(appendSyncHeader(nil, 1, syncTell, false), metainfo.Hash{3}, 90, 1<<40)
	var p syncPacket
	if err := parseSyncPacket(tell, nil, &p); err != nil || len(tell) != syncHeaderLen+syncTellLen {
		t.Fatal(err, len(tell))
	}
	tellEntries(p.body, func(ih metainfo.Hash, off uint32, n uint64) {
		if ih != (metainfo.Hash{3}) || off != 90 || n != 1<<40 {
			t.Errorf("tell entry %x %d %d", ih, off, n)
		}
	})
	if parseSyncPacket(tell, key, &p) != errSyncNoAuth {
		t.Error("a plain packet accepted with a key set")
	}
}

// Ensure the replay window: each number once, reordering within 64
// accepted, older refused.
func TestReplayWindow(t *testing.T) {
	var w replayWindow
	for _, c := range []struct {
		seq  uint64
		want bool
	}{{100, true}, {100, false}, {98, true}, {99, true}, {98, false}, {200, true}, {137, true}, {136, false}, {137, false}, {201, true}} {
		if got := w.accept(c.seq); got != c.want {
			t.Errorf("accept(%d) = %v, want %v", c.seq, got, c.want)
		}
	}
}
