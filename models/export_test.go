package models

import "context"

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
