package announce

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"time"

	"github.com/anacrolix/torrent/tracker/udp"
)

// udpConnIDLife is how long a client may use a connection ID (BEP 15).
const udpConnIDLife = time.Minute

// udpFirstRetransmit is the first retransmission delay; it doubles per
// retry within the announce's deadline. BEP 15 suggests 15 s, but our
// announces are bounded by AnnounceTimeout (and 3 s for stopped), so we
// retry sooner and fewer times.
const udpFirstRetransmit = 2 * time.Second

// udpState is a UDP tracker's connection ID, owned by the tracker's
// goroutine.
type udpState struct {
	connID uint64
	issued time.Time
}

// udpAnnounce sends one BEP 15 announce (connecting first when the
// connection ID is stale) and parses the reply.
func (a *Announcer) udpAnnounce(ctx context.Context, u *url.URL, st *udpState, req request) (Reply, error) {
	network := "udp"
	d := net.Dialer{}
	if a.o.LocalIP.IsValid() {
		d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.o.LocalIP, 0))
		network = "udp4"
		if a.o.LocalIP.Is6() {
			network = "udp6"
		}
	}
	conn, err := d.DialContext(ctx, network, u.Host)
	if err != nil {
		return Reply{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if st.issued.IsZero() || time.Since(st.issued) >= udpConnIDLife {
		body, err := udpRoundTrip(ctx, conn, udp.ActionConnect, udp.ConnectRequestConnectionId, nil)
		if err != nil {
			return Reply{}, fmt.Errorf("connect: %w", err)
		}
		var cr udp.ConnectionResponse
		if err := udp.Read(bytes.NewReader(body), &cr); err != nil {
			return Reply{}, fmt.Errorf("connect: %w: %v", errMalformed, err)
		}
		st.connID, st.issued = cr.ConnectionId, time.Now()
	}

	ar := udp.AnnounceRequest{
		Downloaded: req.downloaded,
		Left:       req.left,
		Uploaded:   req.uploaded,
		Event:      req.event.udpEvent(),
		Key:        a.key,
		NumWant:    a.numWant(req.event),
		Port:       uint16(a.o.Port),
	}
	copy(ar.InfoHash[:], a.o.InfoHash[:])
	copy(ar.PeerId[:], a.o.PeerID[:])
	var b bytes.Buffer
	if err := udp.Write(&b, ar); err != nil {
		return Reply{}, err
	}
	// BEP 41: the URL's path and query travel as an option.
	b.Write(udp.Options{RequestUri: u.RequestURI()}.Encode())
	body, err := udpRoundTrip(ctx, conn, udp.ActionAnnounce, st.connID, b.Bytes())
	if err != nil {
		var er udp.ErrorResponse
		if errors.As(err, &er) {
			st.issued = time.Time{} // reconnect next time, in case the ID was the problem
		}
		return Reply{}, fmt.Errorf("announce: %w", err)
	}
	ipLen := 4
	if ra, ok := conn.RemoteAddr().(*net.UDPAddr); ok && ra.IP.To4() == nil {
		ipLen = 16
	}
	return parseUDPReply(body, ipLen)
}

// parseUDPReply parses an announce reply body after its 8-byte header.
func parseUDPReply(body []byte, ipLen int) (Reply, error) {
	var h udp.AnnounceResponseHeader
	if err := udp.Read(bytes.NewReader(body), &h); err != nil {
		return Reply{}, fmt.Errorf("%w: short UDP announce reply (%d bytes)", errMalformed, len(body))
	}
	r := Reply{Interval: max(int64(h.Interval), 0), Seeders: max(int64(h.Seeders), -1), Leechers: max(int64(h.Leechers), -1)}
	peers := body[12:]
	peers = peers[:len(peers)-len(peers)%(ipLen+2)] // some trackers pad
	var err error
	r.Peers, err = appendCompact(nil, peers, ipLen)
	return r, err
}

// udpRoundTrip sends one request and waits for the reply with the same
// transaction ID, retransmitting with doubling delays until ctx is done.
// It returns the reply body after the 8-byte header.
func udpRoundTrip(ctx context.Context, conn net.Conn, action udp.Action, connID uint64, body []byte) ([]byte, error) {
	tid := rand.Int32()
	var pkt bytes.Buffer
	if err := udp.Write(&pkt, udp.RequestHeader{ConnectionId: connID, Action: action, TransactionId: tid}); err != nil {
		return nil, err
	}
	pkt.Write(body)
	buf := make([]byte, 16<<10)
	wait := udpFirstRetransmit
	for {
		if _, err := conn.Write(pkt.Bytes()); err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, err
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if ctx.Err() == nil {
			conn.SetReadDeadline(deadline)
		}
		wait *= 2
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return nil, context.Cause(ctx)
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break // retransmit
				}
				return nil, err
			}
			if n < 8 {
				continue
			}
			gotAction := udp.Action(binary.BigEndian.Uint32(buf[0:4]))
			if int32(binary.BigEndian.Uint32(buf[4:8])) != tid {
				continue // a late reply to an earlier request
			}
			switch gotAction {
			case action:
				return bytes.Clone(buf[8:n]), nil
			case udp.ActionError:
				return nil, udp.ErrorResponse{Message: string(bytes.TrimRight(buf[8:n], "\x00"))}
			default:
				return nil, fmt.Errorf("%w: UDP reply action %d to action %d", errMalformed, gotAction, action)
			}
		}
	}
}
