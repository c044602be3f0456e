package services_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
	"github.com/grconnect/grconnect/services/tokens/tokenstest"
)

// backupEngine is an engine with sealed data in every kind of place, on SQLite.
func backupEngine(t *testing.T) *tokenstest.Engine {
	t.Helper()
	modelstest.SkipOnPostgres(t, "grconnect backup copies SQLite; PostgreSQL uses pg_dump")
	e := tokenstest.New(t, getresponsetest.Options{})
	for range 5 {
		e.Seed(models.StatusActive, e.Clock.Now().Add(time.Hour), nil)
	}
	if err := services.CheckKey(context.Background(), e.Store, e.Box); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestVerifyReportsAWrongKeyAndADamagedRow: a sound database verifies clean; with
// another key every sealed value is reported under the key that sealed it; a
// value altered in one row is named as damaged, with its row.
func TestVerifyReportsAWrongKeyAndADamagedRow(t *testing.T) {
	e := backupEngine(t)
	ctx := context.Background()
	rep, err := services.Verify(ctx, e.Store, e.Box)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || !rep.IntegrityChecked || rep.KeyID != e.Box.KeyID() {
		t.Fatalf("a sound database: %+v", rep)
	}
	opened := 0
	for _, c := range rep.Sealed {
		opened += c.Opened
	}
	if opened != 5*2+1+1 { // 5 connections × 2 tokens, the client secret, the key check
		t.Errorf("%d values opened, want 12", opened)
	}
	if rows := rowsOf(rep.Rows, "connections"); rows != 5 {
		t.Errorf("connections counted %d, want 5", rows)
	}

	wrong, _ := secrets.New(bytes.Repeat([]byte{7}, secrets.KeySize))
	rep, err = services.Verify(ctx, e.Store, wrong)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "12 sealed values were sealed with a key that is not configured (12 with key ID "+e.Box.KeyID()+")") ||
		!strings.Contains(rep.Problems[0], "the configured key is "+wrong.KeyID()) {
		t.Errorf("with a wrong key: %q", rep.Problems)
	}

	var victim models.Connection
	e.Store.DB().Order("id").First(&victim)
	tampered := victim.AccessTokenEnc[:len(victim.AccessTokenEnc)-4] + "AAAA"
	if err := e.Store.DB().Exec("UPDATE connections SET access_token_enc = ? WHERE id = ?", tampered, victim.ID).Error; err != nil {
		t.Fatal(err)
	}
	rep, err = services.Verify(ctx, e.Store, e.Box)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "damaged: 1 connections access_token values do not open") ||
		!strings.HasSuffix(rep.Problems[0], victim.ID) {
		t.Errorf("with a damaged row: %q", rep.Problems)
	}
	if rep, _ := services.Verify(ctx, e.Store, nil); len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "no secret key is configured") {
		t.Errorf("without a key: %q", rep.Problems)
	}
}

func rowsOf(rows []models.TableRows, table string) int64 {
	for _, r := range rows {
		if r.Table == table {
			return r.Rows
		}
	}
	return -1
}

// TestRestoreReplacesTheDatabase: a backup restores over an existing database,
// which is kept beside it; the restored one is migrated, its key checked, its
// backup info cleared, the restore recorded in its audit log.
func TestRestoreReplacesTheDatabase(t *testing.T) {
	e := backupEngine(t)
	ctx := models.WithActor(context.Background(), models.Actor{Name: models.CLIActor})
	dir := t.TempDir()
	backup := filepath.Join(dir, "backup.db")
	b, _, err := services.Backup(ctx, e.Store, e.Box, backup)
	if err != nil {
		t.Fatal(err)
	}
	if b.Info.KeyID != e.Box.KeyID() {
		t.Fatalf("backup sealed with %q, want %q", b.Info.KeyID, e.Box.KeyID())
	}
	// The place to restore into holds another install (with a -wal file).
	target := filepath.Join(dir, "data", "grconnect.db")
	os.MkdirAll(filepath.Dir(target), 0o700)
	other := modelstest.NewAt(t, target)
	other.DB().Exec("INSERT INTO operators (id, email, password_hash, created_at, updated_at) VALUES ('op_old', 'old@example.com', 'h', ?, ?)", models.Now(), models.Now())
	other.Close()

	rep, err := services.Restore(ctx, backup, target, e.Box, tokenstest.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.MovedAside) != 1 || !strings.Contains(rep.MovedAside[0], ".before-restore-") || rowsOf(rep.Rows, "connections") != 5 {
		t.Fatalf("restore report %+v", rep)
	}
	restored := modelstest.NewAt(t, target)
	var n int64
	restored.DB().Model(&models.Connection{}).Count(&n)
	if n != 5 {
		t.Errorf("%d connections restored, want 5", n)
	}
	if _, err := restored.ReadBackupInfo(ctx); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("the restored database still says it is a backup: %v", err)
	}
	if err := services.CheckKey(ctx, restored, e.Box); err != nil {
		t.Errorf("the key does not open the restored database: %v", err)
	}
	var entry models.AuditEntry
	if err := restored.DB().Where("action = ?", models.AuditRestored).First(&entry).Error; err != nil || entry.Actor != "cli" || !strings.Contains(entry.Details, "backup.db") {
		t.Errorf("restore in the audit log: %+v, %v", entry, err)
	}
	kept := modelstest.NewAt(t, rep.MovedAside[0])
	kept.DB().Model(&models.Operator{}).Where("id = 'op_old'").Count(&n)
	if n != 1 {
		t.Error("the replaced database was not kept")
	}
	info, _ := os.Stat(target)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("restored database mode %v", info.Mode())
	}
}

