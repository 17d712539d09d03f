package tracker

import (
	"bytes"
	"crypto/rand"
	"net/netip"
	"runtime"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker/udp"
)

// BenchmarkLivePeerMemory loads 10,000 torrents of 100 IPv4 peers into
// the swarm state and reports the live heap per peer after a collection:
// what the records, lists and maps cost without the Go runtime's slack
// (BenchmarkVsOpentracker measures the resident set).
func BenchmarkLivePeerMemory(b *testing.B) {
	const torrents, per = 10_000, 100
	hashes := make([]metainfo.Hash, torrents)
	for i := range hashes {
		rand.Read(hashes[i][:])
	}
	var ms runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		s := newSwarms(DefaultMaxTorrents)
		for p := range per {
			for _, ih := range hashes {
				r := announceReq{ih: ih, addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(10000+p)), left: int64(p % 2)}
				s.announce(&r, 0, 0, nil)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/(torrents*per), "bytes/peer")
		runtime.KeepAlive(s)
	}
}

// BenchmarkUDPHandle measures the work of one UDP announce without the
// system calls: decode, connection id, state, reply of 50 peers.
func BenchmarkUDPHandle(b *testing.B) {
	tr, err := New(Options{UDPListen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	const torrents, per = 10_000, 100
	hashes := make([]metainfo.Hash, torrents)
	for i := range hashes {
		rand.Read(hashes[i][:])
		for p := range per {
			r := announceReq{ih: hashes[i], addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(10000+p)), left: int64(p % 2)}
			tr.state.announce(&r, 0, 0, nil)
		}
	}
	from := netip.MustParseAddrPort("127.0.0.1:5555")
	connID := tr.connIDs.make(from.Addr(), new(connIDBuf))
	pkts := make([][]byte, 1024)
	for i := range pkts {
		var ar bytes.Buffer
		udp.Write(&ar, udp.RequestHeader{ConnectionId: connID, Action: udp.ActionAnnounce, TransactionId: int32(i)})
		udp.Write(&ar, udp.AnnounceRequest{InfoHash: hashes[i*7%torrents], Left: int64(i % 2), NumWant: 50, Port: uint16(10000 + i%per)})
		pkts[i] = ar.Bytes()
	}
	h := udpHandler{t: tr, w: tr.stats.udpWorker(0)}
	dst := make([]byte, 0, 1500)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if len(h.handle(pkts[i%len(pkts)], from, dst)) < 20 {
			b.Fatal("no reply")
		}
	}
}
