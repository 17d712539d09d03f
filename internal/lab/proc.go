package lab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long a program may take to exit after SIGTERM before the
// lab kills its process group.
const stopGrace = 5 * time.Second

// tailLines is how many lines of each log are shown when a test fails.
const tailLines = 40

// Process is one program started by the lab. It runs in its own process
// group under the loopback guard, with its output in files in its private
// directory. The test's cleanup stops it, checks its listening sockets and
// guard log and, if the test failed, prints the tail of its logs.
type Process struct {
	name     string
	dir      string
	cmd      *exec.Cmd
	guardLog string
	logs     []string
	allow    []string

	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // valid after exited is closed

	// watchdog sits in the program's process group and kills the group
	// when watchdogW, held only by this process, reaches EOF: when the
	// test binary dies without running its cleanups.
	watchdog  *exec.Cmd
	watchdogW *os.File

	// afterStop, if set, runs in the test's cleanup once the process
	// has been stopped (to close pipes and join readers).
	afterStop func()

	stopOnce sync.Once
	mu       sync.Mutex
	stopped  bool // stopped by Stop rather than on its own
}

// procSpec describes how to start a Process.
type procSpec struct {
	name  string   // short label used in file names and messages
	dir   string   // private directory; also the working directory
	path  string   // program
	args  []string // arguments
	env   []string // extra environment, KEY=value
	logs  []string // log files the program writes itself
	allow []string // guard refusals that are expected (IPs or ip:port)
	// stdout, when set, receives the program's stdout instead of the
	// <name>.out file; stderr still goes to the file.
	stdout *os.File
	// stdin, when set, is the program's stdin; else /dev/null.
	stdin *os.File
}

// labState is what the lab keeps per test: its processes and the cleanup
// that stops them.
type labState struct {
	t     testing.TB
	mu    sync.Mutex
	procs []*Process
}

var (
	labsMu sync.Mutex
	labs   = map[testing.TB]*labState{}
)

// labFor returns the lab state of t, creating it and registering its
// cleanup on first use.
func labFor(t testing.TB) *labState {
	t.Helper()
	labsMu.Lock()
	defer labsMu.Unlock()
	if l, ok := labs[t]; ok {
		return l
	}
	// Make sure the test's TempDir cleanup is registered before ours, so
	// that ours (LIFO) runs first, while the programs' files still exist.
	_ = t.TempDir()
	l := &labState{t: t}
	labs[t] = l
	t.Cleanup(func() {
		l.finish()
		labsMu.Lock()
		delete(labs, t)
		labsMu.Unlock()
	})
	return l
}

// finish checks and stops every process of the test: listening sockets
// first (while they run), then all are stopped in parallel, then the guard
// logs are checked and, if the test failed, log tails are printed.
func (l *labState) finish() {
	t := l.t
	l.mu.Lock()
	procs := append([]*Process(nil), l.procs...)
	l.mu.Unlock()

	for _, p := range procs {
		if p.running() {
			checkListeners(t, p)
		}
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.Stop)
	}
	wg.Wait()
	for _, p := range procs {
		if p.afterStop != nil {
			p.afterStop()
		}
		p.checkGuard(t)
		if err := p.exitProblem(); err != nil {
			t.Logf("lab: %s: %v", p.name, err)
		}
	}
	if t.Failed() {
		for _, p := range procs {
			p.printTails(t)
		}
	}
}

// startProcess starts spec under the guard and registers it with the
// test's lab. The returned process is running (or has just exited).
func startProcess(t testing.TB, spec procSpec) *Process {
	t.Helper()
	return startProcessOr(t, spec, nil)
}

