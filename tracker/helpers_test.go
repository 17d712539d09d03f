package tracker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker/udp"

	"github.com/btslave/btslave/repeater/announce"
	"github.com/btslave/btslave/tracker"
)

// testLogger logs to the test when -v is given, else nowhere.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// startTracker runs a tracker on 127.0.0.1 (HTTP and UDP, free ports, open
// mode unless o says otherwise) until the test ends.
func startTracker(t testing.TB, o tracker.Options) *tracker.Tracker {
	t.Helper()
	if o.HTTPListen == "" && o.UDPListen == "" {
		o.HTTPListen, o.UDPListen = "127.0.0.1:0", "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	tr, err := tracker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tracker Run: %v", err)
		}
	})
	return tr
}

func randomHash() metainfo.Hash {
	var h metainfo.Hash
	rand.Read(h[:])
	return h
}

// ann is one HTTP announce made by httpAnnounce.
type ann struct {
	ih      metainfo.Hash
	port    int
	left    int64
	event   string
	numwant int // 0: not sent
	compact string
	from    netip.Addr // source address; default 127.0.0.1
}

// annReply is a decoded HTTP announce reply.
type annReply struct {
	Failure     string           `bencode:"failure reason"`
	RetryIn     int              `bencode:"retry in"`
	Complete    int64            `bencode:"complete"`
	Incomplete  int64            `bencode:"incomplete"`
	Downloaded  int64            `bencode:"downloaded"`
	Downloaders int64            `bencode:"downloaders"`
	Interval    int64            `bencode:"interval"`
	MinInterval int64            `bencode:"min interval"`
	TrackerID   string           `bencode:"tracker id"`
	Peers       bencode.Bytes    `bencode:"peers"`
	Peers6      []byte           `bencode:"peers6"`
	peers       []netip.AddrPort `bencode:"-"`
}

// httpClient returns a client whose connections leave from ip.
func httpClient(ip netip.Addr) *http.Client {
	if !ip.IsValid() {
		ip = netip.MustParseAddr("127.0.0.1")
	}
	return announce.NewHTTPClient(ip, 4, 5*time.Second)
}

func httpAnnounce(t testing.TB, tr *tracker.Tracker, a ann) annReply {
	t.Helper()
	q := fmt.Sprintf("info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d",
		announce.EscapeBytes(a.ih[:]), announce.EscapeBytes([]byte("-XX0001-abcdefghijkl")), a.port, a.left)
	if a.event != "" {
		q += "&event=" + a.event
	}
	if a.numwant != 0 {
		q += fmt.Sprintf("&numwant=%d", a.numwant)
	}
	if a.compact != "" {
		q += "&compact=" + a.compact
	}
	body := httpGet(t, httpClient(a.from), fmt.Sprintf("http://%s/announce?%s", dialAddr(tr.HTTPAddr(), a.from), q))
	var r annReply
	if err := bencode.Unmarshal(body, &r); err != nil {
		t.Fatalf("announce reply %q: %v", body, err)
	}
	if r.Failure != "" {
		return r
	}
	var compact []byte
	if bencode.Unmarshal(r.Peers, &compact) == nil {
		for p := compact; len(p) >= 6; p = p[6:] {
			r.peers = append(r.peers, netip.AddrPortFrom(netip.AddrFrom4([4]byte(p[:4])), binary.BigEndian.Uint16(p[4:])))
		}
	} else {
		var dicts []struct {
			IP   string `bencode:"ip"`
			Port uint16 `bencode:"port"`
		}
		if err := bencode.Unmarshal(r.Peers, &dicts); err != nil {
			t.Fatalf("peers %q: %v", r.Peers, err)
		}
		for _, d := range dicts {
			r.peers = append(r.peers, netip.AddrPortFrom(netip.MustParseAddr(d.IP), d.Port))
		}
	}
	for p := r.Peers6; len(p) >= 18; p = p[18:] {
		r.peers = append(r.peers, netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[:16])), binary.BigEndian.Uint16(p[16:])))
	}
	return r
}

// dialAddr is where a client on from reaches a listener on ap.
func dialAddr(ap netip.AddrPort, from netip.Addr) netip.AddrPort {
	if !ap.Addr().IsUnspecified() {
		return ap
	}
	if from.IsValid() && from.Is6() {
		return netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())
	}
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port())
}

func httpGet(t testing.TB, c *http.Client, u string) []byte {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v: %q", u, resp.Status, err, body)
	}
	return body
}

// scrapeEntry is one torrent of an HTTP scrape reply.
type scrapeEntry struct {
	Complete    int64 `bencode:"complete"`
	Downloaded  int64 `bencode:"downloaded"`
	Downloaders int64 `bencode:"downloaders"`
	Incomplete  int64 `bencode:"incomplete"`
}

