package announce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxReplyBytes caps an HTTP announce reply body.
const maxReplyBytes = 1 << 20

// errBadRequest is wrapped by the error for an HTTP 400 reply.
var errBadRequest = errors.New("HTTP 400")

// request is one announce, transport-independent.
type request struct {
	event                      event
	uploaded, downloaded, left int64
}

// NewHTTPClient builds an HTTP client for trackers (announces and
// scrapes): no proxy (a proxy would make the tracker list the proxy's
// address), dialing from localIP if valid, keeping up to idlePerHost idle
// connections per tracker, and waiting at most headerTimeout (0: no
// limit but the request's context) for a reply's headers.
func NewHTTPClient(localIP netip.Addr, idlePerHost int, headerTimeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if localIP.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: localIP.AsSlice()}
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: headerTimeout,
			MaxIdleConnsPerHost:   idlePerHost,
			IdleConnTimeout:       60 * time.Second,
			ForceAttemptHTTP2:     true,
		},
	}
}

// announceURL builds the GET URL for req on the tracker at base. Query
// parameters already in base (a private tracker's passkey) come first.
func (a *Announcer) announceURL(base *url.URL, req request) string {
	var q strings.Builder
	add := func(k, v string) {
		if q.Len() > 0 {
			q.WriteByte('&')
		}
		q.WriteString(k)
		q.WriteByte('=')
		q.WriteString(v)
	}
	add("info_hash", EscapeBytes(a.o.InfoHash[:]))
	add("peer_id", EscapeBytes(a.o.PeerID[:]))
	add("port", strconv.Itoa(a.o.Port))
	add("uploaded", strconv.FormatInt(req.uploaded, 10))
	add("downloaded", strconv.FormatInt(req.downloaded, 10))
	add("left", strconv.FormatInt(req.left, 10))
	add("key", fmt.Sprintf("%08X", uint32(a.key)))
	add("numwant", strconv.Itoa(int(a.numWant(req.event))))
	add("compact", "1")
	add("no_peer_id", "1")
	if s := req.event.httpName(); s != "" {
		add("event", s)
	}
	u := *base
	if u.RawQuery != "" {
		u.RawQuery += "&" + q.String()
	} else {
		u.RawQuery = q.String()
	}
	return u.String()
}

// httpAnnounce sends one HTTP announce and parses the reply.
func (a *Announcer) httpAnnounce(ctx context.Context, base *url.URL, req request) (Reply, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, a.announceURL(base, req), nil)
	if err != nil {
		return Reply{}, err
	}
	hr.Header.Set("User-Agent", a.o.UserAgent)
	resp, err := a.hc.Do(hr)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return Reply{}, fmt.Errorf("reading reply: %w", err)
	}
	if len(body) > maxReplyBytes {
		return Reply{}, fmt.Errorf("%w: reply larger than %d bytes", errMalformed, maxReplyBytes)
	}
	if resp.StatusCode == http.StatusBadRequest {
		return Reply{}, fmt.Errorf("%w: %q", errBadRequest, truncate(body, 200))
	}
	if resp.StatusCode != http.StatusOK {
		// Some trackers send a failure reason with another status.
		if r, err := ParseHTTPReply(body); err != nil {
			var fe *FailureError
			if errors.As(err, &fe) {
				return r, err
			}
		}
		return Reply{}, fmt.Errorf("HTTP %s: %q", resp.Status, truncate(body, 200))
	}
	return ParseHTTPReply(body)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// EscapeBytes percent-encodes every byte of b but the unreserved ones, for
// info_hash and peer_id. url.QueryEscape turns a 0x20 byte into "+", which
// opentracker does not decode.
func EscapeBytes(b []byte) string {
	const hexDigits = "0123456789ABCDEF"
	var sb strings.Builder
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			sb.WriteByte(c)
		default:
			sb.WriteByte('%')
			sb.WriteByte(hexDigits[c>>4])
			sb.WriteByte(hexDigits[c&15])
		}
	}
	return sb.String()
}
