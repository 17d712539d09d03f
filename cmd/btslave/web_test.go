package main

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/internal/api"
)

// Ensure "btslave web" prints a one-time login link that logs a browser
// in once, and that "btslave status" on a daemon with no feed and no
// swarm says what to do next.
func TestWebLoginAndNextSteps(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cfgPath := filepath.Join(t.TempDir(), "btslave.toml")
	os.WriteFile(cfgPath, []byte("[peer]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n"), 0o600)
	env := testEnv(t)
	startDaemon(t, cfgPath, dataDir)

	code, out, errOut := run(t, env, "status", "--config", cfgPath, "--data-dir", dataDir)
	if code != 0 || !strings.Contains(out, "btslave feeds add URL") || !strings.Contains(out, "btslave repeat FILE") || !strings.Contains(out, "btslave web") {
		t.Errorf("status of an idle daemon: %d %q %q", code, out, errOut)
	}

	code, out, errOut = run(t, env, "web", "--config", cfgPath, "--data-dir", dataDir)
	link := regexp.MustCompile(`http://\S+/login\?code=[0-9a-f]+`).FindString(out)
	if code != 0 || link == "" {
		t.Fatalf("web: %d %q %q", code, out, errOut)
	}
	tok, _ := api.ReadToken(dataDir)
	if strings.Contains(out, tok) {
		t.Fatal("btslave web printed the token")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	for i, want := range []int{http.StatusSeeOther, http.StatusUnauthorized} {
		resp, err := c.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || (i == 0) != (len(resp.Cookies()) == 1) {
			t.Errorf("login link, use %d: %s, cookies %v", i+1, resp.Status, resp.Cookies())
		}
	}
}

// Ensure the demo fails at once, exit 1, naming the address, when the
// tracker's or the dashboard's port is taken; and bad flags are usage errors.
func TestDemoPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	for _, args := range [][]string{{"demo", "--plain", "--tracker", addr}, {"demo", "--plain", "--web", addr}} {
		start := time.Now()
		code, _, errOut := run(t, testEnv(t), args...)
		if code != exitFailure || !strings.Contains(errOut, "port already in use") || !strings.Contains(errOut, addr) {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%v took %s to fail", args, d)
		}
	}
	for _, args := range [][]string{{"demo", "--size", "lots"}, {"demo", "--leechers", "0"}, {"demo", "x"}, {"web", "x"}} {
		if code, _, _ := run(t, testEnv(t), args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
