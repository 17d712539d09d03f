package tracker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// Peer counts in replies.
const (
	defaultNumWant = 50
	maxNumWant     = 200
)

// errNotAllowed is the failure for a torrent outside the whitelist.
var errNotAllowed = errors.New("torrent not registered with this tracker")

// httpServer answers HTTP announces (BEP 3, 7, 21, 23), scrapes (BEP 48,
// with BEP 21's downloaders), /stats and /metrics.
type httpServer struct {
	t   *Tracker
	ln  net.Listener
	srv *http.Server
}

func newHTTPServer(t *Tracker, addr string) (*httpServer, error) {
	ln, err := net.Listen(tcpNetwork(addr), addr)
	if err != nil {
		return nil, fmt.Errorf("tracker: http listen %s: %w", addr, err)
	}
	h := &httpServer{t: t, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", h.announce)
	mux.HandleFunc("/scrape", h.scrape)
	mux.HandleFunc("/stats", t.stats.serveStats)
	mux.Handle("/metrics", t.stats.metricsHandler())
	h.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    8 << 10,
		// Clients' broken connections are no news to the owner.
		ErrorLog: slog.NewLogLogger(t.log.Handler(), slog.LevelDebug),
	}
	return h, nil
}

// addr is where the server listens.
func (h *httpServer) addr() netip.AddrPort { return h.ln.Addr().(*net.TCPAddr).AddrPort() }

