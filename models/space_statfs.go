//go:build linux || darwin || freebsd

package models

import (
	"os"
	"syscall"
)

// freeSpace returns the bytes this process may still write on the file system
// holding dir (root may also use the blocks reserved for it).
func freeSpace(dir string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	blocks := uint64(st.Bavail)
	if os.Geteuid() == 0 {
		blocks = uint64(st.Bfree)
	}
	return blocks * uint64(st.Bsize), true
}
