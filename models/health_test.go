package models_test

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// TestHealthHoldsAfterAFailedWrite: after a write fails for lack of space, a small
// write that still fits (a reused WAL) does not make the database healthy at once;
// a success once the hold has passed does.
func TestHealthHoldsAfterAFailedWrite(t *testing.T) {
	store := modelstest.New(t)
	var mu sync.Mutex
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	store.SetHealthClockForTest(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	full := false
	if err := store.DB().Callback().Raw().Before("gorm:raw").Register("test:full", func(db *gorm.DB) {
		if full {
			db.AddError(errors.New("database or disk is full (13)"))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !store.Health().OK() {
		t.Fatal("a new store is unhealthy")
	}
	full = true
	if err := store.ProbeWrite(t.Context()); !errors.Is(err, models.ErrStorageUnavailable) {
		t.Fatalf("probe on a full disk = %v", err)
	}
	if h := store.Health(); h.Problem != models.ProblemDiskFull || h.Since.IsZero() {
		t.Fatalf("health after a failed write = %+v", h)
	}
	full = false
	advance(time.Second)
	if err := store.ProbeWrite(t.Context()); err != nil {
		t.Fatal(err)
	}
	if store.Health().OK() {
		t.Fatal("one success a second after a failure made the database healthy")
	}
	advance(models.DefaultHealthHold)
	if err := store.ProbeWrite(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h := store.Health(); !h.OK() {
		t.Fatalf("health after the hold = %+v", h)
	}
}

// TestNotReadyWithoutRoomLeft: a SQLite database whose file system has less room
// than the store needs is not ready, as a full disk, even while every write still
// succeeds (the probe fits in the reused WAL); the dashboard's health says so too.
func TestNotReadyWithoutRoomLeft(t *testing.T) {
	modelstest.SkipOnPostgres(t, "the free space checked is the SQLite file's")
	store := modelstest.New(t)
	if err := store.CheckReady(t.Context()); err != nil {
		t.Fatalf("CheckReady with room left: %v", err)
	}
	store.SetMinFreeSpaceForTest(math.MaxUint64) // more than any file system has
	err := store.CheckReady(t.Context())
	if models.StorageProblemOf(err) != models.ProblemDiskFull || !errors.Is(err, models.ErrStorageUnavailable) {
		t.Fatalf("CheckReady without room = %v; want a disk_full storage error", err)
	}
	if h := store.Health(); h.Problem != models.ProblemDiskFull {
		t.Fatalf("health without room = %+v", h)
	}
	if err := store.ProbeWrite(t.Context()); err != nil {
		t.Fatalf("the probe write itself still fits: %v", err)
	}
}

// TestStorageProblemsOfPostgreSQL: PostgreSQL's error codes name the problem the
// dashboard and the API's 503 storage_unavailable report; other errors are none.
func TestStorageProblemsOfPostgreSQL(t *testing.T) {
	for code, want := range map[string]models.StorageProblem{
		"53100": models.ProblemDiskFull, "25006": models.ProblemReadOnly, "08006": models.ProblemUnreachable,
		"57P01": models.ProblemUnreachable, "53300": models.ProblemUnreachable, "58030": models.ProblemIO, "23505": "",
	} {
		err := fmt.Errorf("store: unable to save: %w", &pgconn.PgError{Code: code})
		if got := models.StorageProblemOf(err); got != want {
			t.Errorf("code %s: problem %q, want %q", code, got, want)
		}
	}
}
