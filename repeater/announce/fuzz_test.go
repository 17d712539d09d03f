package announce

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseHTTPReply checks that no reply body makes the parser panic and
// that what it accepts is sane.
func FuzzParseHTTPReply(f *testing.F) {
	for _, s := range []string{
		"d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e",
		"d14:failure reason5:nopeee",
		"d8:intervali-5e12:min intervali-1e5:peers0:e",
		"d5:peersld2:ip9:127.0.0.14:porti6881eed2:ip3:foo4:porti-1eeee",
		"d5:peersi42ee",
		"d5:peers7:1234567e",
		"d6:peers618:" + strings.Repeat("\x00", 17) + "\x01e",
		"d8:intervali99999999999999999999ee",
		"d5:peers" + "60000:" + strings.Repeat("\x0a\x00\x00\x01\x1a\xe1", 10000) + "e",
		"<html>",
		"d",
		"",
		"li1ee",
		"d5:peers" + strings.Repeat("l", 10_000) + strings.Repeat("e", 10_000) + "e", // deep nesting
	} {
		f.Add([]byte(s))
	}
	f.Add(deepReply(maxReplyDepth - 1))
	f.Add(deepReply(100_000))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseHTTPReply(body)
		if err != nil {
			var fe *FailureError
			if !errors.As(err, &fe) && !errors.Is(err, errMalformed) {
				t.Fatalf("error %v is neither a failure nor malformed", err)
			}
			return
		}
		if r.Interval < 0 || r.MinInterval < 0 || r.Seeders < -1 || r.Leechers < -1 {
			t.Fatalf("negative figures: %+v", r)
		}
		if len(r.Peers) > maxPeersPerReply {
			t.Fatalf("%d peers, cap %d", len(r.Peers), maxPeersPerReply)
		}
		for _, p := range r.Peers {
			if p.Port() == 0 || !p.Addr().IsValid() {
				t.Fatalf("unusable peer %v", p)
			}
		}
	})
}

// FuzzParseUDPReply does the same for UDP announce reply bodies.
func FuzzParseUDPReply(f *testing.F) {
	f.Add([]byte("\x00\x00\x07\x08\x00\x00\x00\x01\x00\x00\x00\x02\x7f\x00\x00\x01\x1a\xe1"), false)
	f.Add([]byte("\xff\xff\xff\xff\x00\x00\x00\x01"), true)
	f.Add([]byte(strings.Repeat("\x01", 12+18*3+5)), true)
	f.Fuzz(func(t *testing.T, body []byte, v6 bool) {
		ipLen := 4
		if v6 {
			ipLen = 16
		}
		r, err := parseUDPReply(body, ipLen)
		if err != nil {
			return
		}
		if r.Interval < 0 || len(r.Peers) > maxPeersPerReply {
			t.Fatalf("bad reply %+v", r)
		}
	})
}
