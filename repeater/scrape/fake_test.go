package scrape

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// Test hashes carry their own figures: complete h[0], downloaded h[1],
// incomplete h[2]; a fake HTTP tracker does not know a hash with h[3] == 0.

// testHash makes a hash with the given figures, known to the fake HTTP
// tracker, unique by n.
func testHash(complete, downloaded, incomplete byte, n int) metainfo.Hash {
	var h metainfo.Hash
	h[0], h[1], h[2], h[3] = complete, downloaded, incomplete, 1
	binary.BigEndian.PutUint32(h[4:], uint32(n))
	h[8] = ' ' // opentracker decodes no "+": the hash must be sent as %20
	return h
}

// testHashes makes n hashes with varied figures.
func testHashes(n int) []metainfo.Hash {
	out := make([]metainfo.Hash, n)
	for i := range out {
		out[i] = testHash(byte(i%7), byte(i%11), byte(i%5), i)
	}
	return out
}

// unknownHash is a hash the fake HTTP tracker does not list.
func unknownHash(n int) metainfo.Hash {
	h := testHash(9, 9, 9, n)
	h[3] = 0
	return h
}

// checkResult fails unless r holds h's figures.
func checkResult(t testing.TB, h metainfo.Hash, r Result, ok bool) {
	t.Helper()
	if !ok {
		t.Errorf("%x: no result", h[:8])
		return
	}
	if !r.Known || r.Complete != int64(h[0]) || r.Downloaded != int64(h[1]) || r.Incomplete != int64(h[2]) {
		t.Errorf("%x: got %+v, want known, complete %d, downloaded %d, incomplete %d", h[:8], r, h[0], h[1], h[2])
	}
	if r.At.IsZero() || r.Tracker == "" {
		t.Errorf("%x: result without At or Tracker: %+v", h[:8], r)
	}
}

// fakeHTTP is an HTTP tracker on 127.0.0.1 that answers scrapes from the
// hashes' own figures, optionally through reply.
type fakeHTTP struct {
	srv *httptest.Server
	// reply, if set, answers instead (status, body).
	reply func(r *http.Request) (int, string)
	// delay holds each reply back.
	delay time.Duration
	// downloaders adds BEP 21 "downloaders" (= incomplete - 1).
	downloaders bool

	mu          sync.Mutex
	reqs        []*http.Request
	inflight    int
	maxInflight int
}

func startFakeHTTP(t testing.TB, configure func(*fakeHTTP)) *fakeHTTP {
	t.Helper()
	f := &fakeHTTP{}
	if configure != nil {
		configure(f)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHTTP) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	time.Sleep(f.delay)
	if f.reply != nil {
		status, body := f.reply(r)
		w.WriteHeader(status)
		w.Write([]byte(body))
		return
	}
	if r.URL.Path != "/scrape" {
		http.NotFound(w, r)
		return
	}
	w.Write([]byte(f.goodBody(r)))
}

// goodBody is the well-behaved tracker's reply to r.
func (f *fakeHTTP) goodBody(r *http.Request) string {
	var b strings.Builder
	b.WriteString("d5:filesd")
	for _, v := range r.URL.Query()["info_hash"] {
		if len(v) != 20 || v[3] == 0 {
			continue
		}
		fmt.Fprintf(&b, "20:%sd8:completei%de10:downloadedi%de10:incompletei%de", v, v[0], v[1], v[2])
		if f.downloaders {
			fmt.Fprintf(&b, "11:downloadersi%de", int(v[2])-1)
		}
		b.WriteString("e")
	}
	b.WriteString("ee")
	return b.String()
}

// url is the tracker's announce URL.
func (f *fakeHTTP) url() string { return f.srv.URL + "/announce" }

func (f *fakeHTTP) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.reqs...)
}

