package lab

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// guardSource is the C source of the loopback guard (an LD_PRELOAD shim).
//
//go:embed csrc/guard.c
var guardSource []byte

var guardBuild struct {
	once sync.Once
	path string
	err  error
}

// guardLib returns the path of the compiled guard, building it on first
// use in this process. The library is cached under the user's cache dir by
// the hash of its source and written atomically, so test binaries running
// in parallel may build it at the same time.
func guardLib(t testing.TB) string {
	t.Helper()
	Require(t, "gcc")
	guardBuild.once.Do(func() {
		guardBuild.path, guardBuild.err = buildGuard()
	})
	if guardBuild.err != nil {
		t.Fatalf("lab: loopback guard: %v", guardBuild.err)
	}
	return guardBuild.path
}

func buildGuard() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "btslave-lab")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	sum := sha256.Sum256(guardSource)
	path := filepath.Join(dir, "guard-"+hex.EncodeToString(sum[:8])+".so")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tmp, err := os.CreateTemp(dir, "guard-*.so.tmp")
	if err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // no-op after the rename
	cmd := exec.Command("gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", tmp.Name(), "-x", "c", "-", "-ldl")
	cmd.Stdin = bytes.NewReader(guardSource)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc: %w\n%s", err, out)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("install guard: %w", err)
	}
	return path, nil
}

// GuardCommand returns cmd changed to run under the loopback guard, logging
// refusals to logPath. It is for tests that start a program themselves; the
// Start helpers use the guard already.
func GuardCommand(t testing.TB, cmd *exec.Cmd, logPath string) *exec.Cmd {
	t.Helper()
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	var kept []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "LD_PRELOAD=") && !strings.HasPrefix(kv, "BTSLAVE_GUARD_LOG=") {
			kept = append(kept, kv)
		}
	}
	cmd.Env = append(kept, "LD_PRELOAD="+guardLib(t), "BTSLAVE_GUARD_LOG="+logPath)
	return cmd
}

// A Refusal is one call the guard refused, as read from a guard log.
type Refusal struct {
	PID  int
	Func string // connect, sendto, sendmsg or sendmmsg
	Addr string // ip:port, [ipv6]:port or family-N
	Line string // the raw log line
}

// IP returns the refused IP address, or false for a non-IP address.
func (r Refusal) IP() (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.Addr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr(), true
}

// allowedBy reports whether an entry of allow matches r. An entry matches
// the whole address (ip:port) or only its IP.
func (r Refusal) allowedBy(allow []string) bool {
	ip, isIP := r.IP()
	for _, a := range allow {
		if a == r.Addr {
			return true
		}
		if want, err := netip.ParseAddr(a); err == nil && isIP && want == ip {
			return true
		}
	}
	return false
}

// GuardRefusals parses the guard log at path. A missing log means no
// refusals.
func GuardRefusals(path string) ([]Refusal, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("guard log: %w", err)
	}
	defer f.Close()
	var out []Refusal
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		r := Refusal{Line: line}
		for field := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "pid":
				r.PID, _ = strconv.Atoi(v)
			case "func":
				r.Func = v
			case "addr":
				r.Addr = v
			}
		}
		if r.Func == "" || r.Addr == "" {
			return out, fmt.Errorf("guard log %s: malformed line %q", path, line)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("guard log %s: %w", path, err)
	}
	return out, nil
}
