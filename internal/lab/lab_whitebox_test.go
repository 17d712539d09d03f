package lab

import (
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseProcAddr(t *testing.T) {
	cases := []struct {
		in   string
		want string
	}{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"00000000:0050", "0.0.0.0:80"},
		{"0248877F:A1B2", "127.135.72.2:41394"},
		{"00000000000000000000000001000000:1A0B", "[::1]:6667"},
		{"00000000000000000000000000000000:0016", "[::]:22"},
		{"0000000000000000FFFF00000100007F:0050", "127.0.0.1:80"}, // v4-mapped
	}
	for _, c := range cases {
		got, err := parseProcAddr(c.in)
		if err != nil || got.String() != c.want {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007F:XYZ", "01007F:0050"} {
		if _, err := parseProcAddr(bad); err == nil {
			t.Errorf("parseProcAddr(%q): no error", bad)
		}
	}
}

// Ensure that NextAddr never repeats itself and stays in 127.0.0.0/8,
// away from .0, .1 and .255.
func TestNextAddr(t *testing.T) {
	seen := map[netip.Addr]bool{}
	for range 1000 {
		a := NextAddr()
		if seen[a] {
			t.Fatalf("NextAddr repeated %s", a)
		}
		seen[a] = true
		b := a.As4()
		if b[0] != 127 || b[3] < 2 || b[3] > 254 {
			t.Fatalf("NextAddr = %s", a)
		}
	}
}

func TestGuardRefusals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.log")
	if rs, err := GuardRefusals(path); err != nil || rs != nil {
		t.Fatalf("missing log: %v, %v", rs, err)
	}
	log := "pid=12 func=connect addr=[2001:1890:1112:1::20]:6969\n" +
		"pid=12 func=sendto addr=192.0.2.1:53\n" +
		"pid=13 func=sendmsg addr=family-17\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := GuardRefusals(path)
	if err != nil || len(rs) != 3 {
		t.Fatalf("GuardRefusals = %v, %v", rs, err)
	}
	if rs[0].PID != 12 || rs[0].Func != "connect" || rs[2].Addr != "family-17" {
		t.Errorf("parsed %+v", rs)
	}
	allow := []string{TransmissionProbeAddr, "192.0.2.1:80"}
	for i, want := range []bool{true, false, false} {
		if got := rs[i].allowedBy(allow); got != want {
			t.Errorf("%q allowed by %v: %v, want %v", rs[i].Line, allow, got, want)
		}
	}
	if !rs[1].allowedBy([]string{"192.0.2.1:53"}) {
		t.Errorf("%q not allowed by its exact address", rs[1].Line)
	}
	if err := os.WriteFile(path, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := GuardRefusals(path); err == nil {
		t.Error("malformed log: no error")
	}
}

// Ensure that the WebUI password hash has qBittorrent's form and verifies.
func TestQBTPasswordHash(t *testing.T) {
	v, err := qbtPasswordHash("secret")
	if err != nil {
		t.Fatal(err)
	}
	inner, ok := strings.CutPrefix(v, "@ByteArray(")
	inner, ok2 := strings.CutSuffix(inner, ")")
	saltB64, keyB64, ok3 := strings.Cut(inner, ":")
	if !ok || !ok2 || !ok3 {
		t.Fatalf("hash %q: not @ByteArray(salt:key)", v)
	}
	salt, err1 := base64.StdEncoding.DecodeString(saltB64)
	key, err2 := base64.StdEncoding.DecodeString(keyB64)
	if err1 != nil || err2 != nil || len(salt) != 16 || len(key) != 64 {
		t.Fatalf("hash %q: salt %d bytes (%v), key %d bytes (%v)", v, len(salt), err1, len(key), err2)
	}
	want, err := pbkdf2.Key(sha512.New, "secret", salt, 100000, 64)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(key) {
		t.Error("key does not verify")
	}
}

// fakeTB records Skip, Fatal and Errorf instead of acting on the test.
type fakeTB struct {
	testing.TB
	skipped, fatal string
	errors         []string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

// Ensure that a refusal fails the test unless it is allowed.
func TestCheckGuard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.log")
	log := "pid=12 func=connect addr=[2001:1890:1112:1::20]:6969\n" +
		"pid=12 func=sendto addr=10.255.255.53:53\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Process{name: "prog", guardLog: path, allow: []string{TransmissionProbeAddr}}
	f := &fakeTB{TB: t}
	p.checkGuard(f)
	if len(f.errors) != 1 || !strings.Contains(f.errors[0], "10.255.255.53:53") {
		t.Errorf("errors %q, want one about 10.255.255.53:53", f.errors)
	}
	p.allow = append(p.allow, "10.255.255.53")
	f = &fakeTB{TB: t}
	p.checkGuard(f)
	if len(f.errors) != 0 {
		t.Errorf("errors %q with every refusal allowed", f.errors)
	}
}

// Ensure that a missing program skips the test, except in CI where it
// fails it.
func TestRequire_Missing(t *testing.T) {
	const prog = "btslave-lab-no-such-program"
	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	Require(f, prog)
	if f.fatal != "" || !strings.Contains(f.skipped, prog) {
		t.Errorf("without CI: skipped %q, fatal %q", f.skipped, f.fatal)
	}
	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	Require(f, prog)
	if f.skipped != "" || !strings.Contains(f.fatal, prog) {
		t.Errorf("with CI: skipped %q, fatal %q", f.skipped, f.fatal)
	}
}
