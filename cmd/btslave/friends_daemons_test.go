package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Ensure that three daemon processes become friends by invite (A invites,
// B and C add the code while stopped) and that, running, B and C each
// cash in with A, which starts helping their masters.
func TestThreeDaemonsInviteCashin(t *testing.T) {
	type node struct{ cfg, data string }
	nodes := map[string]node{}
	for _, n := range []string{"a", "b", "c"} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "btslave.toml")
		body := fmt.Sprintf("[peer]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n[cache]\nsize = \"8MiB\"\n[friends]\nenabled = true\nlisten = %q\naccept = \"auto\"\n", freePort(t))
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		nodes[n] = node{cfg, filepath.Join(dir, "data")}
	}
	env := testEnv(t)
	cli := func(n string, args ...string) (int, string, string) {
		return run(t, env, append(args, "--config", nodes[n].cfg, "--data-dir", nodes[n].data)...)
	}
	code, out, errOut := cli("a", "friends", "invite")
	if code != 0 {
		t.Fatalf("invite: %d %s", code, errOut)
	}
	invite := regexp.MustCompile(`BTSF1-[A-Z2-7]+`).FindString(out)
	idA := regexp.MustCompile(`friend ID (\S+)`).FindStringSubmatch(out)
	if invite == "" || idA == nil {
		t.Fatalf("invite printed %q", out)
	}
	for _, n := range []string{"b", "c"} {
		if code, _, errOut := cli(n, "friends", "add", invite); code != 0 {
			t.Fatalf("%s: add: %d %s", n, code, errOut)
		}
	}
	startDaemon(t, nodes["a"].cfg, nodes["a"].data)
	startDaemon(t, nodes["b"].cfg, nodes["b"].data)
	startDaemon(t, nodes["c"].cfg, nodes["c"].data)
	for i, n := range []string{"b", "c"} {
		ih := strings.Repeat(fmt.Sprintf("%02x", 0xc0+i), 20)
		code, out, errOut := cli(n, "cashin", ih, "--master", "127.0.0.1:9")
		if code != 0 || !strings.Contains(out, idA[1]) {
			t.Fatalf("%s: cashin: %d %q %s", n, code, out, errOut)
		}
	}
	// A serves both friends' swarms now (its log is the daemon's; status
	// is what can be read while it runs).
	code, out, _ = cli("a", "status")
	for i := range 2 {
		if ih := strings.Repeat(fmt.Sprintf("%02x", 0xc0+i), 4); code != 0 || !strings.Contains(out, ih) {
			t.Fatalf("A's status lacks %s: %d %q", ih, code, out)
		}
	}
	if code, _, _ := cli("b", "cashin", "nothex"); code != exitUsage {
		t.Errorf("cashin of a bad hash: exit %d, want 2", code)
	}
}
