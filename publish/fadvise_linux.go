//go:build linux

package publish

import (
	"os"

	"golang.org/x/sys/unix"
)

// adviseSequential tells the kernel that f is read front to back, which
// doubles its readahead window.
func adviseSequential(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
}

// adviseWillNeed starts reading n bytes of f at off into the page cache
// without waiting for them.
func adviseWillNeed(f *os.File, off, n int64) {
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
}
