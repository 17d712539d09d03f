package scrape

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker/udp"
)

// maxUDPReply is the longest UDP reply taken in full: a scrape reply for
// MaxUDPBatch hashes is 896 bytes; anything longer is read cut short and
// rejected by the parser.
const maxUDPReply = 2048

// errUDPTimeout is wrapped by the error for a UDP request left unanswered
// after all its retransmissions.
var errUDPTimeout = errors.New("no UDP reply")

// udpTracker is one UDP tracker's socket, connection ID and requests in
// flight. Requests are pipelined on the socket; its reader goroutine
// hands each reply to the request with the same transaction ID.
type udpTracker struct {
	s       *Scraper
	network string // udp, udp4 or udp6, after LocalIP
	addr    string // host:port

	mu      sync.Mutex
	sock    *udpSocket  // nil until used, and after an idle close
	users   int         // requests holding sock
	idle    *time.Timer // closes sock when it stays unused
	closed  bool
	connID  uint64
	connAt  time.Time    // when connID was asked for; zero: none
	connect *connectCall // the connect in flight, if any
	batch   int          // hashes per packet: MaxUDPBatch, or the tracker's lower limit
}

// udpSocket is one socket to the tracker and the requests waiting for a
// reply on it.
type udpSocket struct {
	c       *net.UDPConn
	pending map[int32]chan udpMsg // by transaction ID; guarded by udpTracker.mu
}

// udpMsg is what the reader hands a request: a whole packet, or an error
// that ends the request.
type udpMsg struct {
	pkt []byte
	err error
}

// connectCall is one connect exchange that other requests wait for.
type connectCall struct {
	done chan struct{}
	id   uint64
	err  error
}

func newUDPTracker(s *Scraper, hostPort string) *udpTracker {
	network := "udp"
	if ip := s.o.LocalIP; ip.IsValid() {
		network = "udp4"
		if ip.Is6() {
			network = "udp6"
		}
	}
	return &udpTracker{s: s, network: network, addr: hostPort, batch: MaxUDPBatch}
}

func (u *udpTracker) batchSize() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.batch
}

// acquire returns the socket, opening it (and starting its reader) if
// needed, and holds it open until release.
func (u *udpTracker) acquire(ctx context.Context) (*udpSocket, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, ErrClosed
	}
	if u.idle != nil {
		u.idle.Stop()
		u.idle = nil
	}
	if u.sock == nil {
		d := net.Dialer{}
		if ip := u.s.o.LocalIP; ip.IsValid() {
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
		}
		c, err := d.DialContext(ctx, u.network, u.addr)
		if err != nil {
			return nil, err
		}
		sock := &udpSocket{c: c.(*net.UDPConn), pending: map[int32]chan udpMsg{}}
		u.sock, u.connAt = sock, time.Time{} // a new source port may need a new connection ID
		u.s.wg.Go(func() { u.read(sock) })
	}
	u.users++
	return u.sock, nil
}

// release ends a request's hold on the socket; the last one arms the idle
// close.
func (u *udpTracker) release() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.users--
	if u.users == 0 && u.sock != nil && !u.closed {
		sock := u.sock
		u.idle = time.AfterFunc(u.s.udpIdle, func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			if u.users == 0 && u.sock == sock {
				u.sock, u.connAt = nil, time.Time{}
				sock.c.Close()
			}
		})
	}
}

// close closes the socket for good; the reader then exits.
func (u *udpTracker) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	if u.idle != nil {
		u.idle.Stop()
	}
	if u.sock != nil {
		u.sock.c.Close()
		u.sock = nil
	}
}

// read hands every packet on sock to the request waiting for its
// transaction ID, until sock is closed.
func (u *udpTracker) read(sock *udpSocket) {
	buf := make([]byte, maxUDPReply)
	for {
		n, err := sock.c.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				// ICMP port unreachable: nothing listens there. Which
				// request it answers is unknown; all go to that port.
				u.failAll(sock, fmt.Errorf("tracker port closed: %w", err))
				continue
			}
			u.mu.Lock()
			if u.sock == sock {
				u.sock, u.connAt = nil, time.Time{}
			}
			if u.closed {
				err = ErrClosed
			}
			u.mu.Unlock()
			sock.c.Close()
			u.failAll(sock, fmt.Errorf("reading: %w", err))
			return
		}
		if n < 8 {
			continue // too short to carry a transaction ID
		}
		tid := int32(binary.BigEndian.Uint32(buf[4:8]))
		u.mu.Lock()
		ch := sock.pending[tid]
		u.mu.Unlock()
		if ch == nil {
			continue // a late reply, or not for us
		}
		select {
		case ch <- udpMsg{pkt: bytes.Clone(buf[:n])}:
		default: // a duplicate
		}
	}
}

// failAll ends every request waiting on sock with err.
func (u *udpTracker) failAll(sock *udpSocket, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, ch := range sock.pending {
		select {
		case ch <- udpMsg{err: err}:
		default:
		}
	}
}

