package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btslave/btslave/btfs"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
)

// mountPoint is an empty directory, lazily unmounted at cleanup whatever
// the test left on it.
func mountPoint(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		if btfs.IsMounted(dir) {
			_ = btfs.LazyUnmount(dir)
		}
	})
	return dir
}

// Ensure the daemon owns a mount made with "btslave mount": ls and stat of
// a seedless torrent answer at once, a read nobody can serve fails with
// EIO after read_timeout, a kill -9 leaves a dead mount that the restarted
// daemon cleans and mounts again, and "btslave umount" ends it for good.
func TestMountDaemonOwnsMount(t *testing.T) {
	lab.RequireFUSE(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	cfgPath := filepath.Join(t.TempDir(), "btslave.toml")
	os.WriteFile(cfgPath, []byte("[peer]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n[cache]\nsize = \"8MiB\"\n[mount]\nread_timeout = \"2s\"\n"), 0o600)
	env := testEnv(t)
	cli := func(args ...string) (int, string, string) {
		return run(t, env, append(args, "--config", cfgPath, "--data-dir", dataDir)...)
	}
	files := []int64{1 << 20, 3000}
	torrentPath, _, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Name: "multi", Files: files})
	mnt := mountPoint(t)
	file := filepath.Join(mnt, "multi", "f000.bin")

	d := startDaemon(t, cfgPath, dataDir)
	if code, out, errOut := cli("mount", torrentPath, mnt); code != 0 || !strings.Contains(out, ih) {
		t.Fatalf("mount: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := cli("mount", torrentPath, mnt); code != exitUsage {
		t.Errorf("a second mount on the same directory: exit %d %q, want 2", code, errOut)
	}
	start := time.Now()
	ents, err := os.ReadDir(filepath.Join(mnt, "multi"))
	if err != nil || len(ents) != len(files) {
		t.Fatalf("ls of the mount: %v %v", ents, err)
	}
	for i, e := range ents {
		if st, err := e.Info(); err != nil || st.Size() != files[i] {
			t.Errorf("stat %s: %v %v", e.Name(), st, err)
		}
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("ls and stat of a seedless torrent took %v", el)
	}
	start = time.Now()
	if _, err := os.ReadFile(file); !errors.Is(err, syscall.EIO) {
		t.Errorf("read with no seed: %v, want EIO", err)
	} else if el := time.Since(start); el < 2*time.Second || el > 10*time.Second {
		t.Errorf("the read failed after %v, want read_timeout 2s", el)
	}
	if code, out, _ := cli("mount"); code != 0 || !strings.Contains(out, mnt) || strings.Contains(out, " 0 timeouts") {
		t.Errorf("mount list: %d %q", code, out)
	}
	if code, out, _ := cli("status"); code != 0 || !strings.Contains(out, "mounts") || !strings.Contains(out, mnt) ||
		!strings.Contains(out, "multi") || !strings.Contains(out, api.MountServing) {
		t.Errorf("status does not list the mount: %d %q", code, out)
	}
	// A bare info hash nobody serves: mounted, waiting for its metadata.
	_, _, waitIH, _ := lab.MakeTorrent(t, lab.TorrentOptions{Name: "unseen.bin", Size: 1 << 20})
	waitMnt := mountPoint(t)
	if code, out, errOut := cli("mount", waitIH, waitMnt); code != 0 {
		t.Fatalf("mount of an info hash: %d %q %q", code, out, errOut)
	}
	wantStatusMounts(t, cli,
		api.Mount{Dir: mnt, InfoHash: ih, Name: "multi", State: api.MountServing, Timeouts: 1},
		api.Mount{Dir: waitMnt, InfoHash: waitIH, State: api.MountWaiting})
	if code, out, _ := cli("status"); code != 0 || !strings.Contains(out, waitMnt) || !strings.Contains(out, api.MountWaiting) {
		t.Errorf("status does not list the waiting mount: %d %q", code, out)
	}
	if code, out, errOut := cli("umount", waitMnt); code != 0 {
		t.Fatalf("umount %s: %d %q %q", waitMnt, code, out, errOut)
	}

	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	if !btfs.IsDead(mnt) {
		t.Error("after kill -9 the mount is not dead (statfs does not fail with ENOTCONN)")
	}
	d = startDaemon(t, cfgPath, dataDir)
	if st, err := os.Stat(file); err != nil || st.Size() != files[0] || btfs.IsDead(mnt) {
		t.Fatalf("after the restart: %v %v, dead %v; want the file again", st, err, btfs.IsDead(mnt))
	}
	if n := mountCount(t, mnt); n != 1 {
		t.Errorf("%d mounts on the directory after the restart, want 1 (the dead one cleaned)", n)
	}
	if code, out, errOut := cli("umount", mnt); code != 0 {
		t.Fatalf("umount: %d %q %q", code, out, errOut)
	}
	if btfs.IsMounted(mnt) {
		t.Error("still mounted after umount")
	}
	if code, _, _ := cli("umount", mnt); code == 0 {
		t.Error("a second umount succeeded")
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
	d = startDaemon(t, cfgPath, dataDir)
	if code, out, _ := cli("mount"); code != 0 || !strings.Contains(out, "no mounts") || btfs.IsMounted(mnt) {
		t.Errorf("after umount and a restart: %d %q, mounted %v", code, out, btfs.IsMounted(mnt))
	}
	wantStatusMounts(t, cli)
	d.cmd.Process.Signal(syscall.SIGTERM)
	<-d.done
}

// wantStatusMounts checks the mounts `btslave status --json` shows: their
// directory, torrent and state, and at least want's timeouts (a read
// that failed may be retried by the reader; the other counters vary).
func wantStatusMounts(t *testing.T, cli func(...string) (int, string, string), want ...api.Mount) {
	t.Helper()
	code, out, errOut := cli("status", "--json")
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: %d %v %q %q", code, err, out, errOut)
	}
	if st.Mounts == nil {
		t.Fatalf("status --json has no mounts list: %s", out)
	}
	if len(st.Mounts) != len(want) {
		t.Fatalf("status --json lists %d mounts, want %d: %+v", len(st.Mounts), len(want), st.Mounts)
	}
	sort.Slice(want, func(i, j int) bool { return want[i].Dir < want[j].Dir }) // as the daemon lists them
	for i, w := range want {
		g := st.Mounts[i]
		if g.Dir != w.Dir || g.InfoHash != w.InfoHash || g.Name != w.Name || g.State != w.State || g.Timeouts < w.Timeouts || g.Error != "" {
			t.Errorf("status --json mount %d: %+v, want %+v", i, g, w)
		}
	}
}