// fakeUDP is a BEP 15 tracker on 127.0.0.1 answering connect and scrape
// from the hashes' own figures. Each packet is answered by its own
// goroutine after delay, so replies to pipelined requests overlap.
type fakeUDP struct {
	pc net.PacketConn
	// delay holds each reply back.
	delay time.Duration
	// maxRows caps the rows per reply (0: no cap), like chihaya.
	maxRows int
	// handle, if set, answers a packet instead, with any number of
	// packets (answer gives the well-behaved one).
	handle func(f *fakeUDP, pkt []byte) [][]byte

	wg          sync.WaitGroup
	mu          sync.Mutex
	connects    int
	scrapes     int
	sizes       []int // hashes per scrape packet
	froms       map[netip.AddrPort]bool
	ids         map[uint64]bool // connection IDs handed out and still valid
	nextID      uint64
	inflight    int
	maxInflight int
}

func startFakeUDP(t testing.TB, configure func(*fakeUDP)) *fakeUDP {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUDP{pc: pc, froms: map[netip.AddrPort]bool{}, ids: map[uint64]bool{}, nextID: 0x1122334455660000}
	if configure != nil {
		configure(f)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done; f.wg.Wait() })
	go func() {
		defer close(done)
		for {
			buf := make([]byte, 2048)
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			f.mu.Lock()
			f.froms[addr.(*net.UDPAddr).AddrPort()] = true
			f.inflight++
			f.maxInflight = max(f.maxInflight, f.inflight)
			f.mu.Unlock()
			f.wg.Go(func() {
				time.Sleep(f.delay)
				var out [][]byte
				if f.handle != nil {
					out = f.handle(f, buf[:n])
				} else if a := f.answer(buf[:n]); a != nil {
					out = [][]byte{a}
				}
				f.mu.Lock()
				f.inflight--
				f.mu.Unlock()
				for _, p := range out {
					pc.WriteTo(p, addr)
				}
			})
		}
	}()
	return f
}

// answer is the well-behaved tracker's reply to pkt.
func (f *fakeUDP) answer(pkt []byte) []byte {
	if len(pkt) < 16 {
		return nil
	}
	connID := binary.BigEndian.Uint64(pkt[0:8])
	action := binary.BigEndian.Uint32(pkt[8:12])
	tid := pkt[12:16]
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case action == 0 && connID == 0x41727101980:
		f.connects++
		f.nextID++
		f.ids[f.nextID] = true
		out := udpHeader(0, tid)
		return binary.BigEndian.AppendUint64(out, f.nextID)
	case action == 2 && f.ids[connID]:
		f.scrapes++
		hashes := (len(pkt) - 16) / 20
		f.sizes = append(f.sizes, hashes)
		if f.maxRows > 0 {
			hashes = min(hashes, f.maxRows)
		}
		out := udpHeader(2, tid)
		for i := range hashes {
			h := pkt[16+20*i:]
			out = binary.BigEndian.AppendUint32(out, uint32(h[0]))
			out = binary.BigEndian.AppendUint32(out, uint32(h[1]))
			out = binary.BigEndian.AppendUint32(out, uint32(h[2]))
		}
		return out
	default:
		return append(udpHeader(3, tid), "bad connection id"...)
	}
}

// expireIDs makes every connection ID handed out invalid.
func (f *fakeUDP) expireIDs() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.ids)
}

func (f *fakeUDP) counts() (connects, scrapes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connects, f.scrapes
}

func udpHeader(action uint32, tid []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, action), tid...)
}

func (f *fakeUDP) url() string { return "udp://" + f.pc.LocalAddr().String() + "/announce" }

// fastOptions are Options for tests against fakes on loopback.
func fastOptions() Options {
	return Options{
		Timeout:    2 * time.Second,
		UDPTimeout: 200 * time.Millisecond,
		BackoffMin: time.Hour, // tests that need it shorter say so
		BackoffMax: time.Hour,
	}
}

func mustNew(t testing.TB, o Options) *Scraper {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
