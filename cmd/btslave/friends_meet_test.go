package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/lab"
)

// meetNode is one daemon of the swarm-meeting test.
type meetNode struct {
	cfg, data string
	proc      *daemonProc
}

// startMeetDaemon writes a configuration with friends on under accept
// and starts the daemon on its own loopback address.
func startMeetDaemon(t *testing.T, accept string) *meetNode {
	t.Helper()
	dir := t.TempDir()
	n := &meetNode{cfg: filepath.Join(dir, "btslave.toml"), data: filepath.Join(dir, "data")}
	body := fmt.Sprintf("[peer]\nlisten = \"%s:0\"\nipv6 = false\n[api]\nlisten = \"127.0.0.1:0\"\n[cache]\nsize = \"8MiB\"\n"+
		"[friends]\nenabled = true\nlisten = %q\naccept = %q\n", lab.NextAddr(), freePort(t), accept)
	if err := os.WriteFile(n.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	n.proc = startDaemon(t, n.cfg, n.data)
	return n
}

// waitCLI runs a command until its output holds want, for up to d.
func waitCLI(t *testing.T, env map[string]string, n *meetNode, want string, d time.Duration, args ...string) string {
	t.Helper()
	return waitCLIDir(t, env, n.cfg, n.data, want, d, args...)
}

// waitCLIDir is waitCLI for the daemon of configuration cfg and data dir
// data.
func waitCLIDir(t *testing.T, env map[string]string, cfg, data, want string, d time.Duration, args ...string) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var code int
		if code, out, _ = run(t, env, append(args, "--config", cfg, "--data-dir", data)...); code == 0 && strings.Contains(out, want) {
			return out
		}
	}
	t.Fatalf("%s: no %s in %v: %q", strings.Join(args, " "), want, d, out)
	return out
}

// Ensure that two real daemons repeating the same torrent meet in its
// swarm (opentracker, loopback TCP), exchange bts_friends hellos and
// become friends: B (accept = "auto") lists C at once; C (accept = "ask")
// holds B as pending until its owner accepts, then lists it too.
func TestFriendsMeetInSwarm(t *testing.T) {
	lab.Require(t, "opentracker")
	ot := lab.StartOpentracker(t)
	tp, _, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 1 << 20, Name: "meet.bin", Announce: []string{ot.HTTPAnnounce}})
	if err := ot.Whitelist(ih); err != nil {
		t.Fatal(err)
	}
	env := testEnv(t)
	b, c := startMeetDaemon(t, "auto"), startMeetDaemon(t, "ask")
	idB, idC := friends.NewID(mustKey(t, b.data)).String(), friends.NewID(mustKey(t, c.data)).String()
	start := time.Now()
	for _, n := range []*meetNode{b, c} {
		if code, out, errOut := run(t, env, "repeat", tp, "--config", n.cfg, "--data-dir", n.data); code != 0 {
			t.Fatalf("repeat: %d %q %s", code, out, errOut)
		}
	}
	waitCLI(t, env, b, idC, 20*time.Second, "friends", "list")
	t.Logf("B lists C as a friend %v after both repeat", time.Since(start).Round(100*time.Millisecond))
	waitCLI(t, env, c, idB, 5*time.Second, "friends", "pending")
	if code, out, _ := run(t, env, "friends", "list", "--config", c.cfg, "--data-dir", c.data); code != 0 || strings.Contains(out, idB) {
		t.Fatalf("C (accept = ask) made B a friend unasked: %d %q", code, out)
	}
	if code, out, errOut := run(t, env, "friends", "accept", idB, "--config", c.cfg, "--data-dir", c.data); code != 0 || !strings.Contains(out, "accepted") {
		t.Fatalf("C: accept B: %d %q %s", code, out, errOut)
	}
	waitCLI(t, env, c, idB, 5*time.Second, "friends", "list")
}

func mustKey(t *testing.T, data string) []byte {
	t.Helper()
	id, err := friends.LoadIdentity(data)
	if err != nil {
		t.Fatal(err)
	}
	return id.Public()
}
