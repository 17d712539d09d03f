package announce_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// udpAnnounceSeen is what the fake UDP tracker read from one announce.
type udpAnnounceSeen struct {
	event                      uint32
	downloaded, left, uploaded int64
	port                       uint16
	from                       netip.AddrPort
}

// fakeUDPTracker is a BEP 15 tracker on 127.0.0.1 that answers connect
// and announce and records the announces.
type fakeUDPTracker struct {
	pc       net.PacketConn
	mu       sync.Mutex
	connects int
	seen     []udpAnnounceSeen
}

func startFakeUDP(t *testing.T, peers ...netip.AddrPort) *fakeUDPTracker {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUDPTracker{pc: pc}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		const connID = 0x1122334455667788
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 16 {
				continue
			}
			action := binary.BigEndian.Uint32(buf[8:12])
			tid := buf[12:16]
			out := binary.BigEndian.AppendUint32(nil, action)
			out = append(out, tid...)
			switch {
			case action == 0 && n >= 16 && binary.BigEndian.Uint64(buf[0:8]) == 0x41727101980:
				f.mu.Lock()
				f.connects++
				f.mu.Unlock()
				out = binary.BigEndian.AppendUint64(out, connID)
			case action == 1 && n >= 98 && binary.BigEndian.Uint64(buf[0:8]) == connID:
				b := buf[16:n]
				s := udpAnnounceSeen{
					downloaded: int64(binary.BigEndian.Uint64(b[40:48])),
					left:       int64(binary.BigEndian.Uint64(b[48:56])),
					uploaded:   int64(binary.BigEndian.Uint64(b[56:64])),
					event:      binary.BigEndian.Uint32(b[64:68]),
					port:       binary.BigEndian.Uint16(b[80:82]),
					from:       addr.(*net.UDPAddr).AddrPort(),
				}
				f.mu.Lock()
				f.seen = append(f.seen, s)
				f.mu.Unlock()
				out = binary.BigEndian.AppendUint32(out, 1800) // interval
				out = binary.BigEndian.AppendUint32(out, 2)    // leechers
				out = binary.BigEndian.AppendUint32(out, 1)    // seeders
				for _, p := range peers {
					a := p.Addr().As4()
					out = append(out, a[:]...)
					out = binary.BigEndian.AppendUint16(out, p.Port())
				}
			default:
				out = binary.BigEndian.AppendUint32(nil, 3)
				out = append(out, tid...)
				out = append(out, "bad request"...)
			}
			pc.WriteTo(out, addr)
		}
	}()
	return f
}

func (f *fakeUDPTracker) url() string { return "udp://" + f.pc.LocalAddr().String() + "/announce" }

// Ensure that a partial seed over UDP sends started, then none (never the
// nonexistent event 4), honest figures, and stopped (3) on shutdown.
func TestUDP_EventsAndStopped(t *testing.T) {
	peer := netip.MustParseAddrPort("10.0.0.7:6000")
	f := startFakeUDP(t, peer)
	o := fastOptions(f.url())
	o.LocalIP = netip.MustParseAddr("127.0.0.1")
	var mu sync.Mutex
	var got []netip.AddrPort
	o.OnPeers = func(p []netip.AddrPort) { mu.Lock(); got = append(got, p...); mu.Unlock() }
	a := mustNew(t, o)
	runFor(t, a, 350*time.Millisecond)

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) < 3 {
		t.Fatalf("got %d announces, want >= 3", len(f.seen))
	}
	var events []uint32
	for _, s := range f.seen {
		events = append(events, s.event)
		if s.event > 3 {
			t.Errorf("UDP event %d sent; BEP 15 defines 0..3 only", s.event)
		}
		if s.uploaded != 1234 || s.downloaded != 567 || s.left != 89000 || s.port != 6881 {
			t.Errorf("announce %+v: want uploaded 1234, downloaded 567, left 89000, port 6881", s)
		}
		if s.from.Addr() != o.LocalIP {
			t.Errorf("announce from %v, want %v", s.from, o.LocalIP)
		}
	}
	if events[0] != 2 || events[len(events)-1] != 3 {
		t.Errorf("events %v: want 2 (started) first and 3 (stopped) last", events)
	}
	for _, e := range events[1 : len(events)-1] {
		if e != 0 {
			t.Errorf("events %v: periodic partial-seed announce must be 0 (none)", events)
			break
		}
	}
	if f.connects != 1 {
		t.Errorf("%d connects, want 1 (the connection ID lives 1 min)", f.connects)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 || got[0] != peer {
		t.Errorf("OnPeers got %v, want %v", got, peer)
	}
	st := a.Status()[0]
	if st.Seeders != 1 || st.Leechers != 2 || st.LastError != "" || st.PausedRefused {
		t.Errorf("status %+v", st)
	}
}

// Ensure that a silent UDP tracker times out, backs off and does not hold
// up shutdown beyond StopTimeout.
func TestUDP_Silent(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	a := mustNew(t, fastOptions("udp://"+pc.LocalAddr().String()+"/announce"))
	if d := runFor(t, a, 500*time.Millisecond); d > 900*time.Millisecond {
		t.Errorf("Run took %v after cancel, want <= StopTimeout (500 ms)", d)
	}
	st := a.Status()[0]
	if st.LastError == "" || st.Failures == 0 {
		t.Errorf("status %+v: want a recorded timeout", st)
	}
}
