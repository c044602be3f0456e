package models_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

func TestPasswordResets(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	op := &models.Operator{Email: "ann@example.com", PasswordHash: "old"}
	if err := store.CreateOperator(ctx, op); err != nil {
		t.Fatal(err)
	}
	now := models.Now()
	first := &models.PasswordReset{OperatorID: op.ID, TokenHash: "h1", ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	if err := store.CreatePasswordReset(ctx, first); err != nil {
		t.Fatal(err)
	}
	// A newer link retires the older one.
	second := &models.PasswordReset{OperatorID: op.ID, TokenHash: "h2", ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	if err := store.CreatePasswordReset(ctx, second); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PasswordResetByHash(ctx, "h1", now); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("the retired link = %v, want ErrNotFound", err)
	}
	if _, err := store.PasswordResetByHash(ctx, "h2", now.Add(2*time.Hour)); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("an expired link = %v, want ErrNotFound", err)
	}
	// Two uses at once: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = store.UsePasswordReset(ctx, "h2", "new", now) })
	}
	wg.Wait()
	var won int
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, models.ErrNotFound):
			t.Fatalf("a losing use = %v, want ErrNotFound", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d uses of one link succeeded, want 1", won)
	}
	got, _ := store.OperatorByID(ctx, op.ID)
	if got.PasswordHash != "new" || got.SessionEpoch != 1 {
		t.Fatalf("after the reset: hash %q epoch %d", got.PasswordHash, got.SessionEpoch)
	}

	if err := store.SetOperatorTimeZone(ctx, op.ID, "Europe/Warsaw"); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.OperatorByID(ctx, op.ID); got.TimeZone != "Europe/Warsaw" {
		t.Fatalf("time zone = %q", got.TimeZone)
	}
	if err := store.SetOperatorTimeZone(ctx, "op_missing", "UTC"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("time zone of a missing operator = %v", err)
	}
	// A browser's report arriving after the operator chose a zone changes nothing.
	if err := store.SetOperatorTimeZoneIfUnset(ctx, op.ID, "America/New_York"); err != nil {
		t.Fatal(err)
	}
	if got, _ := store.OperatorByID(ctx, op.ID); got.TimeZone != "Europe/Warsaw" {
		t.Fatalf("a late browser report replaced the chosen zone: %q", got.TimeZone)
	}
}

// TestRetirePasswordResets: retiring an operator's links (for a change of their
// access, such as a new role) ends the unused links for them and those they made,
// and no one else's.
func TestRetirePasswordResets(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	var ops []*models.Operator
	for _, email := range []string{"ann@example.com", "bob@example.com", "carol@example.com"} {
		op := &models.Operator{Email: email, PasswordHash: "x"}
		if err := store.CreateOperator(ctx, op); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	ann, bob, carol := ops[0], ops[1], ops[2]
	now := models.Now()
	for _, r := range []*models.PasswordReset{
		{OperatorID: ann.ID, TokenHash: "for-ann", CreatedByID: carol.ID},
		{OperatorID: bob.ID, TokenHash: "by-ann", CreatedByID: ann.ID},
		{OperatorID: carol.ID, TokenHash: "carol", CreatedByID: bob.ID},
	} {
		r.ExpiresAt, r.CreatedAt = now.Add(time.Hour), now
		if err := store.CreatePasswordReset(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	n, err := store.RetirePasswordResets(ctx, ann.ID)
	if err != nil || n != 2 {
		t.Fatalf("retired %d (%v), want 2", n, err)
	}
	for hash, alive := range map[string]bool{"for-ann": false, "by-ann": false, "carol": true} {
		_, err := store.PasswordResetByHash(ctx, hash, now)
		if (err == nil) != alive {
			t.Errorf("link %s: %v, want alive %v", hash, err, alive)
		}
	}
}
