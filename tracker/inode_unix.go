//go:build unix

package tracker

import (
	"os"
	"syscall"
)

// inode is the file's inode number, so that a file replaced by rename is
// seen as changed even with the same size and time.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
