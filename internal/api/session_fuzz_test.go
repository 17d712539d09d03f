package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzSameOrigin feeds the Origin check arbitrary Origin, Host and
// Sec-Fetch-Site headers: it never panics, and whatever it accepts is an
// http origin naming the Host exactly, without a path.
func FuzzSameOrigin(f *testing.F) {
	for _, s := range [][3]string{
		{"http://127.0.0.1:7979", "127.0.0.1:7979", "same-origin"},
		{"http://evil.example", "127.0.0.1:7979", ""},
		{"null", "localhost", ""},
		{"http://127.0.0.1:7979/x", "127.0.0.1:7979", ""},
		{"https://[::1]:7979", "[::1]:7979", "same-site"},
		{"http://user@127.0.0.1:1", "127.0.0.1:1", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, origin, host, site string) {
		r := &http.Request{Header: http.Header{}, Host: host}
		r.Header.Set("Origin", origin)
		r.Header.Set("Sec-Fetch-Site", site)
		if !sameOrigin(r) {
			return
		}
		u, err := url.Parse(origin)
		if err != nil || u.Scheme != "http" || !strings.EqualFold(u.Host, host) || (u.Path != "" && u.Path != "/") {
			t.Fatalf("accepted Origin %q for Host %q", origin, host)
		}
		if site != "" && site != "same-origin" {
			t.Fatalf("accepted Sec-Fetch-Site %q", site)
		}
	})
}
