package scrape

import (
	"errors"
	"strings"
	"testing"

	"github.com/btslave/btslave/internal/torrentfile"
)

// deepReply is a scrape reply whose one entry holds levels nested lists
// under an unknown key, which the decoder would otherwise walk and ignore.
func deepReply(levels int) []byte {
	return []byte("d5:filesd20:" + strings.Repeat("\x01", 20) + "d8:completei5e3:zzz" +
		strings.Repeat("l", levels) + strings.Repeat("e", levels) + "10:incompletei7eeee")
}

// Ensure that a scrape reply nesting deeper than maxReplyDepth is refused
// as malformed before the recursive decoder sees it, at the reply size cap
// too (two million levels), while one at the limit still parses.
func TestParseHTTPReplyDeep(t *testing.T) {
	files, err := parseHTTPReply(deepReply(maxReplyDepth - 3))
	if err != nil || len(files) != 1 {
		t.Fatalf("reply at the depth limit: %+v, %v", files, err)
	}
	for _, e := range files {
		if e.complete != 5 || e.incomplete != 7 {
			t.Errorf("entry %+v", e)
		}
	}
	for _, levels := range []int{maxReplyDepth - 2, 1000, (maxHTTPReplyBytes - 80) / 2} {
		body := deepReply(levels)
		_, err := parseHTTPReply(body)
		if !errors.Is(err, errMalformed) || !errors.Is(err, torrentfile.ErrTooDeep) || !strings.Contains(err.Error(), "nests deeper than 32") {
			t.Errorf("reply of %d bytes nesting %d levels: %v, want malformed, too deep", len(body), levels+3, err)
		}
	}
}
