package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// SeedForever, as Aria2Options.SeedTime, keeps aria2 seeding until it is
// stopped.
const SeedForever time.Duration = -1

// Aria2Options configures StartAria2. Zero values pick the defaults.
type Aria2Options struct {
	Torrent string     // .torrent to download or seed; required
	Addr    netip.Addr // --interface; default NextAddr()
	Port    int        // --listen-port; default a free port
	// Dir is the download directory (--dir); default <dir>/downloads. To
	// seed, point it at the directory holding the data and set SeedTime:
	// aria2 checks the data (--check-integrity) and seeds what verifies.
	Dir string
	// UploadLimit and DownloadLimit are in bytes per second, 0 for none.
	UploadLimit, DownloadLimit int64
	// SeedTime is how long to seed after completion: 0 (the default) stops
	// at once and aria2 exits; SeedForever never stops.
	SeedTime time.Duration
	// Args are extra command-line options. Options that the lab sets for
	// isolation (DHT, LPD, PEX, IPv6, interface, config file) are refused.
	Args []string
	// AllowRefusals lists guard refusals (IP or ip:port) that do not fail
	// the test.
	AllowRefusals []string
}

// aria2Isolation are the option prefixes Aria2Options.Args may not use.
var aria2Isolation = []string{
	"--conf-path", "--no-conf", "--enable-dht", "--dht-", "--bt-enable-lpd", "--bt-lpd-",
	"--enable-peer-exchange", "--disable-ipv6", "--interface", "--multiple-interface",
	"--listen-port", "--stop-with-process", "--on-bt-download-complete", "--enable-rpc",
	"--rpc-listen-all", "--all-proxy", "--http-proxy", "--https-proxy",
}

// Aria2 is a running aria2c with one torrent. aria2 never sends
// upload_only, never announces paused, and its extended handshake has only
// m:{ut_metadata}, metadata_size, p and v. It cannot use UDP trackers
// ("udp is not supported yet") since it speaks that protocol only with DHT
// on: give it an HTTP announce URL.
type Aria2 struct {
	*Process
	Addr     netip.Addr
	Port     int
	Dir      string
	doneFile string
}

// StartAria2 starts aria2c on opts.Torrent with DHT, LPD, PEX and IPv6 off,
// bound to opts.Addr, logging to <dir>/aria2.log.
func StartAria2(t testing.TB, opts Aria2Options) *Aria2 {
	t.Helper()
	Require(t, "aria2c")
	labFor(t)
	if opts.Torrent == "" {
		t.Fatal("lab: aria2: Aria2Options.Torrent is required")
	}
	for _, arg := range opts.Args {
		for _, prefix := range aria2Isolation {
			if strings.HasPrefix(arg, prefix) {
				t.Fatalf("lab: aria2: option %q would undo the lab's isolation", arg)
			}
		}
	}
	peerAddr(t, "aria2", &opts.Addr, &opts.Port)
	dir := t.TempDir()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(dir, "downloads")
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			t.Fatalf("lab: aria2: %v", err)
		}
	}
	doneFile := filepath.Join(dir, "done")
	hook := filepath.Join(dir, "on-complete.sh")
	script := "#!/bin/sh\n# aria2 passes GID, number of files, first file path.\necho \"$@\" > " + shellQuote(doneFile) + "\n"
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatalf("lab: aria2: %v", err)
	}
	logFile := filepath.Join(dir, "aria2.log")

	args := []string{
		"--no-conf=true",
		"--enable-dht=false",
		"--enable-dht6=false",
		"--bt-enable-lpd=false",
		"--enable-peer-exchange=false",
		"--disable-ipv6=true",
		"--interface=" + opts.Addr.String(),
		"--listen-port=" + strconv.Itoa(opts.Port),
		"--file-allocation=none",
		"--max-overall-upload-limit=" + strconv.FormatInt(opts.UploadLimit, 10),
		"--max-overall-download-limit=" + strconv.FormatInt(opts.DownloadLimit, 10),
		"--dir=" + opts.Dir,
		"--bt-tracker-connect-timeout=5",
		"--bt-tracker-timeout=10",
		"--on-bt-download-complete=" + hook,
		"--stop-with-process=" + strconv.Itoa(os.Getpid()),
		"--summary-interval=0",
		"--enable-color=false",
		"--console-log-level=notice",
		"--log=" + logFile,
		"--log-level=info",
	}
	switch {
	case opts.SeedTime == SeedForever:
		args = append(args, "--seed-ratio=0.0")
	case opts.SeedTime > 0:
		args = append(args, "--seed-ratio=0.0",
			"--seed-time="+strconv.FormatFloat(opts.SeedTime.Minutes(), 'f', -1, 64))
	default:
		args = append(args, "--seed-time=0")
	}
	// Check data already in Dir, to seed it. (On a missing file the check
	// would only log a checksum error.)
	mi, err := metainfo.LoadFromFile(opts.Torrent)
	if err != nil {
		t.Fatalf("lab: aria2: %v", err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatalf("lab: aria2: %s: %v", opts.Torrent, err)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, info.BestName())); err == nil {
		args = append(args, "--check-integrity=true")
	}
	args = append(args, opts.Args...)
	args = append(args, opts.Torrent)

	p := startProcess(t, procSpec{
		name:  "aria2",
		dir:   dir,
		path:  "aria2c",
		args:  args,
		logs:  []string{logFile},
		allow: opts.AllowRefusals,
	})
	a := &Aria2{Process: p, Addr: opts.Addr, Port: opts.Port, Dir: opts.Dir, doneFile: doneFile}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	err = waitTCP(ctx, p, netip.AddrPortFrom(opts.Addr, uint16(opts.Port)))
	if err != nil && !a.Done() {
		t.Fatalf("lab: aria2 did not start listening: %v", err)
	}
	if p.running() {
		checkListeners(t, p)
	}
	return a
}

// Done reports whether the download has completed.
func (a *Aria2) Done() bool {
	if _, err := os.Stat(a.doneFile); err == nil {
		return true
	}
	select {
	case <-a.exited:
		return a.waitErr == nil // aria2 exits 0 only when all is done
	default:
		return false
	}
}

// WaitDone waits until the download has completed (the completion hook ran,
// or aria2 exited with status 0).
func (a *Aria2) WaitDone(ctx context.Context) error {
	err := poll(ctx, a.Process, func() (bool, error) { return a.Done(), nil })
	if err != nil {
		return fmt.Errorf("aria2: download not complete: %w", err)
	}
	return nil
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	out := "'"
	for _, r := range s {
		if r == '\'' {
			out += `'\''`
		} else {
			out += string(r)
		}
	}
	return out + "'"
}
