package models_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"

	"github.com/grconnect/grconnect/models"
)

var updateFresh = flag.Bool("update-fresh", false, "write fresh.db.gz from the migrations (go generate ./models)")

// freshFromMigrations builds a new database by running every migration, in the
// form the image keeps: its dates fixed, in rollback-journal mode, compacted.
func freshFromMigrations(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "migrated.db")
	store, err := models.Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawSQLite(t, path)
	epoch := time.Unix(0, 0).UTC()
	for _, stmt := range []string{"UPDATE schema_migrations SET applied_at = ?", "UPDATE store_probe SET probed_at = ?",
		"PRAGMA journal_mode = DELETE", "VACUUM"} {
		var args []any
		if strings.Contains(stmt, "?") {
			args = []any{epoch}
		}
		if _, err := db.Exec(stmt, args...); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func rawSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open(sqlite.DriverName, "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// schemaDump lists a database's schema objects and the rows of its tables (FTS5's
// own tables included: they hold the index's settings), leaving out the dates a
// new database gets when it is made.
func schemaDump(t *testing.T, path string) []string {
	t.Helper()
	db := rawSQLite(t, path)
	rows, err := db.Query("SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name")
	if err != nil {
		t.Fatal(err)
	}
	var out, tables []string
	for rows.Next() {
		var typ, name, tbl, text string
		if err := rows.Scan(&typ, &name, &tbl, &text); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join([]string{typ, name, tbl, text}, " | "))
		if typ == "table" && !strings.HasPrefix(text, "CREATE VIRTUAL TABLE") {
			tables = append(tables, name)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	dated := map[string]string{"schema_migrations": "applied_at", "store_probe": "probed_at"}
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var cells []string
			for i, c := range cols {
				if dated[table] == c {
					continue
				}
				cells = append(cells, fmt.Sprintf("%s=%v", c, vals[i]))
			}
			lines = append(lines, table+": "+strings.Join(cells, " "))
		}
		rows.Close()
		slices.Sort(lines)
		out = append(out, lines...)
	}
	return out
}

// TestFreshImageIsTheMigratedSchema: the database CreateSQLite lays down holds
// exactly what running every migration makes — schema objects, seeded rows, FTS5
// settings. With -update-fresh (go generate ./models) it writes the image instead.
func TestFreshImageIsTheMigratedSchema(t *testing.T) {
	migrated := freshFromMigrations(t)
	if *updateFresh {
		raw, err := os.ReadFile(migrated)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(raw)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("fresh.db.gz", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote fresh.db.gz: %d bytes (%d uncompressed)", buf.Len(), len(raw))
		return
	}
	path := filepath.Join(t.TempDir(), "grconnect.db")
	if created, err := models.CreateSQLite(path); err != nil || !created {
		t.Fatalf("CreateSQLite = %v, %v", created, err)
	}
	want, got := schemaDump(t, migrated), schemaDump(t, path)
	if !slices.Equal(want, got) {
		for _, l := range want {
			if !slices.Contains(got, l) {
				t.Errorf("the image lacks: %s", l)
			}
		}
		for _, l := range got {
			if !slices.Contains(want, l) {
				t.Errorf("the image has more: %s", l)
			}
		}
		t.Fatal("fresh.db.gz is not what the migrations make: run go generate ./models")
	}
}

// TestCreateSQLite: a new database is private, dated now, and needs no migration;
// an existing file is left alone; of several processes creating one at once,
// exactly one does.
func TestCreateSQLite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "grconnect.db")
	before := models.Now().Add(-time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 4 {
		wg.Go(func() {
			ok, err := models.CreateSQLite(path)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d creators said they made the database, want 1", created)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("database file: %v, %v", st, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	store, err := models.Open(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	if n, err := store.Migrate(ctx); err != nil || n != 0 {
		t.Fatalf("Migrate on a new database applied %d: %v (is fresh.db.gz current? go generate ./models)", n, err)
	}
	if err := store.CheckReady(ctx); err != nil {
		t.Fatalf("not ready: %v", err)
	}
	var oldest time.Time
	if err := store.DB().Raw("SELECT applied_at FROM schema_migrations ORDER BY applied_at LIMIT 1").Row().Scan(&oldest); err != nil || oldest.Before(before) {
		t.Fatalf("migrations dated %v (%v), want now", oldest, err)
	}
	// Written to: a second call leaves it alone.
	if err := store.DB().Exec("INSERT INTO operators (id, email, password_hash, created_at, updated_at) VALUES ('op_1', 'a@example.com', 'x', ?, ?)", models.Now(), models.Now()).Error; err != nil {
		t.Fatal(err)
	}
	if ok, err := models.CreateSQLite(path); ok || err != nil {
		t.Fatalf("CreateSQLite over an existing database = %v, %v", ok, err)
	}
	var n int64
	if err := store.DB().Raw("SELECT COUNT(*) FROM operators").Row().Scan(&n); err != nil || n != 1 {
		t.Fatalf("operators = %d, %v", n, err)
	}
	// A directory that is not there: an error, nothing made.
	if ok, err := models.CreateSQLite(filepath.Join(dir, "missing", "grconnect.db")); ok || err == nil {
		t.Fatalf("CreateSQLite in a missing directory = %v, %v", ok, err)
	}
}
