package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Ensure that "btslave tracker" runs the tracker alone from flags, serves
// /stats, refuses a second one on the same data dir, stops on SIGTERM,
// and refuses a config without a whitelist or open mode with exit 2.
func TestTrackerCommand(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := run(t, testEnv(t), "tracker", "--data-dir", dataDir); code != exitUsage || !strings.Contains(errOut, "open = true") {
		t.Errorf("no whitelist: exit %d, %q", code, errOut)
	}
	log := new(lockedBuffer)
	cmd := exec.Command(os.Args[0], "tracker", "--open", "--http-listen", "127.0.0.1:0", "--udp-listen", "", "--data-dir", dataDir)
	// No config file at all: the embedded defaults and the flags.
	cmd.Env = append(filterEnv(os.Environ(), "BTSLAVE_CONFIG"), "BTSLAVE_AS_MAIN=1", "XDG_CONFIG_HOME="+t.TempDir())
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("tracker log:\n%s", log)
		}
	})
	re := regexp.MustCompile(`http=(127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(15 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatal("the tracker did not log its address")
	}
	resp, err := http.Get("http://" + addr + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "mode          open") {
		t.Errorf("/stats: %s %q", resp.Status, body)
	}
	if code, _, errOut := run(t, testEnv(t), "tracker", "--open", "--http-listen", "127.0.0.1:0", "--data-dir", dataDir); code != exitFailure ||
		!strings.Contains(errOut, "in use") {
		t.Errorf("second tracker on the data dir: exit %d, %q", code, errOut)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil || !strings.Contains(log.String(), "tracker stopped") {
			t.Errorf("SIGTERM: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the tracker ignored SIGTERM")
	}
}

// filterEnv drops the variable named key from env.
func filterEnv(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}
