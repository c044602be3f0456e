//go:build !(linux || darwin || freebsd)

package models

// freeSpace cannot read the free space on this system.
func freeSpace(string) (uint64, bool) { return 0, false }
