package announce

import (
	"errors"
	"strings"
	"testing"

	"github.com/btslave/btslave/internal/torrentfile"
)

// deepReply is an announce reply with levels nested lists under an
// unknown key, which the decoder would otherwise walk and ignore.
func deepReply(levels int) []byte {
	return []byte("d8:intervali1800e3:zzz" + strings.Repeat("l", levels) + strings.Repeat("e", levels) + "5:peers6:\x7f\x00\x00\x01\x1a\xe1e")
}

// Ensure that a tracker reply nesting deeper than maxReplyDepth is refused
// as malformed before the recursive decoder sees it, at the reply size cap
// too (half a million levels), while one at the limit still parses.
func TestParseHTTPReplyDeep(t *testing.T) {
	if r, err := ParseHTTPReply(deepReply(maxReplyDepth - 1)); err != nil || r.Interval != 1800 || len(r.Peers) != 1 {
		t.Fatalf("reply at the depth limit: %+v, %v", r, err)
	}
	for _, levels := range []int{maxReplyDepth, 1000, (maxReplyBytes - 40) / 2} {
		body := deepReply(levels)
		_, err := ParseHTTPReply(body)
		if !errors.Is(err, errMalformed) || !errors.Is(err, torrentfile.ErrTooDeep) || !strings.Contains(err.Error(), "nests deeper than 32") {
			t.Errorf("reply of %d bytes nesting %d levels: %v, want malformed, too deep", len(body), levels+1, err)
		}
	}
}
