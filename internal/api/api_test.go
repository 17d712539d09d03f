package api

import (
	"context"
	"errors"
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
