package tracker_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker/udp"
	"golang.org/x/net/ipv4"

	"github.com/btslave/btslave/repeater/announce"
)

// The load generator of BenchmarkVsOpentracker, the same for both
// trackers: UDP requests in batches (sendmmsg/recvmmsg) with a window of
// requests in flight per socket, and HTTP/1.1 requests on keep-alive
// connections (reopened when the tracker closes them), one in flight per
// connection. Every request goes to 127.0.0.0/8.

// workload is the swarms the benchmark builds: torrents × peersPer
// peers, peer p of every torrent at 127.0.0.1:10000+p, a seed when p is
// even.
type workload struct {
	hashes   []metainfo.Hash
	peersPer int
}

func (w *workload) peers() int { return len(w.hashes) * w.peersPer }

func (w *workload) peerPort(p int) uint16 { return uint16(10000 + p) }

func (w *workload) left(p int) int64 {
	if p%2 == 0 {
		return 0
	}
	return 1000
}

// appendAnnounce appends a UDP announce of peer p of torrent t.
func (w *workload) appendAnnounce(dst []byte, connID uint64, tid uint32, t, p int, ev uint32) []byte {
	be := binary.BigEndian
	dst = be.AppendUint64(dst, connID)
	dst = be.AppendUint32(dst, uint32(udp.ActionAnnounce))
	dst = be.AppendUint32(dst, tid)
	dst = append(dst, w.hashes[t][:]...)
	dst = append(dst, "-XX0001-"...)
	dst = be.AppendUint32(be.AppendUint64(dst, uint64(t)), uint32(p)) // peer id
	dst = be.AppendUint64(dst, 0)                                     // downloaded
	dst = be.AppendUint64(dst, uint64(w.left(p)))
	dst = be.AppendUint64(dst, 0) // uploaded
	dst = be.AppendUint32(dst, ev)
	dst = be.AppendUint32(dst, 0) // ip
	dst = be.AppendUint32(dst, uint32(p))
	dst = be.AppendUint32(dst, 50) // numwant
	return be.AppendUint16(dst, w.peerPort(p))
}

// appendScrape appends a UDP scrape of the torrents ts.
func (w *workload) appendScrape(dst []byte, connID uint64, tid uint32, ts []int) []byte {
	dst = binary.BigEndian.AppendUint64(dst, connID)
	dst = binary.BigEndian.AppendUint32(dst, uint32(udp.ActionScrape))
	dst = binary.BigEndian.AppendUint32(dst, tid)
	for _, t := range ts {
		dst = append(dst, w.hashes[t][:]...)
	}
	return dst
}

// announcePath is the HTTP announce of peer p of torrent t.
func (w *workload) announcePath(t, p int) string {
	return fmt.Sprintf("/announce?info_hash=%s&peer_id=-XX0001-%06d%06d&port=%d&uploaded=0&downloaded=0&left=%d&compact=1&numwant=50",
		announce.EscapeBytes(w.hashes[t][:]), t, p, w.peerPort(p), w.left(p))
}

// scrapePath is the HTTP scrape of the torrents ts.
func (w *workload) scrapePath(ts []int) string {
	var b strings.Builder
	b.WriteString("/scrape?")
	for i, t := range ts {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString("info_hash=" + announce.EscapeBytes(w.hashes[t][:]))
	}
	return b.String()
}

