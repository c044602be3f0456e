//go:build unix

package models

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// LockServing marks a SQLite database at path as served by this process, for as
// long as the process lives or until release is called: every serving process holds
// a shared flock on "<path>.lock", which the kernel drops when the process dies,
// however it dies. A process that finds no other holder is alone: it holds the lock
// exclusively while whileAlone runs (so no other server can start meanwhile), then
// shares it. whileAlone is where leases left by a killed process are ended
// (Store.ExpireOrphanLeases): with no other server alive, every lease in the
// database is an orphan.
func LockServing(path string, whileAlone func() error) (release func(), err error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the serving lock: %w", err)
	}
	fd := int(f.Fd())
	release = func() { _ = f.Close() } // closing drops the flock
	switch err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
		if werr := whileAlone(); werr != nil {
			release()
			return nil, werr
		}
	case !errors.Is(err, syscall.EWOULDBLOCK):
		release()
		return nil, fmt.Errorf("take the serving lock: %w", err)
	}
	// Shared from here on. Another server holds the lock exclusively only while it
	// ends orphan leases at its start, a moment; wait for that, not longer.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			return release, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			release()
			return nil, fmt.Errorf("take the serving lock: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
