package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/api"
)

// Ensure that publish writes a torrent anacrolix reads with the printed
// infohash, defaults to the embedded tracker's URL when it is enabled,
// and refuses bad flags as usage errors.
func TestPublishCommand(t *testing.T) {
	env := testEnv(t)
	dir := filepath.Join(t.TempDir(), "Release")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.txt"), bytes.Repeat([]byte("a"), 50000), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "b.bin"), bytes.Repeat([]byte("b"), 70000), 0o644)
	cfg := filepath.Join(t.TempDir(), "btslave.toml")
	os.WriteFile(cfg, []byte("[tracker]\nenabled = true\nopen = true\nhttp_listen = \"0.0.0.0:6970\"\n"), 0o644)
	out := t.TempDir()

	code, stdout, stderr := run(t, env, "publish", "--local", dir, "--json", "--config", cfg, "--out", out, "--comment", "hi")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sums []publishSummary
	if err := json.Unmarshal([]byte(stdout), &sums); err != nil || len(sums) != 1 {
		t.Fatalf("%v: %s", err, stdout)
	}
	s := sums[0]
	if s.Version != "hybrid" || s.Files != 2 || s.Size != 120000 || s.Torrent != filepath.Join(out, "Release.torrent") {
		t.Errorf("summary %+v", s)
	}
	if len(s.Trackers) != 1 || s.Trackers[0] != "http://127.0.0.1:6970/announce" {
		t.Errorf("trackers %v, want the embedded tracker's", s.Trackers)
	}
	mi, err := metainfo.LoadFromFile(s.Torrent)
	if err != nil {
		t.Fatal(err)
	}
	if mi.HashInfoBytes().HexString() != s.InfoHashV1 || mi.Announce != s.Trackers[0] || mi.Comment != "hi" {
		t.Errorf("torrent: infohash %s announce %q comment %q; summary %s", mi.HashInfoBytes().HexString(), mi.Announce, mi.Comment, s.InfoHashV1)
	}

	// Text output: the magnet link.
	code, stdout, stderr = run(t, env, "publish", "--local", dir, "--no-tracker", "--format", "v1", "--out", filepath.Join(out, "x.torrent"))
	if code != 0 || !strings.Contains(stdout, "magnet:?xt=urn:btih:") || strings.Contains(stdout, "btmh") {
		t.Errorf("v1 text: exit %d\n%s%s", code, stdout, stderr)
	}

	for _, args := range [][]string{
		{"publish"}, {"publish", "--local", dir, "--format", "v3"}, {"publish", "--local", dir, "--piece-size", "1000"},
		{"publish", "--local", filepath.Join(out, "missing")}, {"publish", "--local", dir, dir, "--name", "x"},
		{"publish", dir, "--out", out},
	} {
		if code, _, _ := run(t, env, args...); code == 0 {
			t.Errorf("%v: exit 0", args)
		}
	}
}

// Ensure that Ctrl-C during hashing exits non-zero and leaves no .torrent
// and no temporary file.
func TestPublishInterrupted(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.img")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(4 << 30) // sparse: hashed, not stored
	f.Close()
	out := t.TempDir()
	cmd := exec.Command(os.Args[0], "publish", "--local", big, "--no-tracker", "--workers", "1", "--out", out)
	cmd.Env = append(os.Environ(), "BTSLAVE_AS_MAIN=1")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	if err == nil {
		t.Fatalf("publish of 4 GiB finished before the SIGINT 300 ms in:\n%s", log.String())
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 0 {
		t.Errorf("interrupted publish left %v", ents)
	}
}

// Ensure publish, published and unpublish against a running daemon: the
// daemon seeds what it published, lists it with the magnet link, and
// forgets it on unpublish; an unknown infohash is a usage error.
func TestPublishThroughDaemon(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	cfgPath := filepath.Join(t.TempDir(), "btslave.toml")
	os.WriteFile(cfgPath, []byte("[peer]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n[cache]\nsize = \"8MiB\"\n[auto]\nenabled = false\n[publish]\nlisten = \"127.0.0.1:0\"\n"), 0o600)
	env := testEnv(t)
	cli := func(args ...string) (int, string, string) {
		return run(t, env, append(args, "--config", cfgPath, "--data-dir", dataDir)...)
	}
	dir := filepath.Join(t.TempDir(), "Album")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "01.flac"), bytes.Repeat([]byte("x"), 90000), 0o644)
	os.WriteFile(filepath.Join(dir, "02.flac"), bytes.Repeat([]byte("y"), 40000), 0o644)

	startDaemon(t, cfgPath, dataDir)
	code, out, errOut := cli("publish", dir, "--json")
	if code != 0 {
		t.Fatalf("publish: %d %s", code, errOut)
	}
	var ps []api.Published
	if err := json.Unmarshal([]byte(out), &ps); err != nil || len(ps) != 1 || !ps[0].Seeding || ps[0].Files != 2 {
		t.Fatalf("publish --json: %v %s", err, out)
	}
	ih := ps[0].InfoHash
	if code, out, _ := cli("published"); code != 0 || !strings.Contains(out, ih) || !strings.Contains(out, "seeding") || !strings.Contains(out, "completed 0") || !strings.Contains(out, "magnet:?") || !strings.Contains(out, "/t/"+ih+".torrent") {
		t.Fatalf("published: %d %q", code, out)
	}
	if code, _, errOut := cli("unpublish", ih); code != 0 {
		t.Fatalf("unpublish: %d %s", code, errOut)
	}
	if code, out, _ := cli("published", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("published after unpublish: %q", out)
	}
	if code, _, _ := cli("unpublish", ih); code != exitUsage {
		t.Errorf("unpublish twice: exit %d, want 2", code)
	}
	if code, _, _ := cli("publish", filepath.Join(dir, "missing")); code != exitUsage {
		t.Errorf("publish of a missing path: exit %d, want 2", code)
	}
}
