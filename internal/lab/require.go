package lab

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Program names accepted by Require besides plain executables.
const (
	// PythonLibtorrent stands for /usr/bin/python3 with the libtorrent module.
	PythonLibtorrent = "python3-libtorrent"
)

// python is the interpreter that has the libtorrent module; another python
// may come first on PATH.
const python = "/usr/bin/python3"

// debianPackages maps a program to the Debian package that installs it.
var debianPackages = map[string]string{
	"opentracker":         "opentracker",
	"transmission-daemon": "transmission-daemon",
	"transmission-remote": "transmission-cli",
	"aria2c":              "aria2",
	"qbittorrent-nox":     "qbittorrent-nox",
	"mktorrent":           "mktorrent",
	"gcc":                 "gcc",
	"chromium":            "chromium",
	"fusermount3":         "fuse3",
	PythonLibtorrent:      "python3-libtorrent",
}

var found sync.Map // program -> error (nil when present)

// Require skips the test when one of programs is missing, or fails it when
// the environment variable CI is set, so that CI never passes by skipping.
// Programs are executable names looked up in PATH, or PythonLibtorrent.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	for _, prog := range programs {
		guard := ""
		if prog == PythonLibtorrent {
			guard = guardLib(t)
		}
		err := lookup(prog, guard)
		if err == nil {
			continue
		}
		hint := "install the Debian package that provides it"
		if pkg := debianPackages[prog]; pkg != "" {
			hint = "install it with: apt-get install " + pkg
		}
		msg := fmt.Sprintf("lab: %s is not available (%v); %s", prog, err, hint)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so a missing program fails the test)")
		} else {
			t.Skip(msg)
		}
	}
}

// lookup checks prog once per process. guard is the loopback guard, used
// for programs that must be run to be checked.
func lookup(prog, guard string) error {
	if v, ok := found.Load(prog); ok {
		err, _ := v.(error)
		return err
	}
	var err error
	if prog == PythonLibtorrent {
		cmd := exec.Command(python, "-c", "import libtorrent")
		cmd.Env = append(os.Environ(), "LD_PRELOAD="+guard)
		out, e := cmd.CombinedOutput()
		if e != nil {
			err = fmt.Errorf("%s -c 'import libtorrent': %w: %s", python, e, out)
		}
	} else {
		_, err = exec.LookPath(prog)
	}
	found.Store(prog, err)
	return err
}