// roundTrip sends one request on sock and waits for the reply with its
// transaction ID, retransmitting after UDPTimeout, then twice and four
// times as long, UDPRetries times. It returns the reply after its 8-byte
// header; an error reply gives a *FailureError.
func (u *udpTracker) roundTrip(ctx context.Context, sock *udpSocket, action udp.Action, connID uint64, body []byte) ([]byte, error) {
	ch := make(chan udpMsg, 1)
	u.mu.Lock()
	tid := rand.Int32()
	for sock.pending[tid] != nil {
		tid = rand.Int32()
	}
	sock.pending[tid] = ch
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(sock.pending, tid)
		u.mu.Unlock()
	}()

	pkt := make([]byte, 16, 16+len(body))
	binary.BigEndian.PutUint64(pkt[0:], connID)
	binary.BigEndian.PutUint32(pkt[8:], uint32(action))
	binary.BigEndian.PutUint32(pkt[12:], uint32(tid))
	pkt = append(pkt, body...)

	wait := u.s.o.UDPTimeout
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for try := 0; ; try++ {
		if _, err := sock.c.Write(pkt); err != nil {
			return nil, fmt.Errorf("sending: %w", err)
		}
		timer.Reset(wait)
		select {
		case m := <-ch:
			if m.err != nil {
				return nil, m.err
			}
			return replyBody(m.pkt, action)
		case <-timer.C:
			if try >= u.s.o.UDPRetries {
				return nil, fmt.Errorf("%w after %d tries", errUDPTimeout, try+1)
			}
			wait *= 2
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// replyBody checks a reply's action and returns what follows its header.
func replyBody(pkt []byte, want udp.Action) ([]byte, error) {
	switch got := udp.Action(binary.BigEndian.Uint32(pkt[0:4])); got {
	case want:
		return pkt[8:], nil
	case udp.ActionError:
		return nil, &FailureError{Reason: string(bytes.TrimRight(pkt[8:], "\x00"))}
	default:
		return nil, fmt.Errorf("%w: UDP reply action %d to action %d", errMalformed, got, want)
	}
}

// connectionID returns a connection ID valid for a minute, asking for one
// on sock if needed; fresh says it was asked for by this call or the one it
// waited for.
func (u *udpTracker) connectionID(ctx context.Context, sock *udpSocket) (id uint64, fresh bool, err error) {
	u.mu.Lock()
	if !u.connAt.IsZero() && time.Since(u.connAt) < u.s.connIDLife {
		id := u.connID
		u.mu.Unlock()
		return id, false, nil
	}
	if call := u.connect; call != nil {
		u.mu.Unlock()
		select {
		case <-call.done:
			return call.id, true, call.err
		case <-ctx.Done():
			return 0, false, context.Cause(ctx)
		}
	}
	call := &connectCall{done: make(chan struct{})}
	u.connect = call
	u.mu.Unlock()

	asked := time.Now()
	body, err := u.roundTrip(ctx, sock, udp.ActionConnect, udp.ConnectRequestConnectionId, nil)
	if err == nil && len(body) < 8 {
		err = fmt.Errorf("%w: connect reply of %d bytes", errMalformed, 8+len(body))
	}
	if err == nil {
		call.id = binary.BigEndian.Uint64(body)
	}
	call.err = err
	u.mu.Lock()
	u.connect = nil
	if err == nil && u.sock == sock {
		u.connID, u.connAt = call.id, asked
	}
	u.mu.Unlock()
	close(call.done)
	return call.id, true, err
}

// forget drops connection ID id, so the next request connects again.
func (u *udpTracker) forget(id uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.connID == id {
		u.connAt = time.Time{}
	}
}

// scrape sends one scrape packet for the first hashes (up to the batch
// size) and puts their Results into out. It returns how many hashes the
// tracker answered: fewer than sent when it has a lower per-packet limit,
// which later packets then keep to.
func (u *udpTracker) scrape(ctx context.Context, hashes []metainfo.Hash, out map[metainfo.Hash]Result, trackerURL string) (int, error) {
	hashes = hashes[:min(len(hashes), u.batchSize())]
	sock, err := u.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer u.release()
	body := make([]byte, 0, 20*len(hashes))
	for _, h := range hashes {
		body = append(body, h[:]...)
	}
	retried := false
	for {
		id, fresh, err := u.connectionID(ctx, sock)
		if err != nil {
			return 0, fmt.Errorf("connect: %w", err)
		}
		reply, err := u.roundTrip(ctx, sock, udp.ActionScrape, id, body)
		if err != nil {
			u.forget(id)
			var fe *FailureError
			if errors.As(err, &fe) && !fresh && !retried {
				retried = true // the tracker may have forgotten the ID
				continue
			}
			return 0, fmt.Errorf("scrape: %w", err)
		}
		rows, err := parseUDPReply(reply, len(hashes))
		if err != nil {
			return 0, err
		}
		if len(rows) < len(hashes) {
			u.mu.Lock()
			u.batch = min(u.batch, len(rows))
			u.mu.Unlock()
			u.s.log.Debug("UDP tracker answers fewer hashes per packet", "tracker", trackerURL, "asked", len(hashes), "rows", len(rows))
		}
		now := time.Now()
		for i, e := range rows {
			out[hashes[i]] = e.result(trackerURL, now, true)
		}
		return len(rows), nil
	}
}
