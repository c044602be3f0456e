// Package modelstest gives tests a fresh, migrated database of their own: a SQLite
// file by default, or a new PostgreSQL database when GRCONNECT_TEST_DATABASE names
// a PostgreSQL server (an admin URL such as postgres://postgres@127.0.0.1:5432/postgres).
package modelstest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/models"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for CREATE/DROP DATABASE
)

// EnvDatabase is the variable that picks the test engine.
const EnvDatabase = "GRCONNECT_TEST_DATABASE"

// Path returns the SQLite file that New would use in dir.
func Path(dir string) string { return filepath.Join(dir, "grconnect.db") }

// Postgres reports whether tests run on PostgreSQL (GRCONNECT_TEST_DATABASE is set).
func Postgres() bool { return adminURL() != "" }

func adminURL() string {
	u := os.Getenv(EnvDatabase)
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		return u
	}
	return ""
}

// SkipOnPostgres skips a test that is about SQLite itself (its files, pragmas, pools).
func SkipOnPostgres(t testing.TB, why string) {
	t.Helper()
	if Postgres() {
		t.Skip("SQLite only: " + why)
	}
}

// Database returns a fresh, empty database for one test, as GRCONNECT_DATABASE
// would name it: a file path in dir on SQLite, or the URL of a new PostgreSQL
// database (grc_test_<random>) that is dropped when the test ends.
func Database(t testing.TB, dir string) string {
	t.Helper()
	admin := adminURL()
	if admin == "" {
		return Path(dir)
	}
	return NewPostgresDatabase(t, admin)
}

// NewPostgresDatabase creates an empty database on the server of admin and returns
// its URL; it is dropped (with any connections still open to it) when the test ends.
func NewPostgresDatabase(t testing.TB, admin string) string {
	t.Helper()
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", EnvDatabase, err)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := "grc_test_" + models.RandomToken(8)
	// A linguistic default collation, as production databases usually have (C
	// would hide every query that relies on SQLite's byte order).
	if _, err := db.ExecContext(context.Background(), "CREATE DATABASE "+name+
		" TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"); err != nil {
		t.Fatalf("create test database (en-US, ICU): %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			t.Error(err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// New opens a migrated database of its own (see Database), closed when the test ends.
// (On SQLite a temp file, not :memory:, since every pooled connection of :memory: is a
// different database.)
func New(t testing.TB) *models.Store {
	t.Helper()
	return NewAt(t, Database(t, t.TempDir()))
}

// NewAt opens and migrates the database at dsn (a SQLite path or a postgres:// URL).
func NewAt(t testing.TB, dsn string) *models.Store {
	t.Helper()
	store, err := models.Open(dsn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}

// Contents returns everything stored in the database at dsn as text, for tests that
// check what must never be stored in plaintext: on SQLite the raw files (main, WAL,
// shared memory) by name, on PostgreSQL every row of every table.
func Contents(t testing.TB, store *models.Store, dsn string) map[string]string {
	t.Helper()
	out := map[string]string{}
	if !store.IsPostgres() {
		files, _ := filepath.Glob(dsn + "*")
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = string(data)
		}
		return out
	}
	var tables []string
	if err := store.DB().Raw("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'").
		Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		var rows []string
		if err := store.DB().Raw(fmt.Sprintf("SELECT t::text FROM %q t", table)).Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		out[table] = strings.Join(rows, "\n")
	}
	return out
}
