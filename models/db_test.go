package models_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

func TestPragmasOnEveryPooledConnection(t *testing.T) {
	modelstest.SkipOnPostgres(t, "pragmas and the write/read pool split are SQLite's")
	store := modelstest.New(t)
	ctx := context.Background()
	pools := store.Pools()
	if len(pools) != 2 {
		t.Fatalf("SQLite store has %d pools, want a write pool and a read pool", len(pools))
	}
	for p, sqlDB := range pools {
		// Hold every connection a pool allows at once, so each is a distinct one.
		n := sqlDB.Stats().MaxOpenConnections
		if (p == 0 && n != 1) || (p == 1 && n != 4) {
			t.Fatalf("pool %d allows %d connections", p, n)
		}
		var conns []interface{ Close() error }
		for i := 0; i < n; i++ {
			conn, err := sqlDB.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, conn)
			for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "synchronous": "1", "busy_timeout": "5000"} {
				var got string
				if err := conn.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("pool %d connection %d: PRAGMA %s = %q, want %q", p, i, pragma, got, want)
				}
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

func TestMigrateIsIdempotentAndVersioned(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	v, err := store.CurrentSchemaVersion(ctx)
	if err != nil || v != models.SchemaVersion() {
		t.Fatalf("version = %d, %v; want %d", v, err, models.SchemaVersion())
	}
	n, err := store.Migrate(ctx)
	if err != nil || n != 0 {
		t.Fatalf("second Migrate applied %d, %v", n, err)
	}
	if err := store.CheckReady(ctx); err != nil {
		t.Fatalf("CheckReady: %v", err)
	}
	// A database touched by a newer release is refused, and not ready.
	if err := store.DB().Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', ?)", models.SchemaVersion()+1, models.Now()).Error; err != nil {
		t.Fatal(err)
	}
	var tooNew *models.SchemaTooNewError
	if _, err := store.Migrate(ctx); !errors.As(err, &tooNew) {
		t.Fatalf("Migrate on a newer schema = %v, want SchemaTooNewError", err)
	}
	if err := store.CheckReady(ctx); err == nil {
		t.Fatal("CheckReady accepted a schema it does not know")
	}
}

// TestConcurrentMigrateAppliesOnce starts several "replicas" on one empty database
// at once: each migration is applied exactly once (an advisory lock on PostgreSQL,
// the immediate write transaction on SQLite) and none fails.
func TestConcurrentMigrateAppliesOnce(t *testing.T) {
	path := modelstest.Database(t, t.TempDir())
	const n = 6
	var wg sync.WaitGroup
	applied := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		store := openRaw(t, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied[i], errs[i] = store.Migrate(context.Background())
		}()
	}
	wg.Wait()
	total := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Migrate %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	if total != models.MigrationsForTest() {
		t.Fatalf("migrations applied %d times in all, want %d", total, models.MigrationsForTest())
	}
	var rows int64
	if err := openRaw(t, path).DB().Raw("SELECT COUNT(*) FROM schema_migrations").Scan(&rows).Error; err != nil || rows != int64(models.MigrationsForTest()) {
		t.Fatalf("schema_migrations holds %d rows (%v), want %d", rows, err, models.MigrationsForTest())
	}
}

func openRaw(t *testing.T, path string) *models.Store {
	t.Helper()
	store, err := models.Open(path, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
