package models_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestBackupIsAConsistentSnapshot backs up while writers commit pairs of rows in
// single transactions: the copy holds whole transactions only (an even count),
// at least what was committed before it started, is a private single file with
// its backup info, and passes SQLite's integrity check.
func TestBackupIsAConsistentSnapshot(t *testing.T) {
	modelstest.SkipOnPostgres(t, "grconnect backup copies SQLite; PostgreSQL uses pg_dump")
	dir := t.TempDir()
	store := modelstest.NewAt(t, filepath.Join(dir, "grconnect.db"))
	ctx := context.Background()
	pair := func(i int) error {
		return store.DB().Transaction(func(tx *gorm.DB) error {
			for range 2 {
				if err := tx.Create(&models.AuditEntry{CreatedAt: models.Now(), Actor: "cli", Action: models.AuditRekeyed, Details: fmt.Sprint(i)}).Error; err != nil {
					return err
				}
			}
			return nil
		})
	}
	for i := range 500 {
		if err := pair(i); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() {
		for i := 500; !stop.Load(); i++ {
			if err := pair(i); err != nil {
				writeErr = err
				return
			}
		}
	})
	for n := int64(0); n < 1100; { // the writer is under way
		store.DB().Model(&models.AuditEntry{}).Count(&n)
	}
	path := filepath.Join(dir, "copy.db")
	b, err := store.BackupTo(ctx, path, models.BackupInfo{KeyID: "1a2b3c4d", PreviousKeyIDs: []string{"5e6f7a8b"}, Version: "v1.2.3"})
	stop.Store(true)
	wg.Wait()
	if err != nil || writeErr != nil {
		t.Fatalf("backup: %v; writer: %v", err, writeErr)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != b.Size {
		t.Fatalf("backup file %v (mode %v, %d bytes; reported %d)", err, st.Mode(), st.Size(), b.Size)
	}
	for _, extra := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + extra); err == nil {
			t.Errorf("the backup left %s beside it", filepath.Base(path+extra))
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".copy.db.partial-*")); len(left) > 0 {
		t.Errorf("partial files left: %v", left)
	}
	copyStore, err := models.OpenReadOnly(path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer copyStore.Close()
	var n int64
	copyStore.DB().Model(&models.AuditEntry{}).Count(&n)
	if n < 1100 || n%2 != 0 {
		t.Errorf("the backup holds %d rows: want at least the 1100 committed before it began, and whole transactions (an even number)", n)
	}
	problems, checked, err := copyStore.IntegrityProblems(ctx)
	if err != nil || !checked || len(problems) > 0 {
		t.Errorf("integrity of the copy: %v %v %v", problems, checked, err)
	}
	info, err := copyStore.ReadBackupInfo(ctx)
	if err != nil || info.KeyID != "1a2b3c4d" || len(info.PreviousKeyIDs) != 1 || info.PreviousKeyIDs[0] != "5e6f7a8b" ||
		info.SchemaVersion != models.SchemaVersion() || info.Version != "v1.2.3" || time.Since(info.TakenAt) > time.Minute {
		t.Errorf("backup info = %+v, %v", info, err)
	}
	// The live database has none; a second backup to the same name is refused.
	if _, err := store.ReadBackupInfo(ctx); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("the live database's backup info = %v", err)
	}
	if _, err := store.BackupTo(ctx, path, models.BackupInfo{KeyID: "x"}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("backup over an existing file = %v", err)
	}
}

