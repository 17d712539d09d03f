package tracker_test

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/tracker"
)

// syncRound is the tests' SYNC_LIVE flush delay.
const syncRound = 50 * time.Millisecond

// syncPair starts two trackers that sync with each other (and with extra
// peers), with key as their sync key.
func syncPair(t *testing.T, key []byte, mutate func(*tracker.SyncOptions), extra ...netip.AddrPort) (a, b *tracker.Tracker) {
	t.Helper()
	// Each tracker syncs from a loopback address of its own: a port found
	// free on 127.0.0.1 can be taken by a parallel test before it is bound.
	aa, ab := lab.NextAddr(), lab.NextAddr()
	pa := netip.AddrPortFrom(aa, uint16(lab.FreeUDPPort(t, aa)))
	pb := netip.AddrPortFrom(ab, uint16(lab.FreeUDPPort(t, ab)))
	mk := func(self, other netip.AddrPort) *tracker.Tracker {
		so := tracker.SyncOptions{Listen: self.String(), Peers: append([]netip.AddrPort{other}, extra...), Key: key, FlushDelay: syncRound}
		if mutate != nil {
			mutate(&so)
		}
		return startTracker(t, tracker.Options{Sync: so})
	}
	return mk(pa, pb), mk(pb, pa)
}

// sameCounts reports whether both trackers give ih the same scrape.
func sameCounts(t *testing.T, a, b *tracker.Tracker, ih metainfo.Hash) (scrapeEntry, scrapeEntry, bool) {
	fa, _ := httpScrape(t, a, ih)
	fb, _ := httpScrape(t, b, ih)
	return fa[ih], fb[ih], fa[ih] == fb[ih]
}

// Ensure the authenticated peer sync: a peer that announced to one
// tracker is handed out by the other, and after one sync round both
// trackers' scrapes agree, partial seeds, completions and stops included.
func TestSyncPeers(t *testing.T) {
	a, b := syncPair(t, []byte("a shared key for this sync group"), nil)
	ih := randomHash()
	httpAnnounce(t, a, ann{ih: ih, port: 1001, left: 0, event: "started"})
	httpAnnounce(t, a, ann{ih: ih, port: 1002, left: 7, event: "paused"})
	u := newUDPClient(t, a, netip.Addr{})
	u.connect()
	u.announce(ih, 1003, 7, 2, 0)
	var got annReply
	waitFor(t, 5*time.Second, "b to hand out a's seed", func() bool {
		got = httpAnnounce(t, b, ann{ih: ih, port: 2001, left: 9, event: "started"})
		return slices.Contains(got.peers, netip.AddrPortFrom(lo, 1001))
	})
	if got.Complete != 1 || got.Downloaders != 2 || got.Incomplete != 3 {
		t.Errorf("b's counts %+v: want a's seed, partial seed and downloader and its own downloader", got)
	}
	// A download completes at b and a peer leaves a.
	httpAnnounce(t, b, ann{ih: ih, port: 2001, left: 0, event: "completed"})
	httpAnnounce(t, a, ann{ih: ih, port: 1003, left: 7, event: "stopped"})
	time.Sleep(3 * syncRound)
	waitFor(t, 5*time.Second, "equal scrapes", func() bool { _, _, ok := sameCounts(t, a, b, ih); return ok })
	ea, eb, _ := sameCounts(t, a, b, ih)
	if want := (scrapeEntry{Complete: 2, Downloaded: 1, Incomplete: 1, Downloaders: 0}); ea != want {
		t.Errorf("scrapes a %+v b %+v, want %+v", ea, eb, want)
	}
	if sa, sb := a.Stats().Sync, b.Stats().Sync; sa == nil || sa.PacketsIn == 0 || sb.PacketsOut == 0 || !sa.Auth || sa.Rejected+sb.Rejected != 0 {
		t.Errorf("sync stats a %+v b %+v", sa, sb)
	}
}