// TestRestoreRefusesAWrongKey: a backup that the configured key cannot open is
// not restored, and the message names both keys; nothing is touched.
func TestRestoreRefusesAWrongKey(t *testing.T) {
	e := backupEngine(t)
	ctx := context.Background()
	dir := t.TempDir()
	backup := filepath.Join(dir, "backup.db")
	if _, _, err := services.Backup(ctx, e.Store, e.Box, backup); err != nil {
		t.Fatal(err)
	}
	wrong, _ := secrets.New(bytes.Repeat([]byte{9}, secrets.KeySize))
	target := filepath.Join(dir, "grconnect.db")
	_, err := services.Restore(ctx, backup, target, wrong, tokenstest.Discard())
	if err == nil || !strings.Contains(err.Error(), "it was taken with key ID "+e.Box.KeyID()) || !strings.Contains(err.Error(), "the configured key (key ID "+wrong.KeyID()) ||
		!strings.Contains(err.Error(), "GRCONNECT_SECRET_KEY") {
		t.Fatalf("restore with a wrong key = %v", err)
	}
	if _, err := os.Stat(target); err == nil {
		t.Error("a refused restore wrote the database")
	}
	if _, err := services.Restore(ctx, backup, backup, e.Box, tokenstest.Discard()); err == nil {
		t.Error("restoring a file over itself was accepted")
	}
}

// TestScheduledBackupsKeepTheNewest: each run writes a named backup; the oldest
// beyond Keep are deleted, other files never; Status shows the newest.
func TestScheduledBackupsKeepTheNewest(t *testing.T) {
	e := backupEngine(t)
	dir := t.TempDir()
	stranger := filepath.Join(dir, "my-notes.db")
	os.WriteFile(stranger, []byte("mine"), 0o600)
	b := services.NewBackups(e.Store, e.Box, dir, time.Hour, 3, tokenstest.Discard())
	clock := modelstest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	b.Now = clock.Now
	var names []string
	for range 5 {
		clock.Advance(time.Hour)
		f, err := b.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, f.Name)
	}
	files, err := b.Files()
	if err != nil || len(files) != 3 || files[0].Name != names[4] || files[2].Name != names[2] {
		t.Fatalf("files %+v, %v; want the newest 3 of %v", files, err, names)
	}
	if names[4] != "grconnect-20260102T080405Z.db" {
		t.Errorf("name %q", names[4])
	}
	if _, err := os.Stat(stranger); err != nil {
		t.Error("pruning deleted a file that is not a scheduled backup")
	}
	st := b.Status()
	if !st.Enabled || st.Latest == nil || st.Latest.Name != names[4] || st.Latest.Size == 0 || st.Latest.Took == 0 || len(st.Files) != 3 {
		t.Errorf("status %+v", st)
	}
	// A failure is shown until the next success.
	os.RemoveAll(dir)
	os.WriteFile(dir, []byte("a file where the directory was"), 0o600)
	clock.Advance(time.Hour)
	if _, err := b.RunOnce(context.Background()); err == nil {
		t.Fatal("a backup into a file succeeded")
	}
	if st := b.Status(); st.Failed == nil || st.Failed.Error == "" {
		t.Errorf("the failure is not shown: %+v", st)
	}
}

// TestHousekeepingSweepsOldAuditEntries: entries past the retention go; the
// others and a retention of 0 (for ever) keep theirs.
func TestHousekeepingSweepsOldAuditEntries(t *testing.T) {
	store := modelstest.New(t)
	now := models.Now()
	for _, age := range []time.Duration{400 * 24 * time.Hour, 366 * 24 * time.Hour, 364 * 24 * time.Hour, time.Hour} {
		store.RecordAudit(context.Background(), models.AuditEntry{CreatedAt: now.Add(-age), Actor: "cli", Action: models.AuditRekeyed, Details: "x"})
	}
	h := services.NewHousekeeping(store, tokenstest.Discard())
	h.Now = func() time.Time { return now }
	if s, err := h.RunOnce(context.Background()); err != nil || s.AuditEntries != 0 {
		t.Fatalf("retention 0 swept %d, %v", s.AuditEntries, err)
	}
	h.AuditRetention = 365 * 24 * time.Hour
	if s, err := h.RunOnce(context.Background()); err != nil || s.AuditEntries != 2 {
		t.Fatalf("swept %d, %v; want 2", s.AuditEntries, err)
	}
}
