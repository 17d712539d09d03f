package tracker_test

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/tracker/udp"

	"github.com/btslave/btslave/tracker"
)

// Ensure BEP 15 end to end: connect, announce (peers, counts, interval;
// event 4 as a partial seed, as libtorrent sends it), scrape, and that
// the UDP and HTTP sides share one swarm.
func TestUDPAnnounceScrape(t *testing.T) {
	tr := startTracker(t, tracker.Options{Interval: 5 * time.Minute})
	ih := randomHash()
	u := newUDPClient(t, tr, netip.Addr{})
	u.connect()
	seed, ok := u.announce(ih, 4001, 0, 2, -1)
	if !ok || seed.err != "" || seed.seeders != 1 || seed.leechers != 0 || seed.interval != 300 || len(seed.peers) != 0 {
		t.Fatalf("seed announce: %+v %v", seed, ok)
	}
	partial, _ := u.announce(ih, 4002, 100, 4, -1) // libtorrent's paused
	if partial.seeders != 1 || partial.leechers != 1 || len(partial.peers) != 0 {
		t.Errorf("partial seed: %+v (a partial seed gets only downloaders)", partial)
	}
	down, _ := u.announce(ih, 4003, 100, 0, 50)
	if down.seeders != 1 || down.leechers != 2 || len(down.peers) != 2 {
		t.Errorf("downloader: %+v", down)
	}
	httpAnnounce(t, tr, ann{ih: ih, port: 4004, left: 1})
	rows, errMsg := u.scrape(ih, randomHash())
	if errMsg != "" || len(rows) != 2 || rows[0] != [3]int32{1, 0, 3} || rows[1] != [3]int32{} {
		t.Errorf("scrape rows %v %q", rows, errMsg)
	}
	files, _ := httpScrape(t, tr, ih)
	if e := files[ih]; e.Downloaders != 2 || e.Incomplete != 3 {
		t.Errorf("http scrape after udp announces: %+v", e)
	}
	if got, _ := u.announce(ih, 4003, 100, 3, 50); len(got.peers) != 0 {
		t.Errorf("stopped got peers %v", got.peers)
	}
	if rows, _ := u.scrape(ih); rows[0] != [3]int32{1, 0, 2} {
		t.Errorf("after stopped %v", rows)
	}
}

// Ensure that a connection ID works only for the address it was given
// to, that a made-up one is refused, and that an unknown action or a
// short packet gets nothing.
func TestUDPConnectionIDs(t *testing.T) {
	tr := startTracker(t, tracker.Options{})
	ih := randomHash()
	a := newUDPClient(t, tr, netip.MustParseAddr("127.0.0.1"))
	a.connect()
	b := newUDPClient(t, tr, netip.MustParseAddr("127.0.0.2"))
	b.conn = a.conn // stolen from another address
	r, ok := b.announce(ih, 1, 1, 0, -1)
	if !ok || !strings.Contains(r.err, "connection id") {
		t.Errorf("announce with another address's connection id: %+v", r)
	}
	b.conn ^= 1
	if r, _ := b.announce(ih, 1, 1, 0, -1); !strings.Contains(r.err, "connection id") {
		t.Errorf("announce with a made-up id: %+v", r)
	}
	a.wait = 200 * time.Millisecond // for the silence that follows
	if _, _, ok := a.roundTrip(a.conn, udp.Action(9), nil); ok {
		t.Error("unknown action answered")
	}
	if _, _, ok := a.roundTrip(0x1234, udp.ActionConnect, nil); ok {
		t.Error("connect without the protocol id answered")
	}
	if r, _ := a.announce(ih, 1, 1, 0, -1); r.err != "" || r.leechers != 1 {
		t.Errorf("a valid announce after the refused ones: %+v", r)
	}
	if st := tr.Stats(); st.BadConnID != 2 || st.Malformed != 2 {
		t.Errorf("stats: bad connection id %d (want 2), malformed %d (want 2)", st.BadConnID, st.Malformed)
	}
}

// Ensure that a UDP announce reply never holds more peers than fit a
// datagram, and numwant is honoured below that.
func TestUDPPeerLimits(t *testing.T) {
	tr := startTracker(t, tracker.Options{})
	ih := randomHash()
	u := newUDPClient(t, tr, netip.Addr{})
	u.connect()
	for p := range 260 {
		u.announce(ih, uint16(5000+p), 0, 2, 0)
	}
	r, _ := u.announce(ih, 6000, 1, 2, 1000)
	if len(r.peers) != 200 || r.seeders != 260 {
		t.Errorf("%d peers of %d seeds, want 200", len(r.peers), r.seeders)
	}
	slices.SortFunc(r.peers, netip.AddrPort.Compare)
	if len(slices.Compact(r.peers)) != len(r.peers) {
		t.Error("a peer listed twice")
	}
	if r, _ := u.announce(ih, 6000, 1, 0, 7); len(r.peers) != 7 {
		t.Errorf("numwant 7 gave %d peers", len(r.peers))
	}
	// A body shorter than an announce is dropped.
	u.wait = 200 * time.Millisecond
	if _, _, ok := u.roundTrip(u.conn, udp.ActionAnnounce, binary.BigEndian.AppendUint32(nil, 1)); ok {
		t.Error("short announce answered")
	}
}

// Ensure BEP 15 over IPv6: 18-byte peers, and a dual-stack socket
// answering an IPv4 client with 6-byte ones.
func TestUDPIPv6(t *testing.T) {
	tr := startTracker(t, tracker.Options{UDPListen: "[::]:0"})
	if !tr.UDPAddr().Addr().Is6() {
		t.Skipf("no IPv6 socket: %v", tr.UDPAddr())
	}
	ih := randomHash()
	six := newUDPClient(t, tr, lo6)
	six.connect()
	four := newUDPClient(t, tr, lo)
	four.connect()
	four.announce(ih, 1001, 0, 2, 0)
	six.announce(ih, 1002, 0, 2, 0)
	six.announce(ih, 1003, 0, 2, 0)
	r6, _ := six.announce(ih, 1004, 5, 2, 50)
	if !slices.Equal(sortedPeers(r6.peers), []netip.AddrPort{netip.AddrPortFrom(lo6, 1002), netip.AddrPortFrom(lo6, 1003)}) || r6.seeders != 3 {
		t.Errorf("v6 downloader got %v (seeders %d), want the two v6 seeds", r6.peers, r6.seeders)
	}
	r4, _ := four.announce(ih, 1005, 5, 2, 50)
	if !slices.Equal(r4.peers, []netip.AddrPort{netip.AddrPortFrom(lo, 1001)}) || r4.leechers != 2 {
		t.Errorf("v4 downloader got %v (leechers %d), want the v4 seed", r4.peers, r4.leechers)
	}
}

func sortedPeers(p []netip.AddrPort) []netip.AddrPort {
	p = slices.Clone(p)
	slices.SortFunc(p, netip.AddrPort.Compare)
	return p
}