func httpScrape(t testing.TB, tr *tracker.Tracker, ihs ...metainfo.Hash) (map[metainfo.Hash]scrapeEntry, string) {
	t.Helper()
	var parts []string
	for _, ih := range ihs {
		parts = append(parts, "info_hash="+announce.EscapeBytes(ih[:]))
	}
	body := httpGet(t, httpClient(netip.Addr{}), fmt.Sprintf("http://%s/scrape?%s", tr.HTTPAddr(), strings.Join(parts, "&")))
	var r struct {
		Files   map[string]scrapeEntry `bencode:"files"`
		Failure string                 `bencode:"failure reason"`
	}
	if err := bencode.Unmarshal(body, &r); err != nil {
		t.Fatalf("scrape reply %q: %v", body, err)
	}
	out := map[metainfo.Hash]scrapeEntry{}
	for k, v := range r.Files {
		out[metainfo.Hash([]byte(k))] = v
	}
	return out, r.Failure
}

// udpClient speaks BEP 15 to a tracker from its own socket.
type udpClient struct {
	t    testing.TB
	c    *net.UDPConn
	conn uint64
	wait time.Duration // for a reply; default 2s
}

func newUDPClient(t testing.TB, tr *tracker.Tracker, from netip.Addr) *udpClient {
	t.Helper()
	if !from.IsValid() {
		from = netip.MustParseAddr("127.0.0.1")
	}
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), net.UDPAddrFromAddrPort(dialAddr(tr.UDPAddr(), from)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, c: c}
}

// roundTrip sends a request and returns the reply's action and body, or
// ok false when none came within u.wait.
func (u *udpClient) roundTrip(connID uint64, action udp.Action, body []byte) (udp.Action, []byte, bool) {
	u.t.Helper()
	var tidb [4]byte
	rand.Read(tidb[:])
	tid := int32(binary.BigEndian.Uint32(tidb[:]))
	var b bytes.Buffer
	udp.Write(&b, udp.RequestHeader{ConnectionId: connID, Action: action, TransactionId: tid})
	b.Write(body)
	if _, err := u.c.Write(b.Bytes()); err != nil {
		u.t.Fatal(err)
	}
	buf := make([]byte, 4096)
	wait := u.wait
	if wait == 0 {
		wait = 2 * time.Second
	}
	u.c.SetReadDeadline(time.Now().Add(wait))
	for {
		n, err := u.c.Read(buf)
		if err != nil {
			return 0, nil, false
		}
		if n < 8 || int32(binary.BigEndian.Uint32(buf[4:])) != tid {
			continue
		}
		return udp.Action(binary.BigEndian.Uint32(buf)), bytes.Clone(buf[8:n]), true
	}
}

func (u *udpClient) connect() {
	u.t.Helper()
	act, body, ok := u.roundTrip(udp.ConnectRequestConnectionId, udp.ActionConnect, nil)
	if !ok || act != udp.ActionConnect || len(body) != 8 {
		u.t.Fatalf("connect: action %d, %d bytes, ok %v", act, len(body), ok)
	}
	u.conn = binary.BigEndian.Uint64(body)
}

// udpReply is a decoded UDP announce reply.
type udpReply struct {
	interval, leechers, seeders int32
	peers                       []netip.AddrPort
	err                         string
}

func (u *udpClient) announce(ih metainfo.Hash, port uint16, left int64, event int32, numWant int32) (udpReply, bool) {
	u.t.Helper()
	req := udp.AnnounceRequest{InfoHash: ih, Left: left, Event: udp.AnnounceEvent(event), NumWant: numWant, Port: port}
	copy(req.PeerId[:], "-XX0001-udpudpudpudp")
	var b bytes.Buffer
	udp.Write(&b, req)
	act, body, ok := u.roundTrip(u.conn, udp.ActionAnnounce, b.Bytes())
	if !ok {
		return udpReply{}, false
	}
	if act == udp.ActionError {
		return udpReply{err: string(body)}, true
	}
	if act != udp.ActionAnnounce || len(body) < 12 {
		u.t.Fatalf("announce reply: action %d, %d bytes", act, len(body))
	}
	r := udpReply{interval: int32(binary.BigEndian.Uint32(body)), leechers: int32(binary.BigEndian.Uint32(body[4:])),
		seeders: int32(binary.BigEndian.Uint32(body[8:]))}
	size := 6
	if !u.c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap().Is4() {
		size = 18
	}
	for p := body[12:]; len(p) >= size; p = p[size:] {
		ip, _ := netip.AddrFromSlice(p[:size-2])
		r.peers = append(r.peers, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(p[size-2:])))
	}
	return r, true
}

// scrape returns seeders, completed, leechers for each hash.
func (u *udpClient) scrape(ihs ...metainfo.Hash) ([][3]int32, string) {
	u.t.Helper()
	var b []byte
	for _, ih := range ihs {
		b = append(b, ih[:]...)
	}
	act, body, ok := u.roundTrip(u.conn, udp.ActionScrape, b)
	if !ok {
		u.t.Fatal("scrape: no reply")
	}
	if act == udp.ActionError {
		return nil, string(body)
	}
	var out [][3]int32
	for ; len(body) >= 12; body = body[12:] {
		out = append(out, [3]int32{int32(binary.BigEndian.Uint32(body)), int32(binary.BigEndian.Uint32(body[4:])), int32(binary.BigEndian.Uint32(body[8:]))})
	}
	return out, ""
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
