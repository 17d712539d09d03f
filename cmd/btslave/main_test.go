package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
)

// TestMain lets the test binary act as the btslave command, so that tests
// can run the daemon as a real process (signals, kill -9) without a build.
func TestMain(m *testing.M) {
	if os.Getenv("BTSLAVE_AS_MAIN") == "1" {
		main()
	}
	code := m.Run()
	if plain.path != "" {
		os.RemoveAll(filepath.Dir(plain.path))
	}
	os.Exit(code)
}

// run runs the CLI in-process.
func run(t *testing.T, getenv map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCtx(context.Background(), getenv, args...)
}

// runCtx runs the CLI in-process until ctx ends.
func runCtx(ctx context.Context, getenv map[string]string, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(ctx, args, env{stdout: &o, stderr: &e, getenv: func(k string) string { return getenv[k] }})
	return code, o.String(), e.String()
}

func testEnv(t *testing.T) map[string]string {
	dir := t.TempDir()
	return map[string]string{"HOME": dir, "XDG_CONFIG_HOME": filepath.Join(dir, "config"), "XDG_DATA_HOME": filepath.Join(dir, "data")}
}

// Ensure that every command has --help, exits 0 with it, and documents exit codes.
func TestHelpEverywhere(t *testing.T) {
	var paths [][]string
	var walk func(c *command, path []string)
	walk = func(c *command, path []string) {
		paths = append(paths, path)
		for _, s := range c.subs {
			walk(s, append(append([]string{}, path...), s.name))
		}
	}
	walk(rootCommand(), nil)
	if len(paths) < 7 {
		t.Fatalf("only %d commands found", len(paths))
	}
	for _, p := range paths {
		for _, h := range []string{"--help", "-h"} {
			code, out, _ := run(t, testEnv(t), append(append([]string{}, p...), h)...)
			if code != 0 || !strings.Contains(out, "EXIT STATUS") || !strings.Contains(out, "USAGE") {
				t.Errorf("%v %s: code %d, output:\n%s", p, h, code, out)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"run", "--nope"}, {"version", "x"}, {"config"}, {"config", "check", "a", "b"},
		{"feeds"}, {"feeds", "nope"}, {"feeds", "add"}, {"feeds", "remove"}, {"feeds", "list", "x"}, {"swarms", "x"}, {"swarms", "--limit", "-1"}} {
		if code, _, _ := run(t, testEnv(t), args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	code, out, _ := run(t, testEnv(t), "version")
	if code != 0 || !strings.HasPrefix(out, "btslave ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestConfigInitAndCheck(t *testing.T) {
	env := testEnv(t)
	code, out, _ := run(t, env, "config", "init")
	want := filepath.Join(env["XDG_CONFIG_HOME"], "btslave", "btslave.toml")
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("init: %d %q", code, out)
	}
	if st, err := os.Stat(want); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v", err)
	}
	if code, _, errOut := run(t, env, "config", "init"); code != exitUsage || !strings.Contains(errOut, "--force") {
		t.Errorf("second init must refuse: %d %q", code, errOut)
	}
	if code, _, _ := run(t, env, "config", "init", "--force"); code != 0 {
		t.Errorf("init --force: %d", code)
	}
	code, out, _ = run(t, env, "config", "check")
	if code != 0 || !strings.Contains(out, want+": OK") || !strings.Contains(out, `size = "256MiB"`) {
		t.Errorf("check: %d\n%s", code, out)
	}
	if code, out, _ := run(t, testEnv(t), "config", "check"); code != 0 || !strings.Contains(out, "embedded defaults") {
		t.Errorf("check without file: %d %s", code, out)
	}
}

// Ensure that a bad config exits 2 naming file, line, key and reason.
func TestConfigCheckBad(t *testing.T) {
	env := testEnv(t)
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[peer]\nlisten = \":0\"\n[cache]\nsize = \"12 parsecs\"\n"), 0o600)
	for _, args := range [][]string{{"config", "check", bad}, {"run", "--config", bad}, {"status", "--config", bad}} {
		code, _, errOut := run(t, env, args...)
		if code != exitUsage || !strings.Contains(errOut, bad+":4: cache.size: size") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	env["BTSLAVE_CONFIG"] = filepath.Join(t.TempDir(), "missing.toml")
	if code, _, errOut := run(t, env, "config", "check"); code != exitUsage || !strings.Contains(errOut, "missing.toml") {
		t.Errorf("missing $BTSLAVE_CONFIG: %d %q", code, errOut)
	}
	pub := filepath.Join(t.TempDir(), "pub.toml")
	os.WriteFile(pub, []byte("[api]\nlisten = \"0.0.0.0:7979\"\n"), 0o600)
	if code, _, errOut := run(t, testEnv(t), "run", "--config", pub); code != exitUsage || !strings.Contains(errOut, "api.token") {
		t.Errorf("non-loopback API without token: %d %q", code, errOut)
	}
}

func TestStatusNotRunning(t *testing.T) {
	env := testEnv(t)
	os.MkdirAll(filepath.Join(env["XDG_DATA_HOME"], "btslave"), 0o700)
	os.WriteFile(filepath.Join(env["XDG_DATA_HOME"], "btslave", api.TokenFile), []byte("0123456789abcdef0123\n"), 0o600)
	cfg := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(cfg, []byte("[api]\nlisten = \"127.0.0.1:1\"\n"), 0o600)
	code, _, errOut := run(t, env, "status", "--config", cfg)
	if code != exitFailure || !strings.Contains(errOut, "not running") {
		t.Errorf("status with no daemon: %d %q", code, errOut)
	}
}

// daemonProc is a btslave run process started from the test binary.
type daemonProc struct {
	cmd     *exec.Cmd
	log     *bytes.Buffer
	done    chan error
	exited  chan struct{} // closed once Wait returned
	dataDir string
}

func startDaemon(t *testing.T, cfgPath, dataDir string) *daemonProc {
	return startDaemonBinary(t, os.Args[0], cfgPath, dataDir)
}

// startDaemonBinary runs "bin run" (the test binary, or a real build).
func startDaemonBinary(t *testing.T, bin, cfgPath, dataDir string) *daemonProc {
	t.Helper()
	os.Remove(filepath.Join(dataDir, api.AddrFile))
	d := &daemonProc{log: new(bytes.Buffer), done: make(chan error, 1), exited: make(chan struct{}), dataDir: dataDir}
	d.cmd = exec.Command(bin, "run", "--config", cfgPath, "--data-dir", dataDir)
	d.cmd.Env = append(os.Environ(), "BTSLAVE_AS_MAIN=1")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		select { // Wait has copied all the output: the log may be read
		case <-d.exited:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dataDir, api.AddrFile)); err == nil {
			return d
		}
		select {
		case err := <-d.done:
			t.Fatalf("daemon exited early: %v\n%s", err, d.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("daemon did not come up:\n%s", d.log)
	return nil
}

// Ensure the whole lifecycle: run, status, 401, a second daemon refused,
// kill -9 then run again, and a graceful SIGTERM within 5s.
func TestRunLifecycle(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cfgPath := filepath.Join(t.TempDir(), "btslave.toml")
	os.WriteFile(cfgPath, []byte(`
[peer]
listen = "127.0.0.1:0"
[api]
listen = "127.0.0.1:0"
`), 0o600)
	env := testEnv(t)
	status := func() (int, string, string) {
		return run(t, env, "status", "--config", cfgPath, "--data-dir", dataDir)
	}

	first := startDaemon(t, cfgPath, dataDir)
	code, out, errOut := status()
	if code != 0 || !strings.Contains(out, "btslave ") || !strings.Contains(out, dataDir) {
		t.Fatalf("status: %d %q %q", code, out, errOut)
	}
	addr, _ := os.ReadFile(filepath.Join(dataDir, api.AddrFile))
	resp, err := http.Get("http://" + strings.TrimSpace(string(addr)) + "/api/v1/status")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %v %v", resp, err)
	}
	resp.Body.Close()

	// A second daemon on the same data dir fails fast and clearly.
	second := exec.Command(os.Args[0], "run", "--config", cfgPath, "--data-dir", dataDir)
	second.Env = append(os.Environ(), "BTSLAVE_AS_MAIN=1")
	start := time.Now()
	outb, err := second.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailure || !strings.Contains(string(outb), "in use by another btslave") {
		t.Errorf("second daemon: %v %s", err, outb)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("second daemon took %v to fail", time.Since(start))
	}

	first.cmd.Process.Signal(syscall.SIGKILL)
	<-first.done

	// kill -9 at several moments, then start again.
	for i, wait := range []time.Duration{0, 30 * time.Millisecond, 300 * time.Millisecond} {
		d := startDaemon(t, cfgPath, dataDir)
		time.Sleep(wait)
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		t.Run(fmt.Sprintf("restart after kill -9 #%d", i), func(t *testing.T) {
			d := startDaemon(t, cfgPath, dataDir)
			if code, out, errOut := status(); code != 0 {
				t.Fatalf("status after restart: %d %q %q", code, out, errOut)
			}
			d.cmd.Process.Signal(syscall.SIGKILL)
			<-d.done
		})
	}

	d := startDaemon(t, cfgPath, dataDir)
	start = time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("SIGTERM: exit %v\n%s", err, d.log)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("graceful stop took %v", el)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon ignored SIGTERM:\n%s", d.log)
	}
	if !strings.Contains(d.log.String(), "stopped cleanly") {
		t.Errorf("no clean stop in log:\n%s", d.log)
	}
	if _, err := os.Stat(filepath.Join(dataDir, api.AddrFile)); err == nil {
		t.Error("api.addr left behind after a clean stop")
	}
	if code, _, _ := status(); code != exitFailure {
		t.Errorf("status after stop: %d, want 1", code)
	}
}

