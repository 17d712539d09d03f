package announce

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/anacrolix/torrent/bencode"

	"github.com/btslave/btslave/internal/torrentfile"
)

// maxReplyDepth bounds list and dictionary nesting in a tracker reply,
// checked before the bencode decoder (which recurses once per level)
// sees it. Real replies nest three levels (reply, peers list, peer).
const maxReplyDepth = 32

// maxPeersPerReply bounds the peers taken from one reply; a tracker that
// sends more is trimmed, not trusted.
const maxPeersPerReply = 2000

// Reply is a tracker's answer to one announce, HTTP or UDP, after parsing.
type Reply struct {
	// Interval and MinInterval are the tracker's "interval" and "min
	// interval" in seconds; 0 when absent (or negative on the wire).
	Interval, MinInterval int64
	// Seeders and Leechers are "complete" and "incomplete"; -1 when absent.
	Seeders, Leechers int64
	// Warning is the tracker's "warning message", if any.
	Warning string
	// Peers holds the usable peers (port != 0, address specified), at most
	// maxPeersPerReply of them.
	Peers []netip.AddrPort
}

// FailureError is returned for a reply that carries a bencoded "failure
// reason": the tracker answered and refused the announce.
type FailureError struct {
	Reason string
}

func (e *FailureError) Error() string { return fmt.Sprintf("tracker refused: %q", e.Reason) }

// errMalformed is wrapped by errors for replies that cannot be parsed.
var errMalformed = errors.New("malformed tracker reply")

// httpReplyWire is the bencoded HTTP announce reply (BEP 3, BEP 7, BEP 23).
// Fields whose type varies between trackers are kept raw.
type httpReplyWire struct {
	Failure     bencode.Bytes `bencode:"failure reason"`
	Warning     bencode.Bytes `bencode:"warning message"`
	Interval    bencode.Bytes `bencode:"interval"`
	MinInterval bencode.Bytes `bencode:"min interval"`
	Complete    bencode.Bytes `bencode:"complete"`
	Incomplete  bencode.Bytes `bencode:"incomplete"`
	Peers       bencode.Bytes `bencode:"peers"`
	Peers6      bencode.Bytes `bencode:"peers6"`
}

// ParseHTTPReply parses the body of an HTTP announce reply. A reply with a
// "failure reason" gives a *FailureError. It never panics, whatever body
// holds.
func ParseHTTPReply(body []byte) (Reply, error) {
	if _, err := torrentfile.Scan(body, maxReplyDepth); err != nil {
		return Reply{}, fmt.Errorf("%w: %w", errMalformed, err)
	}
	var w httpReplyWire
	if err := bencode.Unmarshal(body, &w); err != nil {
		var trailing bencode.ErrUnusedTrailingBytes
		if !errors.As(err, &trailing) {
			return Reply{}, fmt.Errorf("%w: %v", errMalformed, err)
		}
	}
	if w.Failure != nil {
		var reason string
		if err := bencode.Unmarshal(w.Failure, &reason); err != nil {
			reason = string(w.Failure)
		}
		return Reply{}, &FailureError{Reason: reason}
	}
	r := Reply{Seeders: -1, Leechers: -1}
	var err error
	if w.Warning != nil {
		_ = bencode.Unmarshal(w.Warning, &r.Warning) // a warning is informative only
	}
	if r.Interval, err = rawInt(w.Interval, "interval", 0); err != nil {
		return Reply{}, err
	}
	if r.MinInterval, err = rawInt(w.MinInterval, "min interval", 0); err != nil {
		return Reply{}, err
	}
	if r.Seeders, err = rawInt(w.Complete, "complete", -1); err != nil {
		return Reply{}, err
	}
	if r.Leechers, err = rawInt(w.Incomplete, "incomplete", -1); err != nil {
		return Reply{}, err
	}
	if w.Peers != nil {
		if r.Peers, err = parsePeers(w.Peers, r.Peers); err != nil {
			return Reply{}, fmt.Errorf("peers: %w", err)
		}
	}
	if w.Peers6 != nil {
		var s string
		if err := bencode.Unmarshal(w.Peers6, &s); err != nil {
			return Reply{}, fmt.Errorf("%w: peers6 is not a string", errMalformed)
		}
		if r.Peers, err = appendCompact(r.Peers, []byte(s), 16); err != nil {
			return Reply{}, fmt.Errorf("peers6: %w", err)
		}
	}
	return r, nil
}

// rawInt decodes an optional bencoded integer; absent gives def, negative
// gives def too (a negative interval or count means nothing).
func rawInt(raw bencode.Bytes, name string, def int64) (int64, error) {
	if raw == nil {
		return def, nil
	}
	var v int64
	if err := bencode.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("%w: %s: %v", errMalformed, name, err)
	}
	if v < 0 {
		return def, nil
	}
	return v, nil
}

// parsePeers reads "peers": a compact string (BEP 23) or a list of
// dictionaries with "ip" and "port" (BEP 3).
func parsePeers(raw bencode.Bytes, out []netip.AddrPort) ([]netip.AddrPort, error) {
	if len(raw) > 0 && raw[0] == 'l' {
		var list []struct {
			IP   string `bencode:"ip"`
			Port int64  `bencode:"port"`
		}
		if err := bencode.Unmarshal(raw, &list); err != nil {
			return out, fmt.Errorf("%w: %v", errMalformed, err)
		}
		for _, p := range list {
			if len(out) >= maxPeersPerReply {
				break
			}
			addr, err := netip.ParseAddr(p.IP)
			if err != nil || p.Port <= 0 || p.Port > 65535 {
				continue // hostnames and junk are skipped
			}
			out = appendPeer(out, netip.AddrPortFrom(addr.Unmap(), uint16(p.Port)))
		}
		return out, nil
	}
	var s string
	if err := bencode.Unmarshal(raw, &s); err != nil {
		return out, fmt.Errorf("%w: neither a string nor a list", errMalformed)
	}
	return appendCompact(out, []byte(s), 4)
}

// appendCompact appends compact peers: ipLen address bytes and a
// big-endian port each.
func appendCompact(out []netip.AddrPort, b []byte, ipLen int) ([]netip.AddrPort, error) {
	n := ipLen + 2
	if len(b)%n != 0 {
		return out, fmt.Errorf("%w: compact peers of %d bytes, not a multiple of %d", errMalformed, len(b), n)
	}
	for ; len(b) >= n && len(out) < maxPeersPerReply; b = b[n:] {
		addr, _ := netip.AddrFromSlice(b[:ipLen])
		port := uint16(b[ipLen])<<8 | uint16(b[ipLen+1])
		out = appendPeer(out, netip.AddrPortFrom(addr.Unmap(), port))
	}
	return out, nil
}

func appendPeer(out []netip.AddrPort, p netip.AddrPort) []netip.AddrPort {
	if p.Port() == 0 || !p.Addr().IsValid() || p.Addr().IsUnspecified() {
		return out
	}
	return append(out, p)
}
