package friends

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIDRoundTripAndTypos(t *testing.T) {
	id, err := LoadIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := id.ID().String()
	if len(s) != 63 || strings.Count(s, "-") != 7 {
		t.Fatalf("ID %q: want 8 groups of 7", s)
	}
	for _, in := range []string{s, strings.ToLower(s), strings.ReplaceAll(s, "-", ""),
		strings.NewReplacer("O", "0", "I", "1", "B", "8").Replace(s)} {
		got, err := IDFromString(in)
		if err != nil || got != id.ID() {
			t.Fatalf("IDFromString(%q) = %v, %v", in, got, err)
		}
	}
	// A changed character is caught by its group's check character.
	b := []byte(s)
	if b[3] == 'A' {
		b[3] = 'C'
	} else {
		b[3] = 'A'
	}
	if _, err := IDFromString(string(b)); err == nil {
		t.Fatalf("typo %q accepted", b)
	}
	if _, err := IDFromString(s[:20]); err == nil {
		t.Fatal("short ID accepted")
	}
}

func TestIdentityPersistsWith0600(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode().Perm())
	}
	b, err := LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != b.ID() {
		t.Fatal("second run made a new key")
	}
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(dir); err == nil {
		t.Fatal("world-readable key accepted")
	}
}

func TestInvite(t *testing.T) {
	id, err := LoadIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	inv, err := NewInvite(id, "127.0.0.2:7980", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	code := inv.String()
	got, err := ParseInvite(" "+strings.ToLower(code)+"\n", now)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != id.ID() || got.Addr != "127.0.0.2:7980" || !got.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("got %+v", got)
	}
	if _, err := ParseInvite(code, now.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired invite: %v", err)
	}
	// Tamper with the address: the signature no longer verifies.
	other, _ := NewInvite(id, "127.0.0.3:7980", time.Hour, now)
	forged := Invite{Key: inv.Key, Addr: other.Addr, Expires: inv.Expires, Sig: inv.Sig}
	if _, err := ParseInvite(forged.String(), now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged invite: %v", err)
	}
	if _, err := NewInvite(id, "", time.Hour, now); err == nil {
		t.Fatal("empty address accepted")
	}
}

func FuzzParseInvite(f *testing.F) {
	id, _ := LoadIdentity(f.TempDir())
	now := time.Unix(1_800_000_000, 0)
	inv, _ := NewInvite(id, "127.0.0.2:7980", time.Hour, now)
	f.Add(inv.String())
	f.Add(InvitePrefix)
	f.Add("BTSF1-AAAA")
	f.Fuzz(func(t *testing.T, code string) {
		inv, err := ParseInvite(code, now)
		if err != nil {
			return
		}
		again, err := ParseInvite(inv.String(), now)
		if err != nil || again.ID() != inv.ID() || again.Addr != inv.Addr {
			t.Fatalf("round trip of %q: %v", code, err)
		}
	})
}

func FuzzIDFromString(f *testing.F) {
	f.Add("MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-ONSGYCY-LTMRWGC")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := IDFromString(s)
		if err != nil {
			return
		}
		if again, err := IDFromString(id.String()); err != nil || again != id {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}
