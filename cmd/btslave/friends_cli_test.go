package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Ensure that two data dirs become friends by invite through the CLI, and
// that list, remove and ledger work on the result.
func TestFriendsInviteAddListRemove(t *testing.T) {
	envA, envB := testEnv(t), testEnv(t)
	cfg := filepath.Join(t.TempDir(), "a.toml")
	if err := os.WriteFile(cfg, []byte("[friends]\naddress = \"127.0.0.2:7980\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, envA, "friends", "invite", "--config", cfg)
	if code != 0 {
		t.Fatalf("invite: %d %s", code, errOut)
	}
	code0 := regexp.MustCompile(`BTSF1-[A-Z2-7]+`).FindString(out)
	idA := regexp.MustCompile(`friend ID (\S+)`).FindStringSubmatch(out)
	if code0 == "" || idA == nil {
		t.Fatalf("invite printed %q", out)
	}
	// The default listen is a wildcard: an invite needs [friends] address.
	if code, _, _ := run(t, envA, "friends", "invite"); code != exitUsage {
		t.Fatalf("invite without address: exit %d", code)
	}
	if code, _, _ := run(t, envA, "friends", "add", code0, "--config", cfg); code != exitUsage {
		t.Fatalf("adding our own invite: exit %d", code)
	}
	if code, _, _ := run(t, envB, "friends", "add", code0[:len(code0)-3]+"AAA"); code != exitUsage {
		t.Fatalf("adding a damaged invite: exit %d", code)
	}
	if code, out, errOut := run(t, envB, "friends", "add", code0); code != 0 || !strings.Contains(out, idA[1]) {
		t.Fatalf("add: %d %q %s", code, out, errOut)
	}
	if code, out, _ := run(t, envB, "friends", "list"); code != 0 || !strings.Contains(out, idA[1]) || !strings.Contains(out, "127.0.0.2:7980") {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, out, _ := run(t, envB, "friends", "pending"); code != 0 || strings.TrimSpace(out) != "none" {
		t.Fatalf("pending: %d %q", code, out)
	}
	if code, out, _ := run(t, envB, "ledger"); code != 0 || !strings.Contains(out, "no IOUs yet") {
		t.Fatalf("ledger: %d %q", code, out)
	}
	if code, _, _ := run(t, envB, "friends", "accept", idA[1]); code != exitUsage {
		t.Fatalf("accept of a non-pending ID: exit %d", code)
	}
	if code, _, _ := run(t, envB, "friends", "remove", strings.ToLower(idA[1])); code != 0 {
		t.Fatalf("remove: exit %d", code)
	}
	if code, out, _ := run(t, envB, "friends", "list"); code != 0 || strings.Contains(out, idA[1]) {
		t.Fatalf("list after remove: %q", out)
	}
}
