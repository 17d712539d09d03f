package helper_test

import (
	"net/netip"
	"testing"

	"github.com/btslave/btslave/master/helper"
)

func TestShare(t *testing.T) {
	a, b, c := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.9")
	for _, tc := range []struct {
		self          netip.Addr
		peers         []netip.Addr
		share, shares int
	}{
		{b, []netip.Addr{c, a}, 1, 3},
		{b, []netip.Addr{b}, 0, 1},
		{c, nil, 0, 1},
		{netip.Addr{}, []netip.Addr{a}, 0, 0},
	} {
		if s, n := helper.Share(tc.self, tc.peers); s != tc.share || n != tc.shares {
			t.Errorf("Share(%v, %v) = %d of %d, want %d of %d", tc.self, tc.peers, s, n, tc.share, tc.shares)
		}
	}
}
