package feeds

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// A public feed must not aim btslave's GETs at the owner's own machine or
// LAN: its redirects and its items' .torrent links could otherwise reach
// a router's admin page, a NAS or another local API. So each fetch of a
// feed (a run) learns where the feed itself came from, from the address of
// the connection that carried its first request. When that address is
// public, every further request of the run (redirects, .torrent links and
// their redirects) goes through a transport whose dialer refuses
// non-public addresses, checked on the very address a socket connects to,
// so that a DNS name re-resolving to 127.0.0.1 is refused too. A feed the
// owner serves on their own LAN or machine may reach anything, and
// feeds.allow_private_redirects turns the check off.

// publicAddr reports whether ip is a public unicast address: not loopback,
// private (RFC 1918, fc00::/7), link-local, unspecified, CGNAT
// (100.64.0.0/10), multicast, broadcast or reserved.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	if nat64.Contains(ip) { // 64:ff9b::a.b.c.d reaches a.b.c.d
		b := ip.As16()
		return publicAddr(netip.AddrFrom4([4]byte(b[12:])))
	}
	return true
}

// nonPublic are the ranges beyond netip's predicates that no public feed
// has a reason to reach.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"; Linux connects 0.x to the local host
	netip.MustParsePrefix("100.64.0.0/10"),  // CGNAT shared address space
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and 255.255.255.255
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
}

var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// refusedAddr is a connection to a non-public address refused for a
// public feed. Errors returned for it wrap ErrPrivateAddress.
type refusedAddr struct{ ip netip.Addr }

func (e *refusedAddr) Error() string { return e.ip.String() + " refused: " + ErrPrivateAddress.Error() }
func (e *refusedAddr) Unwrap() error { return ErrPrivateAddress }

// policyKey carries a run's *addrPolicy in a request's context.
type policyKey struct{}

// addrPolicy is what one run of one feed may reach. The first request of
// a run is the feed's own URL; its connection decides whether the feed is
// public.
type addrPolicy struct {
	allowAll bool // feeds.allow_private_redirects

	mu      sync.Mutex
	started bool // the first request went out
	decided bool
	public  bool
}

// state returns whether the request about to go out is the run's first,
// and else whether the feed is public. A request after a first one that
// taught nothing is treated as public's.
func (p *addrPolicy) state() (first, public bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		p.started = true
		return true, false
	}
	return false, p.public || !p.decided
}

func (p *addrPolicy) decide(public bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.decided {
		p.decided, p.public = true, public
	}
}

// guard is the feeds' RoundTripper: it sends each request through open
// or through strict (which connects to public addresses only) as the
// request's policy says.
type guard struct {
	open, strict *http.Transport
	isPublic     func(netip.Addr) bool

	proxies sync.Map // "host:port" of proxies strict has been told to use
}

// newGuard makes the guard over base, a transport to copy (nil: the
// default one). isPublic classifies addresses.
func newGuard(base *http.Transport, isPublic func(netip.Addr) bool) *guard {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	g := &guard{open: base.Clone(), strict: base.Clone(), isPublic: isPublic}
	checked := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, ControlContext: g.control}
	plain := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	g.strict.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if _, ok := g.proxies.Load(addr); ok {
			return plain.DialContext(ctx, network, addr) // the owner's proxy
		}
		return checked.DialContext(ctx, network, addr)
	}
	g.strict.DialTLSContext, g.strict.DialTLS, g.strict.Dial = nil, nil, nil // none may skip the check
	if proxy := base.Proxy; proxy != nil {
		g.strict.Proxy = func(req *http.Request) (*url.URL, error) {
			u, err := proxy(req)
			if u == nil || err != nil {
				return u, err
			}
			// The proxy dials the target: judge the target's name here,
			// as well as a lookup of our own can.
			if err := g.checkName(req.Context(), req.URL.Hostname()); err != nil {
				return nil, err
			}
			g.proxies.Store(canonicalAddr(u), true)
			return u, nil
		}
	}
	return g
}

// control refuses a connection to a non-public address; it runs on the
// address the socket is about to connect to, after name resolution.
func (g *guard) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s %s: cannot tell whether the address is public: %w", network, address, err)
	}
	if !g.isPublic(ap.Addr()) {
		return &refusedAddr{ip: ap.Addr().Unmap()}
	}
	return nil
}

// checkName refuses a host name any of whose addresses is not public.
func (g *guard) checkName(ctx context.Context, host string) error {
	ips, err := g.lookup(ctx, host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !g.isPublic(ip) {
			return &refusedAddr{ip: ip.Unmap()}
		}
	}
	return nil
}

func (g *guard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// RoundTrip sends req through strict or open, as its policy says.
func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	p, _ := req.Context().Value(policyKey{}).(*addrPolicy)
	if p == nil {
		return g.strict.RoundTrip(req) // nothing said: be careful
	}
	if p.allowAll {
		return g.open.RoundTrip(req)
	}
	first, public := p.state()
	switch {
	case first:
		return g.first(req, p)
	case public:
		return g.strict.RoundTrip(req)
	default:
		return g.open.RoundTrip(req)
	}
}

// first sends the feed's own request, which the owner configured and which
// may go anywhere, and learns from it whether the feed is public: from the
// address its connection reached or, through a proxy, from the addresses
// of its host name.
func (g *guard) first(req *http.Request, p *addrPolicy) (*http.Response, error) {
	if g.open.Proxy != nil {
		if u, err := g.open.Proxy(req); err == nil && u != nil {
			ips, err := g.lookup(req.Context(), req.URL.Hostname())
			if err == nil {
				p.decide(anyOf(ips, g.isPublic))
			}
			return g.open.RoundTrip(req)
		}
	}
	var (
		mu     sync.Mutex
		remote netip.Addr
	)
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
		if ap, err := netip.ParseAddrPort(ci.Conn.RemoteAddr().String()); err == nil {
			mu.Lock()
			remote = ap.Addr()
			mu.Unlock()
		}
	}}
	resp, err := g.open.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	mu.Lock()
	if remote.IsValid() {
		p.decide(g.isPublic(remote))
	}
	mu.Unlock()
	return resp, err
}

func anyOf(ips []netip.Addr, f func(netip.Addr) bool) bool {
	for _, ip := range ips {
		if f(ip) {
			return true
		}
	}
	return false
}

// canonicalAddr is u's "host:port", the port defaulted by scheme, as the
// transport dials a proxy.
func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}[u.Scheme]
	}
	return net.JoinHostPort(u.Hostname(), port)
}
