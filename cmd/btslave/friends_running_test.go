package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
)

// Ensure that the friends and ledger commands work against a running
// daemon (through its API): two repeaters met in a swarm say hello over
// bts_friends, 'friends pending' lists both, one is accepted and one
// denied, and 'friends list', 'ledger' and 'friends invite' answer while
// the daemon holds the data dir.
func TestFriendsCommandsRunningDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg, data := filepath.Join(dir, "btslave.toml"), filepath.Join(dir, "data")
	friendsAddr := freePort(t)
	body := fmt.Sprintf("[peer]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n[cache]\nsize = \"8MiB\"\n"+
		"[friends]\nenabled = true\nlisten = %q\naccept = \"ask\"\n", friendsAddr)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := testEnv(t)
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		return run(t, env, append(args, "--config", cfg, "--data-dir", data)...)
	}
	startDaemon(t, cfg, data)
	var ih [20]byte
	copy(ih[:], "friends cli swarm...")
	if code, _, errOut := cli("repeat", fmt.Sprintf("magnet:?xt=urn:btih:%x", ih)); code != 0 {
		t.Fatalf("repeat: %d %s", code, errOut)
	}
	tok, err := api.ReadToken(data)
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient(api.DialAddr(data, ""), tok)
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	peer := fmt.Sprintf("127.0.0.1:%d", st.Peer.Port)

	// Two repeaters met in the swarm ask to be friends.
	var ids [2]friends.Identity
	for i := range ids {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		ids[i] = friends.Identity{Private: priv}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := lab.SayFriendHello(ctx, peer, ih, ids[i], fmt.Sprintf("127.0.0.%d:7980", 2+i))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var code int
		if code, out, _ = cli("friends", "pending"); code == 0 && strings.Contains(out, ids[0].ID().String()) && strings.Contains(out, ids[1].ID().String()) {
			break
		}
	}
	if !strings.Contains(out, ids[0].ID().String()) || !strings.Contains(out, ids[1].ID().String()) || !strings.Contains(out, "127.0.0.3:7980") {
		t.Fatalf("friends pending on the running daemon: %q", out)
	}
	if code, out, errOut := cli("friends", "accept", ids[0].ID().String()); code != 0 || !strings.Contains(out, "accepted") {
		t.Fatalf("accept: %d %q %s", code, out, errOut)
	}
	if code, out, errOut := cli("friends", "deny", strings.ToLower(ids[1].ID().String())); code != 0 || !strings.Contains(out, "denied") {
		t.Fatalf("deny: %d %q %s", code, out, errOut)
	}
	if code, _, errOut := cli("friends", "deny", ids[1].ID().String()); code != exitUsage || !strings.Contains(errOut, "no such friend") {
		t.Errorf("a second deny: exit %d %s, want 2", code, errOut)
	}
	if code, _, _ := cli("friends", "accept", "not-an-id"); code != exitUsage {
		t.Errorf("accept of a malformed ID: exit %d, want 2", code)
	}
	code, out, _ := cli("friends", "list")
	if code != 0 || !strings.Contains(out, ids[0].ID().String()) || strings.Contains(out, ids[1].ID().String()) || !strings.Contains(out, "+0") {
		t.Fatalf("friends list: %d %q", code, out)
	}
	// The accepted friend spoke to us: its last contact is shown.
	if !regexp.MustCompile(`accepted\s+\S+ \S+\s+\+0\s+\d{4}-`).MatchString(out) {
		t.Errorf("friends list lacks the last contact: %q", out)
	}
	if code, out, _ := cli("friends", "pending"); code != 0 || strings.TrimSpace(out) != "none" {
		t.Fatalf("pending after accept and deny: %d %q", code, out)
	}
	if code, out, _ := cli("ledger"); code != 0 || !strings.Contains(out, "no IOUs yet") {
		t.Fatalf("ledger: %d %q", code, out)
	}
	// The listen address is a loopback one: the daemon makes the code.
	if code, out, errOut := cli("friends", "invite"); code != 0 || !strings.Contains(out, "BTSF1-") || !strings.Contains(out, "friend ID ") {
		t.Fatalf("invite: %d %q %s", code, out, errOut)
	}
	if code, out, errOut := cli("friends", "remove", ids[0].ID().String()); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("remove: %d %q %s", code, out, errOut)
	}
}
