package main

import (
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/internal/api"
)

// Ensure that status shows the master's state, its error and each helped
// torrent's figures.
func TestPrintMaster(t *testing.T) {
	var b strings.Builder
	printMaster(&b, api.MasterState{Kind: "transmission", State: "auth failed", Error: "HTTP 401", Failures: 3,
		NextPoll: time.Now().Add(time.Minute), Torrents: []api.MasterTorrent{{InfoHash: "0123456789abcdef0123456789abcdef01234567",
			Name: "x\x1b[2J", Master: "127.0.0.2:51413", Source: "owner", Connected: true, Progress: 0.5, ToMaster: 4 << 20}}})
	out := b.String()
	for _, want := range []string{"transmission: auth failed", "3 failures: HTTP 401", "01234567", "connected", "master 50.0%", "4.0 MiB to master"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("status prints a raw escape: %q", out)
	}
	b.Reset()
	printMaster(&b, api.MasterState{Torrents: []api.MasterTorrent{}})
	if b.Len() != 0 {
		t.Errorf("no master, nothing helped: prints %q", b.String())
	}
}

// Ensure that help-master checks its address before calling the daemon.
func TestHelpMasterUsage(t *testing.T) {
	cmd := helpMasterCommand()
	if cmd.name != "help-master" || cmd.long == "" {
		t.Fatal("help-master has no help text")
	}
}
