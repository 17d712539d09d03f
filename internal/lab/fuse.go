package lab

import (
	"os"
	"testing"
)

// RequireFUSE skips the test, or fails it when CI is set, when this
// machine cannot mount FUSE filesystems: no fusermount3 (Debian: fuse3)
// or no usable /dev/fuse (a container without it).
func RequireFUSE(t testing.TB) {
	t.Helper()
	Require(t, "fusermount3")
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		msg := "lab: this machine cannot mount FUSE filesystems: " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so this fails the test)")
		}
		t.Skip(msg)
	}
	f.Close()
}
