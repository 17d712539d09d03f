package lab_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Ensure that install-deps.sh, which `make test` runs, never stops a
// process by name: the owner's own Transmission or qBittorrent would go
// with it (issue #17, item 10).
func TestInstallDepsKillsNothing(t *testing.T) {
	b, err := os.ReadFile("install-deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	killer := regexp.MustCompile(`\b(pkill|killall|pgrep|kill)\b`)
	for i, line := range strings.Split(string(b), "\n") {
		if code, _, _ := strings.Cut(line, "#"); killer.MatchString(code) {
			t.Errorf("install-deps.sh:%d kills a process: %s", i+1, strings.TrimSpace(line))
		}
	}
}

// Ensure that install-deps.sh installs chromium and fuse3 when their
// commands are missing, and checks for them the same idempotent way as for
// the other programs.
func TestInstallDepsInstallsChromiumAndFuse(t *testing.T) {
	b, err := os.ReadFile("install-deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"have chromium            || need+=(chromium)", "have fusermount3         || need+=(fuse3)"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("install-deps.sh lacks %q", want)
		}
	}
}
