package models

import (
	"context"
	"time"
)

// MigrationsForTest exposes the migration count to the external tests.
func MigrationsForTest() int { return len(migrations) }

// MigrateBeforeForTest applies the migrations older than version only: an install
// of an earlier grconnect, for upgrade tests.
func (s *Store) MigrateBeforeForTest(ctx context.Context, version int) error {
	var list []migration
	for _, m := range migrations {
		if m.version < version {
			list = append(list, m)
		}
	}
	_, err := s.migrate(ctx, list)
	return err
}

// MigrateWithLaterForTest applies the migrations older than version, plus a
// stand-in migration numbered later (creating table later_table), and then every
// migration with that stand-in still last: a migration developed beside a later
// one and reaching the install after it.
func (s *Store) MigrateWithLaterForTest(ctx context.Context, version, later int) error {
	var list []migration
	for _, m := range migrations {
		if m.version < version {
			list = append(list, m)
		}
	}
	stand := migration{version: later, name: "later", statements: []string{`CREATE TABLE later_table (id TEXT PRIMARY KEY)`}}
	if _, err := s.migrate(ctx, append(list, stand)); err != nil {
		return err
	}
	_, err := s.migrate(ctx, append(append([]migration(nil), migrations...), stand))
	return err
}

// SetHealthClockForTest replaces the clock storage health reads.
func (s *Store) SetHealthClockForTest(now func() time.Time) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	s.health.now = now
}

// SetMinFreeSpaceForTest changes the room a SQLite database's file system must
// have left for the store to be ready.
func (s *Store) SetMinFreeSpaceForTest(n uint64) { s.minFree = n }

// CopyTablesForTest returns the tables copy-db moves and the ones it leaves behind.
func CopyTablesForTest() (copied, left []string) { return copyTables, uncopiedTables }

// SetSearchSparseForTest changes how many matches a search may have to be read
// from the search index (above it, the list is walked), and returns the old value.
func SetSearchSparseForTest(n int) int {
	old := searchSparse
	searchSparse = n
	return old
}