// Ensure repeat and leave work through the daemon, bad input is refused
// with exit 2, and the swarms the owner asked for survive a restart.
func TestRepeatLeave(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cfgPath := filepath.Join(t.TempDir(), "btslave.toml")
	os.WriteFile(cfgPath, []byte("[peer]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n[cache]\nsize = \"8MiB\"\n"), 0o600)
	env := testEnv(t)
	cli := func(args ...string) (int, string, string) {
		return run(t, env, append(args, "--config", cfgPath, "--data-dir", dataDir)...)
	}
	torrentPath, _, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 1 << 20})

	d := startDaemon(t, cfgPath, dataDir)
	if code, out, errOut := cli("repeat", torrentPath); code != 0 || !strings.Contains(out, ih) {
		t.Fatalf("repeat: %d %q %q", code, out, errOut)
	}
	if code, out, _ := cli("status"); code != 0 || !strings.Contains(out, ih[:8]) {
		t.Fatalf("status does not list the swarm: %q", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.torrent")
	os.WriteFile(bad, []byte("d4:infod6:lengthi-1eee"), 0o600)
	for _, arg := range []string{bad, "magnet:?xt=urn:btih:nothex", "/does/not/exist"} {
		if code, _, errOut := cli("repeat", arg); code != exitUsage || errOut == "" {
			t.Errorf("repeat %s: exit %d, stderr %q; want 2", arg, code, errOut)
		}
	}

	// Restart: the swarm comes back.
	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
	d = startDaemon(t, cfgPath, dataDir)
	if code, out, _ := cli("status", "--json"); code != 0 || !strings.Contains(out, ih) {
		t.Fatalf("swarm not rejoined after restart: %q", out)
	}
	if code, out, errOut := cli("leave", ih); code != 0 || !strings.Contains(out, "left") {
		t.Fatalf("leave: %d %q %q", code, out, errOut)
	}
	if code, _, _ := cli("leave", ih); code != exitUsage {
		t.Errorf("leaving twice: exit %d, want 2", code)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
	startDaemon(t, cfgPath, dataDir)
	code, out, _ := cli("status", "--json")
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: %d %v", code, err)
	}
	if len(st.Torrents) != 0 {
		t.Fatalf("left swarm came back: %+v", st.Torrents)
	}
	if len(st.Visits) != 2 || st.Visits[0].Reason != "left by owner" || st.Visits[1].Reason != "shutdown" {
		t.Errorf("visits %+v", st.Visits)
	}
}