// udpConnect gets a connection id on c, retrying.
func udpConnect(c *net.UDPConn) (uint64, error) {
	var req [16]byte
	binary.BigEndian.PutUint64(req[:], udp.ConnectRequestConnectionId)
	binary.BigEndian.PutUint32(req[12:], 77)
	buf := make([]byte, 64)
	for range 20 {
		if _, err := c.Write(req[:]); err != nil {
			return 0, err
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil && n == 16 && binary.BigEndian.Uint32(buf) == uint32(udp.ActionConnect) {
			return binary.BigEndian.Uint64(buf[8:]), nil
		}
	}
	return 0, errors.New("udp connect: no reply")
}

// udpLoad runs workers sockets against target until d has passed or
// total requests were sent (total 0: no limit), each keeping window
// requests in flight; build makes request number seq. It returns the
// replies per second of action want.
func udpLoad(tb testing.TB, target netip.AddrPort, workers, window int, d time.Duration, total uint64,
	want udp.Action, build func(dst []byte, connID uint64, tid uint32, seq uint64) []byte) float64 {
	tb.Helper()
	var next, replies atomic.Uint64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")), net.UDPAddrFromAddrPort(target))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetReadBuffer(4 << 20)
			connID, err := udpConnect(c)
			if err != nil {
				errs <- err
				return
			}
			pc := ipv4.NewPacketConn(c)
			out := make([]ipv4.Message, window)
			in := make([]ipv4.Message, window)
			for i := range window {
				out[i].Buffers = [][]byte{make([]byte, 0, 1500)}
				in[i].Buffers = [][]byte{make([]byte, 2048)}
			}
			tid := uint32(0)
			done := false
			send := func(n int) {
				k := 0
				for ; k < n; k++ {
					seq := next.Add(1) - 1
					if (total > 0 && seq >= total) || time.Now().After(deadline) {
						done = true
						break
					}
					tid++
					out[k].Buffers[0] = build(out[k].Buffers[0][:0], connID, tid, seq)
				}
				for sent := 0; sent < k; {
					m, err := pc.WriteBatch(out[sent:k], 0)
					if err != nil {
						m = max(m, 1)
					}
					sent += m
				}
			}
			send(window)
			for {
				c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				n, err := pc.ReadBatch(in, 0)
				if err != nil {
					if done {
						return // drained: the rest is lost
					}
					send(window) // replies lost: fill the window again
					continue
				}
				if time.Now().Before(deadline) {
					for i := range in[:n] {
						if in[i].N >= 8 && udp.Action(binary.BigEndian.Uint32(in[i].Buffers[0])) == want {
							replies.Add(1)
						}
					}
				}
				if !done {
					send(n)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	return float64(replies.Load()) / min(time.Since(start), d).Seconds()
}

// httpLoad runs workers connections (from 127.0.0.2, .3, ... so that the
// connections a tracker closes do not run out of ports) against target
// for d, one request in flight on each, and returns the 200 replies per
// second and how many connections were opened.
func httpLoad(tb testing.TB, target netip.AddrPort, workers int, d time.Duration, path func(r *rand.Rand) string) (float64, int64) {
	tb.Helper()
	var replies, dials atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			from := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(2+w))}
			var conn net.Conn
			var br *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for time.Now().Before(deadline) {
				if conn == nil {
					var err error
					d := net.Dialer{LocalAddr: from, Timeout: 2 * time.Second}
					if conn, err = d.Dial("tcp", target.String()); err != nil {
						errs <- err
						return
					}
					dials.Add(1)
					br = bufio.NewReaderSize(conn, 16<<10)
				}
				req := "GET " + path(rng) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(conn, req); err != nil {
					conn.Close()
					conn = nil
					continue
				}
				keep, err := readHTTPReply(br)
				if err != nil {
					conn.Close()
					conn = nil
					continue
				}
				replies.Add(1)
				if !keep {
					conn.Close()
					conn = nil
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	return float64(replies.Load()) / time.Since(start).Seconds(), dials.Load()
}

// readHTTPReply reads one 200 reply and says whether the connection
// stays open.
func readHTTPReply(br *bufio.Reader) (keep bool, err error) {
	status, err := br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	if !bytes.Contains(status, []byte(" 200 ")) {
		return false, fmt.Errorf("status %q", status)
	}
	keep = bytes.HasPrefix(status, []byte("HTTP/1.1"))
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		switch strings.ToLower(string(k)) {
		case "content-length":
			length, _ = strconv.Atoi(string(v))
		case "connection":
			keep = !strings.EqualFold(string(v), "close")
		}
	}
	if length < 0 {
		_, err := io.Copy(io.Discard, br) // until the tracker closes
		return false, err
	}
	_, err = br.Discard(length)
	return keep, err
}

// udpCount sums seeders and leechers over every torrent of w, by UDP
// scrapes.
func udpCount(tb testing.TB, target netip.AddrPort, w *workload) int64 {
	tb.Helper()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(target))
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	connID, err := udpConnect(c)
	if err != nil {
		tb.Fatal(err)
	}
	var sum int64
	buf := make([]byte, 2048)
	for off := 0; off < len(w.hashes); off += 70 {
		var ts []int
		for t := off; t < min(off+70, len(w.hashes)); t++ {
			ts = append(ts, t)
		}
		pkt := w.appendScrape(nil, connID, uint32(off), ts)
		for try := 0; ; try++ {
			c.Write(pkt)
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, err := c.Read(buf)
			if err == nil && n == 8+12*len(ts) {
				for b := buf[8:n]; len(b) >= 12; b = b[12:] {
					sum += int64(binary.BigEndian.Uint32(b)) + int64(binary.BigEndian.Uint32(b[8:]))
				}
				break
			}
			if try == 5 {
				tb.Fatalf("scrape: %v, %d bytes", err, n)
			}
		}
	}
	return sum
}

// rss is a process's resident set size in bytes, from /proc.
func rss(tb testing.TB, pid int) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	tb.Fatalf("no VmRSS for %d", pid)
	return 0
}
