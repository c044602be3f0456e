package models

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// migration is one ordered, versioned schema change. Statements are written once
// for both engines; {{time}}, {{autoinc}} and {{bool}} are replaced per dialect.
type migration struct {
	version    int
	name       string
	statements []string
	// postgres runs after statements, on PostgreSQL only; sqlite on SQLite only.
	postgres []string
	sqlite   []string
}

// SchemaVersion is the schema version this build of grconnect expects.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// MigrationCount is how many migrations make the schema of this build.
func MigrationCount() int { return len(migrations) }

func (s *Store) dialect(stmt string) string {
	r := strings.NewReplacer(
		"{{time}}", map[bool]string{false: "DATETIME", true: "TIMESTAMPTZ"}[s.postgres],
		"{{autoinc}}", map[bool]string{false: "INTEGER PRIMARY KEY AUTOINCREMENT", true: "BIGSERIAL PRIMARY KEY"}[s.postgres],
		"{{bool}}", "BOOLEAN",
	)
	return r.Replace(stmt)
}

// Migrate applies the pending migrations in order, each in its own transaction, and
// refuses a database whose schema is newer than this build. A migration is pending
// when its own version is not recorded, not merely when it is above the highest
// recorded one: versions developed side by side may reach an install in any order. Several processes may
// call it at once: on PostgreSQL an advisory lock, on SQLite the immediate write
// transaction, lets one apply each migration while the others wait and then skip it.
func (s *Store) Migrate(ctx context.Context) (applied int, err error) {
	return s.migrate(ctx, migrations)
}

// MigrateSkipping applies every pending migration except version skip: an install
// that has yet to meet that migration. The scale benchmark seeds such an install
// and times grconnect migrate applying the newest migration to it.
func (s *Store) MigrateSkipping(ctx context.Context, skip int) (applied int, err error) {
	list := make([]migration, 0, len(migrations))
	for _, m := range migrations {
		if m.version != skip {
			list = append(list, m)
		}
	}
	return s.migrate(ctx, list)
}

// migrate applies the pending migrations of list (a prefix of migrations in the
// upgrade tests, which build an older schema first).
func (s *Store) migrate(ctx context.Context, list []migration) (applied int, err error) {
	// Straight to the write pool: every statement runs once, so GORM's cache of
	// prepared statements would only hold them (and their memory) for ever.
	pool, err := s.db.DB()
	if err != nil {
		return 0, storeError(err, "migrate")
	}
	db := s.db.Session(&gorm.Session{Context: ctx})
	db.Statement.ConnPool = pool
	// Concurrent CREATE TABLE IF NOT EXISTS can still collide on PostgreSQL (a
	// duplicate pg_type row), so the lock covers it too.
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := s.migrationLock(tx); err != nil {
			return err
		}
		return tx.Exec(s.dialect(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at {{time}} NOT NULL)`)).Error
	})
	if err != nil {
		return 0, storeError(err, "create the schema_migrations table")
	}
	for _, m := range list {
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := s.migrationLock(tx); err != nil {
				return err
			}
			current, err := currentVersion(tx)
			if err != nil {
				return err
			}
			if binary := list[len(list)-1].version; current > binary {
				return &SchemaTooNewError{Database: current, Binary: binary}
			}
			var done int64
			if err := tx.Raw("SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&done).Error; err != nil {
				return err
			}
			if done > 0 {
				return nil
			}
			stmts := m.statements
			if s.postgres {
				stmts = append(slices.Clip(stmts), m.postgres...)
			} else {
				stmts = append(slices.Clip(stmts), m.sqlite...)
			}
			for _, stmt := range stmts {
				if err := tx.Exec(s.dialect(stmt)).Error; err != nil {
					return err
				}
			}
			applied++
			return tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, Now()).Error
		})
		var tooNew *SchemaTooNewError
		if errors.As(err, &tooNew) {
			return applied, err // not a failed statement: this build is too old
		}
		if err != nil {
			return applied, storeError(err, "migrate to schema version %d (%s)", m.version, m.name)
		}
	}
	if applied > 0 && !s.postgres {
		// A fresh install's schema went through this connection's caches; let
		// SQLite give back what the DDL left there.
		_ = db.Exec("PRAGMA shrink_memory").Error
	}
	return applied, nil
}

// migrationLock serializes migrations across processes on PostgreSQL for the rest
// of tx (SQLite's immediate transactions already do).
func (s *Store) migrationLock(tx *gorm.DB) error {
	if !s.postgres {
		return nil
	}
	return tx.Exec("SELECT pg_advisory_xact_lock(7254613)").Error
}

// CurrentSchemaVersion returns the highest applied migration (0 on an empty database).
func (s *Store) CurrentSchemaVersion(ctx context.Context) (int, error) {
	v, err := currentVersion(s.db.WithContext(ctx))
	return v, storeError(err, "read the schema version")
}

func currentVersion(tx *gorm.DB) (int, error) {
	var v *int
	if err := tx.Raw("SELECT MAX(version) FROM schema_migrations").Scan(&v).Error; err != nil {
		return 0, err
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// CheckReady returns nil when the database answers and its schema is current.
func (s *Store) CheckReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		return err // "store: unable to ping the database: …"
	}
	var applied []int
	if err := s.db.WithContext(ctx).Raw("SELECT version FROM schema_migrations").Scan(&applied).Error; err != nil {
		return storeError(err, "read the schema versions")
	}
	have := map[int]bool{}
	for _, v := range applied {
		have[v] = true
	}
	for _, m := range migrations {
		if !have[m.version] {
			return fmt.Errorf("schema migration %d (%s) is not applied yet", m.version, m.name)
		}
	}
	if v := slices.Max(append(applied, 0)); v > SchemaVersion() {
		return &SchemaTooNewError{Database: v, Binary: SchemaVersion()}
	}
	// Reads are not enough: a full disk or a read-only file still answers them.
	if err := s.ProbeWrite(ctx); err != nil {
		return err
	}
	// A probe that fits (a reused WAL) while real writes fail is not ready either,
	// nor is a disk with no room left, however the last writes went.
	if err := s.checkFreeSpace(); err != nil {
		return err
	}
	if h := s.Health(); !h.OK() {
		return &opError{op: "write to the database (" + h.Problem.Describe() + ")", err: h.Err, storage: h.Problem}
	}
	return nil
}
