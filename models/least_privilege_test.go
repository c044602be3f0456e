package models_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// TestMigration16KeepsKeysOperatorsAndNamesTheLog upgrades an install of the
// schema before version 16: its API key keeps every scope and every app, its
// operators stay admins, and the audit entries written before get the names
// their targets have.
func TestMigration16KeepsKeysOperatorsAndNamesTheLog(t *testing.T) {
	ctx := context.Background()
	dsn := modelstest.Database(t, t.TempDir())
	store, err := models.Open(dsn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.MigrateBeforeForTest(ctx, 16); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO operators (id, email, password_hash, created_at, updated_at) VALUES ('op_ann', 'ann@example.com', 'x', ?, ?)`, []any{now, now}},
		{`INSERT INTO apps (id, name, client_id, client_secret_enc, edition, auth_url, api_url, created_at, updated_at)
			VALUES ('app_1', 'Acme', 'c1', 'x', 'standard', 'https://a/', 'https://b/v3', ?, ?)`, []any{now, now}},
		{`INSERT INTO api_keys (id, name, prefix, key_hash, created_at) VALUES ('key_1', 'billing', 'grc_aaaaaaaa', 'h', ?)`, []any{now}},
		{`INSERT INTO audit_log (created_at, actor, action, target_type, target_id, details) VALUES (?, 'cli', 'app.created', 'app', 'app_1', 'd')`, []any{now}},
		{`INSERT INTO audit_log (created_at, actor, action, target_type, target_id, details) VALUES (?, 'cli', 'api_key.created', 'api_key', 'key_1', 'd')`, []any{now}},
		{`INSERT INTO audit_log (created_at, actor, action, target_type, target_id, details) VALUES (?, 'cli', 'operator.created', 'operator', 'op_ann', 'd')`, []any{now}},
		{`INSERT INTO audit_log (created_at, actor, action, target_type, target_id, details) VALUES (?, 'cli', 'operator.removed', 'operator', 'op_gone', 'd')`, []any{now}},
	} {
		if err := store.DB().Exec(stmt.sql, stmt.args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := store.APIKeyByPrefix(ctx, "grc_aaaaaaaa")
	if err != nil || !key.AllScopes() || key.AppID != "" || key.ExpiresAt != nil || !key.Allows(models.ScopeWebhooksWrite) {
		t.Fatalf("the old key after the upgrade: %+v %v", key, err)
	}
	ann, err := store.OperatorByID(ctx, "op_ann")
	if err != nil || ann.Role != models.RoleAdmin {
		t.Fatalf("the operator after the upgrade: %+v %v", ann, err)
	}
	var entries []models.AuditEntry
	store.DB().Order("id").Find(&entries)
	want := []string{"Acme", "billing", "ann@example.com", ""}
	for i, e := range entries {
		if e.TargetName != want[i] {
			t.Errorf("entry %s about %s is named %q, want %q", e.Action, e.TargetID, e.TargetName, want[i])
		}
	}
	// A role outside the two is refused by the database itself.
	if err := store.DB().Exec("UPDATE operators SET role = 'owner'").Error; err == nil {
		t.Fatal("the database took an unknown role")
	}
}

// TestAuditEntriesKeepTheirTargetsNames: an entry is named as its target was when
// it was written; renaming or deleting the target later changes nothing.
func TestAuditEntriesKeepTheirTargetsNames(t *testing.T) {
	ctx := context.Background()
	store := modelstest.New(t)
	op := &models.Operator{Email: "bob@example.com", PasswordHash: "x"}
	if err := store.CreateOperator(ctx, op); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateOperator(ctx, &models.Operator{Email: "ann@example.com", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordAudit(ctx, models.AuditEntry{Actor: "cli", Action: models.AuditAlertsChanged, TargetType: models.AuditTargetOperator, TargetID: op.ID}); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteOperator(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	page, err := store.ListAudit(ctx, models.AuditFilter{TargetID: op.ID})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].TargetName != "bob@example.com" {
		t.Fatalf("entries about the removed operator: %+v %v", page, err)
	}
}

// TestLastAdminSurvivesConcurrentDemotionsAndRemovals: several admins demote and
// remove one another at once; whatever interleaving the engine allows, one admin
// is left, and each change that happened is the only kind refused for the last.
func TestLastAdminSurvivesConcurrentDemotionsAndRemovals(t *testing.T) {
	ctx := context.Background()
	for round := range 5 {
		store := modelstest.New(t)
		var ids []string
		for i := range 4 {
			op := &models.Operator{Email: fmt.Sprintf("admin%d@example.com", i), PasswordHash: "x", Role: models.RoleAdmin}
			if err := store.CreateOperator(ctx, op); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, op.ID)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(ids))
		for i, id := range ids {
			wg.Go(func() {
				if (i+round)%2 == 0 {
					_, errs[i] = store.SetOperatorRole(ctx, id, models.RoleViewer)
				} else {
					errs[i] = store.DeleteOperator(ctx, id)
				}
			})
		}
		wg.Wait()
		admins, err := store.CountAdmins(ctx)
		if err != nil || admins != 1 {
			t.Fatalf("round %d: %d admins left (%v); errors %v", round, admins, err, errs)
		}
		refused := 0
		for _, err := range errs {
			switch {
			case errors.Is(err, models.ErrLastAdmin):
				refused++
			case err != nil:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if refused != 1 {
			t.Fatalf("round %d: %d refused, want 1: %v", round, refused, errs)
		}
	}
}
