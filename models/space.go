package models

import (
	"fmt"
	"path/filepath"
)

// MinFreeSpace is the room a SQLite database's file system must have left for
// the store to call itself ready: below it, the next refresh wave's events and
// token pairs would not fit, even while small writes into the reused WAL still do.
const MinFreeSpace = 1 << 20

// checkFreeSpace returns a disk_full error when the file system holding the SQLite
// database has less than MinFreeSpace left (s.minFree), and notes it in Health (so the
// dashboard says so too). It returns nil on PostgreSQL, and where the free space
// cannot be read.
func (s *Store) checkFreeSpace() error {
	if s.path == "" {
		return nil
	}
	dir := filepath.Dir(s.path)
	free, ok := freeSpace(dir)
	if !ok || free >= s.minFree {
		return nil
	}
	err := &opError{op: "keep writing to the database", storage: ProblemDiskFull,
		err: fmt.Errorf("%d KiB left on the file system holding %s", free>>10, dir)}
	s.health.note(ProblemDiskFull, err)
	return err
}
