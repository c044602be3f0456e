package models

// MigrationsForTest exposes the migration count to the external tests.
func MigrationsForTest() int { return len(migrations) }