// startProcessOr is startProcess that calls undo before failing the test
// when the program cannot be started.
func startProcessOr(t testing.TB, spec procSpec, undo func()) *Process {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		if undo != nil {
			undo()
		}
		t.Fatalf(format, args...)
	}
	l := labFor(t)
	guard := guardLib(t)

	p := &Process{
		name:     spec.name,
		dir:      spec.dir,
		guardLog: filepath.Join(spec.dir, spec.name+".guard.log"),
		allow:    spec.allow,
		exited:   make(chan struct{}),
	}
	outPath := filepath.Join(spec.dir, spec.name+".out")
	out, err := os.Create(outPath)
	if err != nil {
		fail("lab: %s: %v", spec.name, err)
	}
	defer out.Close()
	p.logs = append([]string{outPath}, spec.logs...)

	cmd := exec.Command(spec.path, spec.args...)
	cmd.Dir = spec.dir
	cmd.Env = append(programEnv(spec.dir),
		"LD_PRELOAD="+guard,
		"BTSLAVE_GUARD_LOG="+p.guardLog,
	)
	cmd.Env = append(cmd.Env, spec.env...)
	if spec.stdin != nil {
		cmd.Stdin = spec.stdin
	}
	cmd.Stdout = out
	if spec.stdout != nil {
		cmd.Stdout = spec.stdout
	}
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// A safety net for when the test binary dies without running
		// cleanups (e.g. a -timeout panic).
		Pdeathsig: syscall.SIGKILL,
	}
	p.cmd = cmd
	if err := cmd.Start(); err != nil {
		fail("lab: start %s: %v", spec.name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := p.startWatchdog(); err != nil {
		p.Stop()
		fail("lab: %s: %v", spec.name, err)
	}

	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

// startWatchdog starts a shell in the program's process group that kills
// the group once its stdin, a pipe only the test binary holds, reaches EOF.
// Pdeathsig alone is not enough: the kernel clears it when a program
// changes its user, as opentracker does, and it spares grandchildren.
func (p *Process) startWatchdog() error {
	r, w, err := os.Pipe() // close-on-exec: no other child inherits w
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	defer r.Close()
	wd := exec.Command("/bin/sh", "-c", "read _; kill -KILL 0")
	wd.Stdin = r
	wd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: p.cmd.Process.Pid}
	if err := wd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("watchdog: %w", err)
	}
	p.watchdog, p.watchdogW = wd, w
	return nil
}

// programEnv is the environment of a started program: ours without
// LD_PRELOAD and proxy settings, with HOME and the XDG directories moved
// into dir so that nothing reads or writes a real profile.
func programEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "LD_PRELOAD", "BTSLAVE_GUARD_LOG", "HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
			"XDG_CACHE_HOME", "XDG_STATE_HOME", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
			"FTP_PROXY", "NO_PROXY":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, ".config"),
		"XDG_DATA_HOME="+filepath.Join(dir, ".local", "share"),
		"XDG_CACHE_HOME="+filepath.Join(dir, ".cache"),
		"XDG_STATE_HOME="+filepath.Join(dir, ".local", "state"),
	)
}

// PID returns the process ID, which is also its process group ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Dir returns the program's private directory.
func (p *Process) Dir() string { return p.dir }

// GuardLog returns the path of the program's guard log.
func (p *Process) GuardLog() string { return p.guardLog }

// Logs returns the program's log files, its captured output first.
func (p *Process) Logs() []string { return append([]string(nil), p.logs...) }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr returns the error of the finished process (nil for exit status
// 0), or nil while it runs.
func (p *Process) ExitErr() error {
	select {
	case <-p.exited:
		return p.waitErr
	default:
		return nil
	}
}

func (p *Process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to the process group, waits up to a few seconds and
// then sends SIGKILL. It returns once the process has been reaped. It may
// be called more than once; the test's cleanup calls it too.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		pgid := p.cmd.Process.Pid
		if p.running() {
			p.mu.Lock()
			p.stopped = true
			p.mu.Unlock()
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(stopGrace):
			}
		}
		// Whatever is left of the group (children, the watchdog, or a
		// leader that ignored SIGTERM) is killed.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
		if p.watchdog != nil {
			p.watchdogW.Close()
			_ = p.watchdog.Wait() // killed with the group
		}
	})
}

// exitProblem reports an exit the lab did not ask for that was not clean.
func (p *Process) exitProblem() error {
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if stopped || p.waitErr == nil {
		return nil
	}
	return fmt.Errorf("exited on its own: %w", p.waitErr)
}

// checkGuard fails t if the guard log holds a refusal that is not allowed.
func (p *Process) checkGuard(t testing.TB) {
	t.Helper()
	refusals, err := GuardRefusals(p.guardLog)
	if err != nil {
		t.Errorf("lab: %s: %v", p.name, err)
		return
	}
	for _, r := range refusals {
		if !r.allowedBy(p.allow) {
			t.Errorf("lab: %s tried to reach a non-loopback address (refused by the guard): %s", p.name, r.Line)
		}
	}
}

// printTails logs the last lines of each of the program's logs.
func (p *Process) printTails(t testing.TB) {
	t.Helper()
	for _, path := range append(p.Logs(), p.guardLog) {
		tail, err := fileTail(path, tailLines)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Logf("lab: %s: %v", p.name, err)
			continue
		}
		t.Logf("lab: %s: last lines of %s:\n%s", p.name, path, tail)
	}
}

// fileTail returns the last n lines of the file at path.
func fileTail(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	const maxRead = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	off := max(st.Size()-maxRead, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	buf = bytes.TrimRight(buf, "\n")
	lines := bytes.Split(buf, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n"))), nil
}
