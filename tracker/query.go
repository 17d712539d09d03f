package tracker

import (
	"errors"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
)

// maxHTTPScrape is the most info-hashes one HTTP scrape is answered for.
const maxHTTPScrape = 100

// Errors for a query an announce or scrape cannot be made from; their
// texts become the reply's failure reason.
var (
	errNoInfoHash = errors.New("info_hash missing or not 20 bytes")
	errBadPort    = errors.New("port missing or not in 1..65535")
	errBadNumber  = errors.New("left and numwant must be decimal numbers")
	errBadEvent   = errors.New("event is not started, completed, stopped or paused")
	errBadEscape  = errors.New("malformed percent-encoding in the query")
	errNoScrape   = errors.New("full scrape is not offered: give one or more info_hash")
)

// httpAnnounce is a decoded HTTP announce query (BEP 3, BEP 21, BEP 23).
type httpAnnounce struct {
	ih   metainfo.Hash
	port int
	// left is -1 when negative; hasLeft is false when absent, which
	// counts as a downloader (as in opentracker).
	left      int64
	hasLeft   bool
	event     event
	compact   bool // BEP 23: compact=1 (or absent)
	numWant   int  // -1 when absent or negative
	key       string
	trackerID string
}

// parseAnnounceQuery decodes a raw (still percent-encoded) query string.
// peer_id is not kept: peers are known by address. key and trackerid are
// kept for logs only. Unknown parameters are ignored; a repeated one
// counts as its last value. It never panics.
func parseAnnounceQuery(raw string, a *httpAnnounce) error {
	*a = httpAnnounce{compact: true, numWant: -1}
	var buf [64]byte
	haveIH := false
	err := eachParam(raw, buf[:], func(k string, v []byte) error {
		switch k {
		case "info_hash":
			if len(v) != 20 {
				return errNoInfoHash
			}
			copy(a.ih[:], v)
			haveIH = true
		case "port":
			n, ok := parseUint(v)
			if !ok || n == 0 || n > 65535 {
				return errBadPort
			}
			a.port = int(n)
		case "uploaded", "downloaded":
			// Not used by the tracker; clients with odd values still count.
		case "left":
			n, ok := parseInt(v)
			if !ok {
				return errBadNumber
			}
			a.left, a.hasLeft = max(n, -1), true
		case "numwant":
			n, ok := parseInt(v)
			if !ok {
				return errBadNumber
			}
			a.numWant = int(min(max(n, -1), 1<<20))
		case "event":
			switch string(v) {
			case "", "empty":
				a.event = eventNone
			case "started":
				a.event = eventStarted
			case "completed":
				a.event = eventCompleted
			case "stopped":
				a.event = eventStopped
			case "paused":
				a.event = eventPaused
			default:
				return errBadEvent
			}
		case "compact":
			a.compact = string(v) != "0"
		case "key":
			a.key = string(v)
		case "trackerid":
			a.trackerID = string(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !haveIH {
		return errNoInfoHash
	}
	if a.port == 0 {
		return errBadPort
	}
	return nil
}

// parseScrapeQuery appends the info_hash parameters of a scrape query to
// dst, up to maxHTTPScrape; others are ignored.
func parseScrapeQuery(raw string, dst []metainfo.Hash) ([]metainfo.Hash, error) {
	var buf [64]byte
	err := eachParam(raw, buf[:], func(k string, v []byte) error {
		if k != "info_hash" {
			return nil
		}
		if len(v) != 20 {
			return errNoInfoHash
		}
		if len(dst) < maxHTTPScrape {
			dst = append(dst, metainfo.Hash(v))
		}
		return nil
	})
	if err != nil {
		return dst, err
	}
	if len(dst) == 0 {
		return dst, errNoScrape
	}
	return dst, nil
}

// eachParam calls f with each key=value pair of raw, the key as it is and
// the value percent-decoded ("+" as a space) into buf. A value longer
// than buf is cut to len(buf) bytes (no parameter needs more, and a
// 20-byte one then fails its length check). Keys are compared raw:
// parameter names need no escaping.
func eachParam(raw string, buf []byte, f func(k string, v []byte) error) error {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		n, ok := unescape(v, buf)
		if !ok {
			return errBadEscape
		}
		if err := f(k, buf[:n]); err != nil {
			return err
		}
	}
	return nil
}

// unescape percent-decodes s into buf and returns the length, at most
// len(buf) (further bytes are checked but dropped).
func unescape(s string, buf []byte) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+2 >= len(s) {
				return 0, false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return 0, false
			}
			c = hi<<4 | lo
			i += 2
		case '+':
			c = ' '
		}
		if n < len(buf) {
			buf[n] = c
			n++
		}
	}
	return n, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseUint parses a non-negative decimal number of at most 18 digits
// (no int64 overflow).
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseInt is parseUint with an optional leading "-".
func parseInt(b []byte) (int64, bool) {
	if len(b) > 0 && b[0] == '-' {
		n, ok := parseUint(b[1:])
		return -n, ok
	}
	return parseUint(b)
}