// serve serves until shutdown.
func (h *httpServer) serve() error {
	err := h.srv.Serve(h.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// shutdown stops accepting, lets requests in flight finish within ctx,
// then closes every connection.
func (h *httpServer) shutdown(ctx context.Context) {
	if err := h.srv.Shutdown(ctx); err != nil {
		h.srv.Close()
	}
}

// scratch is one request's buffers, reused through scratchPool.
type scratch struct {
	rep    reply
	body   []byte
	hashes []metainfo.Hash
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{rep: reply{peers4: make([]byte, 0, 6*defaultNumWant)}, body: make([]byte, 0, 1024)}
}}

// remoteIP is the client's address, IPv4-mapped ones unmapped.
func remoteIP(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// writeBencode sends body as a tracker reply.
func writeBencode(w http.ResponseWriter, body []byte) {
	hd := w.Header()
	hd["Content-Type"] = []string{"text/plain"}
	hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.Write(body)
}

// failure sends a bencoded failure reason; retryIn > 0 adds BEP 31's
// "retry in" (minutes).
func failure(w http.ResponseWriter, reason string, retryIn int) {
	b := []byte("d14:failure reason")
	b = appendBString(b, reason)
	if retryIn > 0 {
		b = append(b, "8:retry in"...)
		b = appendBInt(b, int64(retryIn))
	}
	writeBencode(w, append(b, 'e'))
}

func (h *httpServer) announce(w http.ResponseWriter, r *http.Request) {
	t := h.t
	t.stats.httpAnnounces.Add(1)
	ip, ok := remoteIP(r)
	if !ok {
		failure(w, "no client address", 0)
		return
	}
	var q httpAnnounce
	if err := parseAnnounceQuery(r.URL.RawQuery, &q); err != nil {
		t.stats.httpMalformed.Add(1)
		failure(w, err.Error(), 0)
		return
	}
	if !t.limit.allow(ip) {
		t.stats.httpLimited.Add(1)
		failure(w, "too many requests from your address; slow down", 1)
		return
	}
	if !t.allowed(q.ih) {
		t.stats.httpRefused.Add(1)
		failure(w, errNotAllowed.Error(), 0)
		return
	}
	want := q.numWant
	if want < 0 {
		want = defaultNumWant
	}
	a := announceReq{ih: q.ih, addr: netip.AddrPortFrom(ip, uint16(q.port)), left: q.left, event: q.event,
		want: min(want, maxNumWant), both: true}
	if !q.hasLeft || q.left < 0 {
		a.left = 1 // unknown: a downloader
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.rep.peers4, sc.rep.peers6 = sc.rep.peers4[:0], sc.rep.peers6[:0]
	epoch, minute := t.epochAt(time.Now())
	c, ch, err := t.state.announce(&a, epoch, minute, &sc.rep)
	if err != nil {
		failure(w, err.Error(), 5)
		return
	}
	t.announced(&a, ch)
	sc.body = t.appendAnnounceReply(sc.body[:0], c, &sc.rep, q.compact)
	writeBencode(w, sc.body)
}

// appendAnnounceReply appends the bencoded announce reply, its keys in
// order: counts (BEP 21's downloaders too), intervals, peers (compact or
// a list of dictionaries without peer ids), peers6 (BEP 7) when there
// are IPv6 peers, and the tracker id.
func (t *Tracker) appendAnnounceReply(b []byte, c counts, rep *reply, compact bool) []byte {
	iv := int64(t.interval / time.Second)
	b = append(b, "d8:complete"...)
	b = appendBInt(b, c.seeds)
	b = append(b, "10:downloaded"...)
	b = appendBInt(b, int64(min(c.downloaded, 1<<62)))
	b = append(b, "11:downloaders"...)
	b = appendBInt(b, c.downloaders)
	b = append(b, "10:incomplete"...)
	b = appendBInt(b, c.incomplete())
	b = append(b, "8:interval"...)
	b = appendBInt(b, iv)
	b = append(b, "12:min interval"...)
	b = appendBInt(b, max(iv/2, 1))
	b = append(b, "5:peers"...)
	if compact {
		b = appendBBytes(b, rep.peers4)
		if len(rep.peers6) > 0 {
			b = append(b, "6:peers6"...)
			b = appendBBytes(b, rep.peers6)
		}
	} else {
		b = append(b, 'l')
		for p := rep.peers4; len(p) >= 6; p = p[6:] {
			b = appendPeerDict(b, netip.AddrFrom4([4]byte(p[:4])), uint16(p[4])<<8|uint16(p[5]))
		}
		for p := rep.peers6; len(p) >= 18; p = p[18:] {
			b = appendPeerDict(b, netip.AddrFrom16([16]byte(p[:16])), uint16(p[16])<<8|uint16(p[17]))
		}
		b = append(b, 'e')
	}
	b = append(b, "10:tracker id"...)
	b = appendBString(b, t.idHex)
	return append(b, 'e')
}

// appendPeerDict appends a non-compact peer: BEP 3's dictionary without
// the peer id (BEP 23's no_peer_id; the tracker keeps none).
func appendPeerDict(b []byte, ip netip.Addr, port uint16) []byte {
	b = append(b, "d2:ip"...)
	b = appendBString(b, ip.String())
	b = append(b, "4:port"...)
	b = appendBInt(b, int64(port))
	return append(b, 'e')
}

func (h *httpServer) scrape(w http.ResponseWriter, r *http.Request) {
	t := h.t
	t.stats.httpScrapes.Add(1)
	ip, ok := remoteIP(r)
	if !ok {
		failure(w, "no client address", 0)
		return
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	var err error
	sc.hashes, err = parseScrapeQuery(r.URL.RawQuery, sc.hashes[:0])
	if err != nil {
		t.stats.httpMalformed.Add(1)
		failure(w, err.Error(), 0)
		return
	}
	if !t.limit.allow(ip) {
		t.stats.httpLimited.Add(1)
		failure(w, "too many requests from your address; slow down", 1)
		return
	}
	// A dictionary's keys go in order, once each.
	slices.SortFunc(sc.hashes, func(a, b metainfo.Hash) int { return bytes.Compare(a[:], b[:]) })
	sc.hashes = slices.Compact(sc.hashes)
	b := append(sc.body[:0], "d5:filesd"...)
	for _, ih := range sc.hashes {
		if !t.allowed(ih) {
			continue
		}
		c, _ := t.state.scrape(ih)
		b = appendBBytes(b, ih[:])
		b = append(b, "d8:complete"...)
		b = appendBInt(b, c.seeds)
		b = append(b, "10:downloaded"...)
		b = appendBInt(b, int64(min(c.downloaded, 1<<62)))
		b = append(b, "11:downloaders"...)
		b = appendBInt(b, c.downloaders)
		b = append(b, "10:incomplete"...)
		b = appendBInt(b, c.incomplete())
		b = append(b, 'e')
	}
	sc.body = append(b, "ee"...)
	writeBencode(w, sc.body)
}

// appendBInt appends a bencoded integer.
func appendBInt(b []byte, v int64) []byte {
	b = append(b, 'i')
	b = strconv.AppendInt(b, v, 10)
	return append(b, 'e')
}

// appendBBytes appends a bencoded byte string.
func appendBBytes(b, s []byte) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// appendBString appends a bencoded string.
func appendBString(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}
