package master

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
)

// MaxReply caps a master's reply body; a longer one is garbage.
const MaxReply = 64 << 20

// Unreachable wraps a transport error as ErrUnreachable, keeping ctx's
// own end as it is.
func Unreachable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// Garbage wraps a decoding error as ErrGarbage.
func Garbage(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, ErrGarbage, err)
}

// PeerAddress is where a master on host (an IP or a name, from its URL, or
// the [master] peer_address override "IP" or "IP:PORT") takes peers, given
// the port it reports.
func PeerAddress(ctx context.Context, host string, port int) (netip.AddrPort, error) {
	if port <= 0 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("master peer port %d: %w", port, ErrGarbage)
	}
	if ap, err := netip.ParseAddrPort(host); err == nil {
		return ap, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	if host == "localhost" {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("master host %q: %w", host, errors.Join(ErrUnreachable, err))
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(port)), nil
}

// HostOf is the host of a master URL, or override when set.
func HostOf(rawURL, override string) string {
	if override != "" {
		return override
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
