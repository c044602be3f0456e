//go:build unix

package models

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// sqliteDMSOffset is the byte of a WAL database's -shm file that every open
// connection holds a shared lock on while it has the database open (SQLite's
// "dead man switch", os_unix.c: UNIX_SHM_DMS).
const sqliteDMSOffset = 128

// DatabaseInUse reports whether some process (a grconnect server, the sqlite3
// shell…) has the SQLite database at path open: such a process holds a lock in
// the database's -shm file. It asks without taking a lock. Call it before this
// process opens the database: POSIX locks belong to the process, and closing any
// descriptor of the file would drop this process's own SQLite locks.
func DatabaseInUse(path string) (bool, error) {
	f, err := os.Open(path + "-shm")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // SQLite removes it when the last connection closes
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: sqliteDMSOffset, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return false, err
	}
	return lk.Type != syscall.F_UNLCK, nil
}