// Ensure "btslave mount" without a daemon mounts in the foreground and
// unmounts cleanly when its context (SIGINT/SIGTERM) ends.
func TestMountForeground(t *testing.T) {
	lab.RequireFUSE(t)
	cfgPath := filepath.Join(t.TempDir(), "btslave.toml")
	os.WriteFile(cfgPath, []byte("[peer]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n[cache]\nsize = \"8MiB\"\n"), 0o600)
	_, _, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Name: "one.bin", Size: 1 << 20})
	mnt := mountPoint(t)
	env := testEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		c, _, _ := runCtx(ctx, env, "mount", ih, mnt, "--config", cfgPath, "--data-dir", filepath.Join(t.TempDir(), "data"))
		code <- c
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !btfs.IsMounted(mnt) {
		if time.Now().After(deadline) {
			t.Fatal("the foreground mount never appeared")
		}
		select {
		case c := <-code:
			t.Fatalf("mount exited with %d before mounting", c)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// An info hash alone: the metadata is unknown, the status file shows.
	if _, err := os.Stat(filepath.Join(mnt, btfs.StatusFile)); err != nil {
		t.Errorf("status file: %v", err)
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("foreground mount exited with %d", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the foreground mount did not stop")
	}
	if btfs.IsMounted(mnt) {
		t.Error("still mounted after the stop")
	}
}

// mountCount is how many mounts /proc/self/mountinfo lists on dir.
func mountCount(t *testing.T, dir string) int {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			n++
		}
	}
	return n
}

// Ensure a real SIGINT to a foreground "btslave mount" process (the
// binary, not a cancelled context) unmounts cleanly: the process exits 0
// and leaves no mount behind.
func TestMountForegroundSIGINT(t *testing.T) {
	lab.RequireFUSE(t)
	cfgPath := filepath.Join(t.TempDir(), "btslave.toml")
	os.WriteFile(cfgPath, []byte("[peer]\nlisten = \"127.0.0.1:0\"\n[api]\nlisten = \"127.0.0.1:0\"\n[cache]\nsize = \"8MiB\"\n"), 0o600)
	_, _, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Name: "one.bin", Size: 1 << 20})
	mnt := mountPoint(t)
	var log bytes.Buffer
	cmd := exec.Command(os.Args[0], "mount", "--standalone", "--config", cfgPath, "--data-dir", filepath.Join(t.TempDir(), "data"), ih, mnt)
	cmd.Env = append(os.Environ(), "BTSLAVE_AS_MAIN=1")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("btslave mount output:\n%s", log.String())
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); !btfs.IsMounted(mnt); {
		if time.Now().After(deadline) {
			t.Fatal("the foreground mount never appeared")
		}
		select {
		case err := <-done:
			t.Fatalf("btslave mount exited (%v) before mounting", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := os.Stat(filepath.Join(mnt, btfs.StatusFile)); err != nil {
		t.Errorf("status file: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("btslave mount after SIGINT: %v, want exit 0 (killed by the signal: it came before the handler was installed)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("btslave mount did not stop within 10 s of SIGINT")
	}
	if btfs.IsMounted(mnt) {
		t.Error("still mounted after SIGINT")
	}
	if n := mountCount(t, mnt); n != 0 {
		t.Errorf("%d mounts left on %s", n, mnt)
	}
}