// Ensure the scrape sync: a new tracker that sees a beacon from one with
// more than twice its torrents inquires, is told the downloaded counts and
// keeps the larger of its own and the told ones.
func TestSyncScrape(t *testing.T) {
	fast := func(o *tracker.SyncOptions) {
		o.BeaconDelay, o.BeaconInterval, o.InquireWait, o.TellQuiet = time.Millisecond, 40*time.Millisecond, 100*time.Millisecond, time.Minute
		o.FlushDelay = time.Hour // no peer sync in this test
	}
	// Plain packets (no key), as opentracker sends, from the peers'
	// addresses.
	a, b := syncPair(t, nil, fast)
	ihs := []metainfo.Hash{randomHash(), randomHash(), randomHash()}
	for i, ih := range ihs {
		for p := range i + 1 {
			httpAnnounce(t, a, ann{ih: ih, port: 100 + p, left: 0, event: "completed"})
		}
	}
	// b knows more about the last one.
	for p := range 5 {
		httpAnnounce(t, b, ann{ih: ihs[2], port: 200 + p, left: 0, event: "completed"})
	}
	waitFor(t, 10*time.Second, "b to learn a's counts", func() bool {
		files, _ := httpScrape(t, b, ihs...)
		return files[ihs[0]].Downloaded == 1 && files[ihs[1]].Downloaded == 2
	})
	files, _ := httpScrape(t, b, ihs...)
	if files[ihs[2]].Downloaded != 5 || files[ihs[0]].Complete != 0 {
		t.Errorf("b after the tell: %+v (want the larger count kept, and no peers)", files)
	}
	if fa, _ := httpScrape(t, a, ihs[2]); fa[ihs[2]].Downloaded != 3 {
		t.Errorf("a's own count changed without an inquiry: %+v", fa)
	}
}

// Ensure that sync packets are taken only from the group: with a key, a
// packet from outside with a bad HMAC, a plain one and a replayed one are
// dropped; without a key, one from an address not among the sync peers.
func TestSyncRejects(t *testing.T) {
	spy, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.Loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	spyAddr := spy.LocalAddr().(*net.UDPAddr).AddrPort()
	a, b := syncPair(t, []byte("a shared key for this sync group"), nil, spyAddr)
	ih := randomHash()
	httpAnnounce(t, a, ann{ih: ih, port: 1, left: 0})
	// The spy gets what b got: a's packet.
	buf := make([]byte, 2048)
	spy.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := spy.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	pkt := buf[:n]
	waitFor(t, 5*time.Second, "b to get a's peer", func() bool {
		f, _ := httpScrape(t, b, ih)
		return f[ih].Complete == 1
	})
	to := net.UDPAddrFromAddrPort(b.SyncAddr())
	send := func(p []byte) {
		if _, err := spy.WriteToUDP(p, to); err != nil {
			t.Fatal(err)
		}
	}
	send(pkt) // replay
	forged := append([]byte(nil), pkt...)
	forged[20] ^= 1 // another info-hash, same MAC
	send(forged)
	plain := append([]byte(nil), pkt[:8]...)
	plain[4] &^= 0x80 // the authentication bit off
	plain = append(plain, pkt[8:8+28]...)
	send(plain)
	waitFor(t, 5*time.Second, "three rejects", func() bool { return b.Stats().Sync.Rejected == 3 })
	if f, _ := httpScrape(t, b, ih); f[ih].Complete != 1 || b.Stats().Torrents != 1 {
		t.Errorf("b after the forgeries: %+v, %d torrents", f[ih], b.Stats().Torrents)
	}

	// Without a key, by address: the spy is not a peer of c.
	c, _ := syncPair(t, nil, nil)
	to = net.UDPAddrFromAddrPort(c.SyncAddr())
	send(plain)
	waitFor(t, 5*time.Second, "a reject", func() bool { return c.Stats().Sync.Rejected == 1 })
	if c.Stats().Torrents != 0 {
		t.Error("a packet from a stranger was applied")
	}
}
