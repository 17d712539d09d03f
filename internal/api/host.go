package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// checkHost refuses requests whose Host header names neither this machine's
// loopback nor the configured listen host, before the token is looked at.
// A web page that rebinds its own DNS name to 127.0.0.1 reaches the API
// with that name in Host; it meets 421 Misdirected Request.
func (s *Server) checkHost(next http.Handler) http.Handler {
	listenHost, _, err := net.SplitHostPort(s.opts.Listen)
	if err != nil {
		listenHost = s.opts.Listen
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, listenHost) {
			s.opts.Logger.Warn("api: refused a request for another host (DNS rebinding?)", "host", r.Host, "remote", r.RemoteAddr)
			h := r.Host
			if len(h) > 100 {
				h = h[:100] + "..."
			}
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("Host %q is not this daemon: the API answers to localhost, 127.0.0.0/8, [::1] "+
				"and the host of api.listen only, so that a web page rebinding its DNS name to this machine is refused", h))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether the Host header value host (with or without
// a port) names the API: "localhost", a loopback address, or listenHost,
// the host of api.listen. When listenHost is empty or an unspecified
// address (every interface), any IP address is accepted: only a DNS name
// can be rebound, and the owner may reach the API by any of the machine's
// addresses.
func hostAllowed(host, listenHost string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")), ".")
	if h == "" {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip, ipErr := netip.ParseAddr(h)
	if ipErr == nil && ip.Unmap().IsLoopback() {
		return true
	}
	lh := strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(listenHost, "["), "]")), ".")
	if lip, err := netip.ParseAddr(lh); lh == "" || (err == nil && lip.IsUnspecified()) {
		return ipErr == nil
	} else if err == nil && ipErr == nil {
		return lip.Unmap() == ip.Unmap()
	}
	return h == lh
}