// TestBackupOfAnOlderSchema: a database of an earlier grconnect is copied as it is,
// its copy gets backup info, and migrating the copy brings it to this schema.
func TestBackupOfAnOlderSchema(t *testing.T) {
	modelstest.SkipOnPostgres(t, "SQLite backups")
	dir := t.TempDir()
	store, err := models.Open(filepath.Join(dir, "old.db"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	if err := store.MigrateBeforeForTest(ctx, 12); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "old-copy.db")
	b, err := store.BackupTo(ctx, path, models.BackupInfo{KeyID: "1a2b3c4d"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Info.SchemaVersion >= 12 {
		t.Fatalf("schema version %d recorded for an older database", b.Info.SchemaVersion)
	}
	restored, err := models.Open(path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if _, err := restored.Migrate(ctx); err != nil {
		t.Fatalf("migrating the copy: %v", err)
	}
	if info, err := restored.ReadBackupInfo(ctx); err != nil || info.KeyID != "1a2b3c4d" {
		t.Errorf("backup info after migrating = %+v, %v", info, err)
	}
}

func TestBackupOnPostgres(t *testing.T) {
	if !modelstest.Postgres() {
		t.Skip("PostgreSQL only")
	}
	store := modelstest.New(t)
	if _, err := store.BackupTo(context.Background(), filepath.Join(t.TempDir(), "x.db"), models.BackupInfo{}); !errors.Is(err, models.ErrBackupPostgres) ||
		!strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("backup on PostgreSQL = %v", err)
	}
}

// TestOpenReadOnlyWritesNothing: reading a backup leaves its bytes as they were
// and makes no file beside it.
func TestOpenReadOnlyWritesNothing(t *testing.T) {
	modelstest.SkipOnPostgres(t, "SQLite files")
	dir := t.TempDir()
	store := modelstest.NewAt(t, filepath.Join(dir, "grconnect.db"))
	path := filepath.Join(dir, "copy.db")
	if _, err := store.BackupTo(context.Background(), path, models.BackupInfo{KeyID: "k"}); err != nil {
		t.Fatal(err)
	}
	sum := func() [32]byte {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(data)
	}
	before := sum()
	ro, err := models.OpenReadOnly(path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ro.SchemaStatus(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ro.IntegrityProblems(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ro.DB().Exec("DELETE FROM operators").Error; err == nil {
		t.Error("a read-only store accepted a write")
	}
	ro.Close()
	if sum() != before {
		t.Error("reading the backup changed it")
	}
	if extra, _ := filepath.Glob(path + "-*"); len(extra) > 0 {
		t.Errorf("reading the backup made %v", extra)
	}
	if _, err := models.OpenReadOnly(filepath.Join(dir, "missing.db"), quiet); err == nil {
		t.Error("a missing file opened")
	}
	if err := os.WriteFile(filepath.Join(dir, "text.db"), []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := models.OpenReadOnly(filepath.Join(dir, "text.db"), quiet); err == nil || !strings.Contains(err.Error(), "not a readable SQLite database") {
		t.Errorf("a text file = %v", err)
	}
}

// TestIntegrityProblemsFindsADamagedPage: bytes overwritten in the middle of a
// backup show in the integrity check.
func TestIntegrityProblemsFindsADamagedPage(t *testing.T) {
	modelstest.SkipOnPostgres(t, "SQLite pages")
	dir := t.TempDir()
	store := modelstest.NewAt(t, filepath.Join(dir, "grconnect.db"))
	rows := make([]models.AuditEntry, 0, 3000)
	for i := range 3000 {
		rows = append(rows, models.AuditEntry{CreatedAt: models.Now(), Actor: fmt.Sprintf("actor-%04d@example.com", i), Action: models.AuditSignedIn, Details: strings.Repeat("d", 40)})
	}
	if err := store.DB().CreateInBatches(rows, 500).Error; err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "copy.db")
	if _, err := store.BackupTo(context.Background(), path, models.BackupInfo{KeyID: "k"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	// Garbage over a page past the schema, keeping the page's first bytes.
	page := int64(4096)
	at := (st.Size()/page/2)*page + 100
	if _, err := f.WriteAt([]byte(strings.Repeat("\xff\x00", 900)), at); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ro, err := models.OpenReadOnly(path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	problems, checked, err := ro.IntegrityProblems(context.Background())
	if !checked || (len(problems) == 0 && err == nil) {
		t.Fatalf("a damaged page went unnoticed: %v %v %v", problems, checked, err)
	}
}

// TestDatabaseInUse: another process with the database open is seen; once it
// closes the database, it is not.
func TestDatabaseInUse(t *testing.T) {
	modelstest.SkipOnPostgres(t, "SQLite files")
	if path := os.Getenv("GRCONNECT_TEST_HOLD_DB"); path != "" {
		holdDatabase(path)
		return
	}
	path := modelstest.Path(t.TempDir())
	store := modelstest.NewAt(t, path)
	store.Close()
	if inUse, err := models.DatabaseInUse(path); err != nil || inUse {
		t.Fatalf("a closed database: in use %v, %v", inUse, err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDatabaseInUse$")
	cmd.Env = append(os.Environ(), "GRCONNECT_TEST_HOLD_DB="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "holding") {
		t.Fatalf("the other process: %q, %v", line, err)
	}
	if inUse, err := models.DatabaseInUse(path); err != nil || !inUse {
		t.Errorf("a database another process holds open: in use %v, %v", inUse, err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if inUse, err := models.DatabaseInUse(path); err != nil || inUse {
		t.Errorf("after the other process closed it: in use %v, %v", inUse, err)
	}
}

// holdDatabase is the other process of TestDatabaseInUse: it opens the database,
// says so, and keeps it open until its standard input closes.
func holdDatabase(path string) {
	store, err := models.Open(path, quiet)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	var n int64
	store.DB().Model(&models.Operator{}).Count(&n)
	fmt.Println("holding")
	io.Copy(io.Discard, os.Stdin)
	store.Close()
}
