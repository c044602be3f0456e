package models_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

func countAudit(t *testing.T, store *models.Store, action models.AuditAction) int64 {
	t.Helper()
	var n int64
	if err := store.DB().Model(&models.AuditEntry{}).Where("action = ?", action).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuditEntryWrittenWithTheChange: an audited write records the entry its
// context carries in the same transaction — once, only when it changed
// something, and not at all when it failed.
func TestAuditEntryWrittenWithTheChange(t *testing.T) {
	store := modelstest.New(t)
	bg := context.Background()
	entry := models.AuditEntry{Actor: "ann@example.com", IP: "192.0.2.1", Action: models.AuditAPIKeyRevoked, TargetType: "api_key", TargetID: "key_1", Details: "revoked"}

	key := &models.APIKey{ID: "key_1", Name: "k", Prefix: "grc_aaaaaaaa", KeyHash: "h"}
	if err := store.CreateAPIKey(bg, key); err != nil { // no entry: nobody acts
		t.Fatal(err)
	}
	ctx := models.WithAudit(bg, entry)
	if err := store.RevokeAPIKey(ctx, "key_1", "ann"); err != nil {
		t.Fatal(err)
	}
	if n := countAudit(t, store, models.AuditAPIKeyRevoked); n != 1 {
		t.Fatalf("%d entries after a revocation, want 1", n)
	}
	// The same context again, or a revocation that changes nothing: no second entry.
	if err := store.RevokeAPIKey(ctx, "key_1", "ann"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("second revocation = %v", err)
	}
	if err := store.RevokeAPIKey(models.WithAudit(bg, entry), "key_1", "ann"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("third revocation = %v", err)
	}
	if n := countAudit(t, store, models.AuditAPIKeyRevoked); n != 1 {
		t.Fatalf("%d entries after revocations that changed nothing, want 1", n)
	}
	// A failed change (a duplicate) rolls its entry back with it.
	dup := &models.APIKey{ID: "key_2", Name: "k2", Prefix: "grc_aaaaaaaa", KeyHash: "h2"}
	created := entry
	created.Action = models.AuditAPIKeyCreated
	if err := store.CreateAPIKey(models.WithAudit(bg, created), dup); !errors.Is(err, models.ErrDuplicate) {
		t.Fatalf("duplicate prefix = %v", err)
	}
	if n := countAudit(t, store, models.AuditAPIKeyCreated); n != 0 {
		t.Fatalf("a failed creation left %d entries", n)
	}
	var got models.AuditEntry
	if err := store.DB().Where("action = ?", models.AuditAPIKeyRevoked).First(&got).Error; err != nil {
		t.Fatal(err)
	}
	if got.Actor != entry.Actor || got.IP != entry.IP || got.TargetID != "key_1" || got.CreatedAt.IsZero() || time.Since(got.CreatedAt) > time.Minute {
		t.Errorf("stored entry = %+v", got)
	}
}

// TestListAudit filters by actor, action (or its prefix), target and time, newest
// first, in keyset pages that end.
func TestListAudit(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	base := models.Now().Add(-10 * time.Hour)
	for i := range 25 {
		e := models.AuditEntry{CreatedAt: base.Add(time.Duration(i) * time.Minute), Actor: "ann@example.com", Action: models.AuditLinkCreated,
			TargetType: "link", TargetID: fmt.Sprintf("lnk_%02d", i), Details: "made"}
		if i%5 == 0 {
			e.Actor, e.Action, e.TargetType, e.TargetID = "api:billing", models.AuditAppUpdated, "app", "app_1"
		}
		if err := store.RecordAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var all []models.AuditEntry
	cursor := ""
	for range 10 {
		page, err := store.ListAudit(ctx, models.AuditFilter{Limit: 10, Before: cursor})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Entries...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(all) != 25 || all[0].TargetID != "lnk_24" || all[24].TargetID != "app_1" {
		t.Fatalf("paged through %d entries, first %+v", len(all), all[0])
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Fatalf("not newest first at %d", i)
		}
	}
	since, until := base.Add(10*time.Minute), base.Add(15*time.Minute)
	for _, tc := range []struct {
		name string
		f    models.AuditFilter
		want int
	}{
		{"actor", models.AuditFilter{Actor: "api:billing"}, 5},
		{"action", models.AuditFilter{Action: string(models.AuditLinkCreated)}, 20},
		{"prefix", models.AuditFilter{Action: "app."}, 5},
		{"target", models.AuditFilter{TargetID: "lnk_07"}, 1},
		{"target type", models.AuditFilter{TargetType: "app"}, 5},
		{"time", models.AuditFilter{Since: &since, Until: &until}, 5},
		{"unknown action", models.AuditFilter{Action: "nothing.at_all"}, 0},
	} {
		page, err := store.ListAudit(ctx, tc.f)
		if err != nil || len(page.Entries) != tc.want {
			t.Errorf("%s: %d entries, %v; want %d", tc.name, len(page.Entries), err, tc.want)
		}
	}
	if _, err := store.ListAudit(ctx, models.AuditFilter{Before: "not-a-cursor"}); !errors.Is(err, models.ErrBadCursor) {
		t.Errorf("bad cursor = %v", err)
	}
}

// TestDeleteAuditBefore removes exactly the entries older than the cutoff, in
// batches larger than one.
func TestDeleteAuditBefore(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	now := models.Now()
	rows := make([]models.AuditEntry, 0, 12000)
	for i := range 12000 {
		at := now.Add(-400 * 24 * time.Hour)
		if i >= 11000 {
			at = now.Add(-time.Duration(i-11000) * time.Minute)
		}
		rows = append(rows, models.AuditEntry{CreatedAt: at, Actor: "cli", Action: models.AuditRekeyed, Details: "x"})
	}
	if err := store.DB().CreateInBatches(rows, 500).Error; err != nil {
		t.Fatal(err)
	}
	n, err := store.DeleteAuditBefore(ctx, now.Add(-365*24*time.Hour))
	if err != nil || n != 11000 {
		t.Fatalf("deleted %d, %v; want 11000", n, err)
	}
	if left := countAudit(t, store, models.AuditRekeyed); left != 1000 {
		t.Fatalf("%d entries left, want 1000", left)
	}
}
