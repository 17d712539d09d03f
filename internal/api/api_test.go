package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func startServer(t *testing.T, token string) *Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "btslave_test_total", Help: "t"})
	reg.MustRegister(c)
	c.Add(3)
	s, err := Listen(ServerOptions{
		Listen:   "127.0.0.1:0",
		Token:    token,
		Registry: reg,
		Status:   func(context.Context) Status { return Status{Version: "v-test", PID: 42} },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

func get(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Ensure that every endpoint answers 401 without the right token.
func TestAuth(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	s := startServer(t, tok)
	base := "http://" + s.Addr().String()
	for _, path := range []string{"/api/v1/status", "/metrics", "/nope"} {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + tok[:31], tok, "Basic " + tok} {
			if code, _ := get(t, base+path, auth); code != http.StatusUnauthorized {
				t.Errorf("%s with %q: %d, want 401", path, auth, code)
			}
		}
	}
	code, body := get(t, base+"/api/v1/status", "Bearer "+tok)
	if code != 200 || !strings.Contains(body, `"version": "v-test"`) {
		t.Errorf("status: %d %s", code, body)
	}
	code, body = get(t, base+"/metrics", "Bearer "+tok)
	if code != 200 || !strings.Contains(body, "btslave_test_total 3") {
		t.Errorf("metrics: %d %s", code, body)
	}
	if code, _ := get(t, base+"/nope", "Bearer "+tok); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
}

func TestClient(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	s := startServer(t, tok)
	st, err := NewClient(s.Addr().String(), tok).Status(context.Background())
	if err != nil || st.PID != 42 {
		t.Fatalf("%+v %v", st, err)
	}
	if _, err := NewClient(s.Addr().String(), "x"+tok).Status(context.Background()); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := NewClient("127.0.0.1:1", tok).Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("no daemon: %v", err)
	}
}

func TestListenRefusesNoToken(t *testing.T) {
	if _, err := Listen(ServerOptions{Listen: "127.0.0.1:0", Token: "short"}); err == nil {
		t.Fatal("served with a short token")
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	tok, err := LoadOrCreateToken(dir)
	if err != nil || len(tok) != 64 {
		t.Fatalf("%q %v", tok, err)
	}
	st, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v %v", st.Mode().Perm(), err)
	}
	again, _ := LoadOrCreateToken(dir)
	if again != tok {
		t.Error("token changed between runs")
	}
	os.WriteFile(filepath.Join(dir, TokenFile), []byte("\n"), 0o600)
	if _, err := LoadOrCreateToken(dir); err == nil {
		t.Error("an empty token file must be an error, not silently replaced")
	}
}

func TestDialAddr(t *testing.T) {
	dir := t.TempDir()
	for listen, want := range map[string]string{"0.0.0.0:7979": "127.0.0.1:7979", "127.0.0.5:1": "127.0.0.5:1", "[::]:9": "[::1]:9"} {
		if got := DialAddr(dir, listen); got != want {
			t.Errorf("DialAddr(%q) = %q, want %q", listen, got, want)
		}
	}
	os.WriteFile(filepath.Join(dir, AddrFile), []byte("127.0.0.1:5555\n"), 0o600)
	if got := DialAddr(dir, "127.0.0.1:7979"); got != "127.0.0.1:5555" {
		t.Errorf("addr file ignored: %q", got)
	}
}

// Ensure the ranking and feeds endpoints through the client: answers
// decode, a refusal is ErrBadRequest without a doubled prefix, and a feed
// name with slashes (the default name is the URL) survives the path.
func TestRankingAndFeeds(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	var removed []string
	feeds := []Feed{{Name: "a", Source: "http://x/rss", Added: true}}
	s, err := Listen(ServerOptions{
		Listen: "127.0.0.1:0",
		Token:  tok,
		Status: func(context.Context) Status { return Status{} },
		Ranking: func(context.Context) Ranking {
			return Ranking{Enabled: true, Slots: 1, Swarms: []RankedSwarm{{Rank: 1, InfoHash: "ab", Score: 1.125, Need: 1.5, Reach: 0.75, Age: 1, Source: "incomplete", Serving: true, Origin: "auto"}}}
		},
		Feeds: func(context.Context) []Feed { return feeds },
		AddFeed: func(_ context.Context, r FeedRequest) (Feed, error) {
			if r.URL == "" {
				return Feed{}, fmt.Errorf("%w: feed needs a url", ErrBadRequest)
			}
			return Feed{Name: r.Name, Source: r.URL, Added: true}, nil
		},
		RemoveFeed: func(_ context.Context, name string) error {
			if name == "conf" {
				return fmt.Errorf("%w: feed %q comes from the configuration file", ErrBadRequest, name)
			}
			removed = append(removed, name)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	c := NewClient(s.Addr().String(), tok)

	rk, err := c.Ranking(ctx)
	if err != nil || len(rk.Swarms) != 1 || rk.Swarms[0].Score != 1.125 || rk.Swarms[0].Source != "incomplete" {
		t.Fatalf("ranking %+v %v", rk, err)
	}
	fs, err := c.Feeds(ctx)
	if err != nil || len(fs) != 1 || fs[0].Name != "a" {
		t.Fatalf("feeds %+v %v", fs, err)
	}
	f, err := c.AddFeed(ctx, FeedRequest{Name: "b", URL: "http://y/rss"})
	if err != nil || f.Name != "b" || !f.Added {
		t.Fatalf("add %+v %v", f, err)
	}
	if _, err := c.AddFeed(ctx, FeedRequest{Name: "c"}); !errors.Is(err, ErrBadRequest) || strings.Count(err.Error(), "bad request") != 1 {
		t.Errorf("bad add: %v", err)
	}
	for _, name := range []string{"b", "http://x/rss?a=1&b=2", "with space/and%percent"} {
		if err := c.RemoveFeed(ctx, name); err != nil {
			t.Errorf("remove %q: %v", name, err)
		}
	}
	if want := []string{"b", "http://x/rss?a=1&b=2", "with space/and%percent"}; strings.Join(removed, "|") != strings.Join(want, "|") {
		t.Errorf("removed %q, want %q", removed, want)
	}
	if err := c.RemoveFeed(ctx, "conf"); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "configuration file") {
		t.Errorf("remove a configured feed: %v", err)
	}
}

// Ensure that a request naming another host (a DNS-rebinding page) is
// refused with 421 before the token is checked, and that the names the
// CLI and the owner use pass (issue #17, item 8).
func TestHostHeader(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	s := startServer(t, tok)
	base := "http://" + s.Addr().String()
	_, port, _ := strings.Cut(s.Addr().String(), ":")
	do := func(host, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/api/v1/status", nil)
		req.Host = host
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, host := range []string{"evil.example", "evil.example:" + port, "localhost.evil.example", "127.0.0.1.nip.io:" + port, "10.0.0.1:" + port, "[::2]"} {
		for _, auth := range []string{"Bearer " + tok, ""} {
			code, body := do(host, auth)
			if code != http.StatusMisdirectedRequest || !strings.Contains(body, "is not this daemon") {
				t.Errorf("Host %q, auth %q: %d %s; want 421", host, auth, code, body)
			}
		}
	}
	for _, host := range []string{s.Addr().String(), "localhost:" + port, "LOCALHOST", "localhost.", "127.0.0.1", "127.0.0.5:" + port, "[::1]:" + port, "[::1]"} {
		if code, body := do(host, "Bearer "+tok); code != http.StatusOK {
			t.Errorf("Host %q: %d %s; want 200", host, code, body)
		}
	}
	if code, _ := do("localhost", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Errorf("good Host, wrong token: %d, want 401", code)
	}
}

// Ensure the Host rule for each kind of api.listen: its own host passes,
// a wildcard listen accepts any IP (a name is what rebinding needs), and
// other names are refused.
func TestHostAllowed(t *testing.T) {
	for _, tc := range []struct {
		host, listen string
		ok           bool
	}{
		{"localhost:7979", "127.0.0.1", true},
		{"127.1.2.3", "127.0.0.1", true},
		{"[::ffff:127.0.0.1]:1", "127.0.0.1", true},
		{"", "127.0.0.1", false},
		{"evil.example", "127.0.0.1", false},
		{"192.168.1.5:7979", "127.0.0.1", false},
		{"192.168.1.5:7979", "192.168.1.5", true},
		{"192.168.1.6:7979", "192.168.1.5", false},
		{"seedbox.lan:7979", "seedbox.lan", true},
		{"SeedBox.LAN.", "seedbox.lan", true},
		{"evil.example", "seedbox.lan", false},
		{"192.168.1.5:7979", "0.0.0.0", true},
		{"[2001:db8::1]:7979", "::", true},
		{"203.0.113.7", "", true},
		{"evil.example:7979", "0.0.0.0", false},
		{"evil.example", "", false},
	} {
		if got := hostAllowed(tc.host, tc.listen); got != tc.ok {
			t.Errorf("hostAllowed(%q, %q) = %v, want %v", tc.host, tc.listen, got, tc.ok)
		}
	}
}
