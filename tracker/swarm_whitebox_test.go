package tracker

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// Ensure that a peer list agrees with a map under random inserts, updates
// and removals, across bucket splits, and that pick never repeats a peer
// or returns self.
func TestPeerListModel(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var l peerList[peer4]
	model := map[netip.AddrPort]uint8{}
	addr := func() netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(40)), byte(rng.IntN(250))}), uint16(1+rng.IntN(4)))
	}
	for step := range 60000 {
		a := addr()
		p := newPeer4(a, 0, 0)
		bi, i, ok := l.find(p)
		if _, in := model[a]; in != ok {
			t.Fatalf("step %d: find(%v) = %v, model %v", step, a, ok, in)
		}
		switch {
		case ok && rng.IntN(3) == 0:
			l.removeAt(bi, i)
			delete(model, a)
		case ok:
			f := uint8(rng.IntN(256))
			l.set(bi, i, l.get(bi, i).with(f, 7))
			model[a] = f
		default:
			f := uint8(rng.IntN(256))
			l.insert(newPeer4(a, f, 3))
			model[a] = f
		}
	}
	if l.len() != len(model) || len(l.b) < 4 {
		t.Fatalf("len %d, model %d, buckets %d (want a split list)", l.len(), len(model), len(l.b))
	}
	l.each(func(p peer4) {
		if f, ok := model[p.addrPort()]; !ok || f != p.flags() {
			t.Fatalf("%v flags %x, model %x %v", p.addrPort(), p.flags(), f, ok)
		}
	})
	var self netip.AddrPort
	for a := range model {
		self = a
		break
	}
	for _, want := range []int{1, 50, 200, l.len(), l.len() + 10} {
		out, n := pick(nil, &l, nil, want, newPeer4(self, 0, 0), rng.Uint64())
		if n != min(want, l.len()-1) || len(out) != 6*n {
			t.Fatalf("pick %d: %d peers (%d bytes) of %d", want, n, len(out), l.len())
		}
		seen := map[string]bool{}
		for p := out; len(p) > 0; p = p[6:] {
			k := string(p[:6])
			if seen[k] {
				t.Fatalf("pick %d: %x twice", want, p[:6])
			}
			seen[k] = true
		}
		s := newPeer4(self, 0, 0).appendCompact(nil)
		if seen[string(s)] {
			t.Fatalf("pick %d returned self", want)
		}
	}
}

// Ensure that IPv6 records keep address, port, flags and epoch, and
// order by address.
func TestPeer6Record(t *testing.T) {
	a := netip.MustParseAddrPort("[2001:db8::1]:6881")
	b := netip.MustParseAddrPort("[2001:db8::1]:6882")
	p := newPeer6(a, flagSeed, 9)
	if p.addrPort() != a || p.flags() != flagSeed || p.epoch() != 9 || p.cmp(newPeer6(b, 0, 0)) >= 0 {
		t.Errorf("record %v %x %d", p.addrPort(), p.flags(), p.epoch())
	}
	q := newPeer4(netip.MustParseAddrPort("192.0.2.1:80"), flagPartial, 200)
	if q.addrPort().String() != "192.0.2.1:80" || q.flags() != flagPartial || q.epoch() != 200 {
		t.Errorf("v4 record %v %x %d", q.addrPort(), q.flags(), q.epoch())
	}
}

// Ensure that peers expire after two intervals without an announce, that
// counts follow, and that an empty torrent goes unless it has downloads.
func TestSweepExpiry(t *testing.T) {
	s := newSwarms(100)
	ih, other := metainfo.Hash{1}, metainfo.Hash{2}
	ann := func(h metainfo.Hash, port uint16, left int64, ev event, epoch uint8) {
		r := announceReq{ih: h, addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), left: left, event: ev}
		if _, _, err := s.announce(&r, epoch, 1000, nil); err != nil {
			t.Fatal(err)
		}
	}
	ann(ih, 1, 0, eventCompleted, 250)
	ann(ih, 2, 5, eventNone, 254)
	ann(other, 1, 5, eventNone, 250)
	// Epoch 258 (2 after wrapping): the first peers are 8 slots old, kept.
	if n := s.sweep(expiry{epoch: 2, now: 1000, idle: 60}); n != 0 {
		t.Fatalf("swept %d peers at age 8", n)
	}
	// Epoch 259: peers from 250 are 9 slots old; the one from 254 stays;
	// one announced "after" the sweep's clock (epoch 4) too.
	ann(ih, 3, 5, eventNone, 4)
	if n := s.sweep(expiry{epoch: 3, now: 1000, idle: 60}); n != 2 {
		t.Fatalf("swept %d peers, want 2", n)
	}
	c, ok := s.scrape(ih)
	if !ok || c.seeds != 0 || c.downloaders != 2 || c.downloaded != 1 {
		t.Errorf("counts %+v %v", c, ok)
	}
	if _, ok := s.scrape(other); ok || s.tot.torrents.Load() != 1 {
		t.Errorf("an empty torrent without downloads was kept (%d torrents)", s.tot.torrents.Load())
	}
	// Once idle long enough, the torrent with a download goes too.
	s.sweep(expiry{epoch: 20, now: 1000, idle: 60})
	if _, ok := s.scrape(ih); !ok {
		t.Error("a torrent with downloads was dropped before its idle time")
	}
	s.sweep(expiry{epoch: 20, now: 1061, idle: 60})
	if _, ok := s.scrape(ih); ok || s.tot.seeds.Load()+s.tot.downloaders.Load()+s.tot.partials.Load() != 0 {
		t.Errorf("totals %d/%d/%d after all expired", s.tot.seeds.Load(), s.tot.partials.Load(), s.tot.downloaders.Load())
	}
}

// Ensure that the tracker refuses new torrents when full, and answers a
// stopped announce for an unknown torrent without creating it.
func TestSwarmsFull(t *testing.T) {
	s := newSwarms(1)
	r := announceReq{ih: metainfo.Hash{1}, addr: netip.MustParseAddrPort("127.0.0.1:1"), left: 1}
	if _, _, err := s.announce(&r, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	r.ih = metainfo.Hash{2}
	if _, _, err := s.announce(&r, 0, 0, nil); err != errFull {
		t.Errorf("second torrent: %v, want errFull", err)
	}
	r.event = eventStopped
	if _, ch, err := s.announce(&r, 0, 0, nil); err != nil || ch.flags != flagStopped || s.tot.torrents.Load() != 1 {
		t.Errorf("stopped on an unknown torrent: %v %+v", err, ch)
	}
}

// Ensure that a flood from one address is limited while other addresses,
// including those sharing one of its slots, still pass.
func TestLimiterFlood(t *testing.T) {
	l := newLimiter(5)
	now := time.Unix(1000, 0).UnixNano()
	l.now = func() int64 { return now }
	flood := netip.MustParseAddr("192.0.2.66")
	passed := 0
	for range 1000 {
		if l.allow(flood) {
			passed++
		}
	}
	if passed != 50 {
		t.Errorf("flood: %d of 1000 passed at once, want the burst of 50", passed)
	}
	blocked := 0
	for i := range 20000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if !l.allow(ip) {
			blocked++
		}
	}
	if blocked != 0 {
		t.Errorf("%d of 20000 other addresses refused", blocked)
	}
	now += int64(time.Second)
	if !l.allow(flood) {
		t.Error("the flooder is still refused a second later")
	}
	if !newLimiter(0).allow(flood) {
		t.Error("no limit refused")
	}
}
