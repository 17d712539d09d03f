package tracker

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker/udp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpBatch is how many datagrams one system call reads or writes.
const udpBatch = 64

// udpBufSize is the receive buffer per datagram; larger datagrams are
// truncated (and then refused as malformed if that matters).
const udpBufSize = 2048

// batchConn reads and writes datagrams many at a time (recvmmsg and
// sendmmsg on Linux); ipv4.PacketConn and ipv6.PacketConn implement it.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// udpServer answers BEP 15 on one or more sockets bound to the same
// address (SO_REUSEPORT on Linux, one per CPU up to 4), each read by its
// own goroutine that handles a batch of requests and writes the replies
// in one batch.
type udpServer struct {
	t     *Tracker
	conns []*net.UDPConn
	wg    sync.WaitGroup
}

func newUDPServer(t *Tracker, addr string, sockets int) (*udpServer, error) {
	conns, err := listenUDP(addr, sockets)
	if err != nil {
		return nil, fmt.Errorf("tracker: udp listen %s: %w", addr, err)
	}
	return &udpServer{t: t, conns: conns}, nil
}

// addr is the address the sockets are bound to.
func (u *udpServer) addr() netip.AddrPort {
	return u.conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
}

// start starts one reader per socket.
func (u *udpServer) start() {
	for i, c := range u.conns {
		w := u.t.stats.udpWorker(i)
		u.wg.Go(func() { u.serve(c, w) })
	}
}

// close closes the sockets and waits for the readers.
func (u *udpServer) close() {
	for _, c := range u.conns {
		c.Close()
	}
	u.wg.Wait()
}

func (u *udpServer) serve(c *net.UDPConn, w *workerStats) {
	var bc batchConn
	if u.addr().Addr().Is4() {
		bc = ipv4.NewPacketConn(c)
	} else {
		bc = ipv6.NewPacketConn(c)
	}
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	outBufs := make([][]byte, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, udpBufSize)}
		outBufs[i] = make([]byte, 0, 1500)
		out[i].Buffers = [][]byte{nil}
	}
	h := udpHandler{t: u.t, w: w}
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			u.t.log.Debug("udp read", "err", err)
			time.Sleep(time.Millisecond) // a transient error must not spin
			continue
		}
		h.now = time.Now()
		h.epoch, h.minute = u.t.epochAt(h.now)
		k := 0
		for i := range in[:n] {
			ua, ok := in[i].Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			from := ua.AddrPort()
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			r := h.handle(in[i].Buffers[0][:in[i].N], from, outBufs[k][:0])
			if len(r) == 0 {
				continue
			}
			out[k].Buffers[0] = r
			out[k].Addr = in[i].Addr
			k++
		}
		for sent := 0; sent < k; {
			m, err := bc.WriteBatch(out[sent:k], 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				u.t.log.Debug("udp write", "to", out[sent+m].Addr, "err", err)
				m++ // drop the datagram that failed
			}
			sent += m
		}
	}
}

// udpHandler handles the requests of one socket's batch.
type udpHandler struct {
	t      *Tracker
	w      *workerStats
	now    time.Time
	epoch  uint8
	minute int64
	req    udpRequest
	ar     announceReq
	rep    reply
	idBuf  connIDBuf
}

// handle answers one datagram from from, appending the reply to dst; an
// empty result means no reply.
func (h *udpHandler) handle(pkt []byte, from netip.AddrPort, dst []byte) []byte {
	t := h.t
	r := &h.req
	if err := parseUDPRequest(pkt, r); err != nil {
		h.w.malformed.Add(1)
		return nil
	}
	if r.action == udp.ActionConnect {
		h.w.connects.Add(1)
		return appendConnectReply(dst, r.tid, t.connIDs.make(from.Addr(), &h.idBuf))
	}
	if !t.connIDs.valid(from.Addr(), r.connID, &h.idBuf) {
		// An error reply is smaller than the request: no amplification
		// for a spoofed source, and a real client reconnects at once.
		h.w.badConnID.Add(1)
		return appendUDPError(dst, r.tid, "connection id expired or invalid; connect again")
	}
	if !t.limit.allow(from.Addr()) {
		// Dropped without a reply: the client backs off on its own.
		h.w.limited.Add(1)
		return nil
	}
	switch r.action {
	case udp.ActionAnnounce:
		return h.announce(from, dst)
	case udp.ActionScrape:
		h.w.scrapes.Add(1)
		dst = appendUDPHeader(dst, udp.ActionScrape, r.tid)
		for b := r.hashes; len(b) >= 20; b = b[20:] {
			ih := metainfo.Hash(b[:20])
			var c counts
			if t.allowed(ih) {
				c, _ = t.state.scrape(ih)
			}
			dst = appendScrapeRow(dst, c)
		}
		return dst
	}
	return nil
}

func (h *udpHandler) announce(from netip.AddrPort, dst []byte) []byte {
	t, r := h.t, &h.req
	h.w.announces.Add(1)
	if !t.allowed(r.ih) {
		h.w.refused.Add(1)
		return appendUDPError(dst, r.tid, errNotAllowed.Error())
	}
	if r.port == 0 {
		h.w.malformed.Add(1)
		return appendUDPError(dst, r.tid, "port 0 is not a peer's port")
	}
	maxPeers := udpMaxPeers4
	if !from.Addr().Is4() {
		maxPeers = udpMaxPeers6
	}
	want := int(r.numWant)
	if want < 0 {
		want = defaultNumWant
	}
	a := &h.ar
	*a = announceReq{ih: r.ih, addr: netip.AddrPortFrom(from.Addr(), r.port), left: r.left, event: r.event,
		want: min(want, maxPeers)}
	if r.left < 0 {
		a.left = 1 // nonsense: not a seed
	}
	h.rep.peers4, h.rep.peers6 = h.rep.peers4[:0], h.rep.peers6[:0]
	c, ch, err := t.state.announce(a, h.epoch, h.minute, &h.rep)
	if err != nil {
		return appendUDPError(dst, r.tid, err.Error())
	}
	t.announced(a, ch)
	dst = appendAnnounceHead(dst, r.tid, int32(t.interval/time.Second), c)
	dst = append(dst, h.rep.peers4...)
	return append(dst, h.rep.peers6...)
}
