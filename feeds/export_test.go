package feeds

import (
	"net/netip"
	"slices"
)

// WithPublicAddrs returns o with only the given addresses counted as
// public, so that a loopback server can play a feed on the Internet.
func WithPublicAddrs(o Options, public ...netip.Addr) Options {
	o.isPublic = func(ip netip.Addr) bool { return slices.Contains(public, ip.Unmap()) }
	return o
}

// PublicAddr is the classifier the feeds use outside tests.
var PublicAddr = publicAddr
