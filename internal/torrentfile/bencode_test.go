package torrentfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
)

// Scan accepts well-formed values up to the depth limit, reports their
// length, and refuses deeper nesting and malformed input without
// recursing.
func TestScan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int   // length of the value when ok
		want error // nil: ok
	}{
		{"d4:infod4:name1:xee", 19, nil},
		{"i42e", 4, nil},
		{"i-7e", 4, nil},
		{"4:spam", 6, nil},
		{"le", 2, nil},
		{"de", 2, nil},
		{"d8:msg_typei1e5:piecei0eexxxxraw", 25, nil}, // ut_metadata: raw bytes follow
		{"d1:a" + strings.Repeat("l", 63) + strings.Repeat("e", 63) + "e", 4 + 126 + 1, nil},
		{"d5:a:b:cl" + "i1ei2e" + "ee", 17, nil},
		{"d1:a" + strings.Repeat("l", 64) + strings.Repeat("e", 64) + "e", 0, ErrTooDeep},
		{"d3:zzz" + strings.Repeat("l", 1_000_000) + strings.Repeat("e", 1_000_000) + "e", 0, ErrTooDeep},
		{"", 0, ErrBencode},
		{"e", 0, ErrBencode},
		{"l", 0, ErrBencode},
		{"di1ei2ee", 0, ErrBencode}, // integer key
		{"d1:ae", 0, ErrBencode},    // key without value
		{"dl1:aee", 0, ErrBencode},  // list as key
		{"i12", 0, ErrBencode},      // unterminated
		{"ie", 0, ErrBencode},       // no digits
		{"5:abc", 0, ErrBencode},    // string past the end
		{"99999999999999999999999:x", 0, ErrBencode},
		{"x", 0, ErrBencode},
	} {
		n, err := Scan([]byte(tc.in), 64)
		switch {
		case tc.want == nil && (err != nil || n != tc.n):
			t.Errorf("Scan(%.30q) = %d, %v; want %d, nil", tc.in, n, err, tc.n)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("Scan(%.30q) = %d, %v; want %v", tc.in, n, err, tc.want)
		}
	}
}

// FuzzScan checks Scan against the bencode decoder: what Scan accepts
// within a small depth decodes, and Scan never panics or over-reads.
func FuzzScan(f *testing.F) {
	for _, s := range []string{"d4:infod4:name1:xee", "li1ei2ee", "d1:ad1:bleee", "4:spam", "i-1e"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Scan(b, 16)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("Scan = %d for %d bytes", n, len(b))
		}
		var v any
		if err := bencode.Unmarshal(b[:n], &v); err != nil && !strings.Contains(err.Error(), "unsorted") {
			t.Fatalf("Scan accepted %q (%d bytes) that the decoder refuses: %v", b[:n], n, err)
		}
	})
}
