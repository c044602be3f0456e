package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

func TestOperators(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	first := &models.Operator{Email: " Ann@Example.com ", PasswordHash: "h1"}
	if err := store.CreateFirstOperator(ctx, first); err != nil {
		t.Fatal(err)
	}
	if first.Email != "ann@example.com" {
		t.Fatalf("email not normalized: %q", first.Email)
	}
	if err := store.CreateFirstOperator(ctx, &models.Operator{Email: "bob@example.com", PasswordHash: "h"}); !errors.Is(err, models.ErrDuplicate) {
		t.Fatalf("second first-operator = %v, want ErrDuplicate", err)
	}
	if err := store.CreateOperator(ctx, &models.Operator{Email: "ANN@example.com", PasswordHash: "h"}); !errors.Is(err, models.ErrDuplicate) {
		t.Fatalf("duplicate email = %v, want ErrDuplicate", err)
	}
	got, err := store.OperatorByEmail(ctx, "ann@EXAMPLE.com")
	if err != nil || got.ID != first.ID {
		t.Fatalf("OperatorByEmail = %+v, %v", got, err)
	}
	if _, err := store.OperatorByID(ctx, "op_missing"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("missing operator = %v, want ErrNotFound", err)
	}
	epoch, err := store.SetOperatorPassword(ctx, first.ID, "h2")
	if err != nil || epoch != 1 {
		t.Fatalf("SetOperatorPassword = %d, %v", epoch, err)
	}
	if err := store.DeleteOperator(ctx, first.ID); !errors.Is(err, models.ErrLastOperator) {
		t.Fatalf("deleting the last operator = %v, want ErrLastOperator", err)
	}
	second := &models.Operator{Email: "bob@example.com", PasswordHash: "h"}
	if err := store.CreateOperator(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteOperator(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := store.CountOperators(ctx); n != 1 {
		t.Fatalf("operators after delete = %d", n)
	}
}

func TestLoginThrottle(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	keys := []string{"ip:10.0.0.1", "email:a@example.com"}
	for range 4 {
		if err := store.RecordLoginFailure(ctx, "email:a@example.com", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if until, _ := store.LoginBlockedUntil(ctx, keys, 5, time.Minute); !until.IsZero() {
		t.Fatal("blocked after 4 failures with a limit of 5")
	}
	store.RecordLoginFailure(ctx, "email:a@example.com", time.Minute)
	until, err := store.LoginBlockedUntil(ctx, keys, 5, time.Minute)
	if err != nil || until.Before(time.Now()) {
		t.Fatalf("not blocked after 5 failures: %v %v", until, err)
	}
	if err := store.ClearLoginFailures(ctx, "email:a@example.com"); err != nil {
		t.Fatal(err)
	}
	if until, _ := store.LoginBlockedUntil(ctx, keys, 5, time.Minute); !until.IsZero() {
		t.Fatal("still blocked after clearing")
	}
	// A window that has passed starts again at one.
	for range 5 {
		store.RecordLoginFailure(ctx, "ip:10.0.0.1", time.Nanosecond)
	}
	if until, _ := store.LoginBlockedUntil(ctx, keys, 5, time.Nanosecond); !until.IsZero() {
		t.Fatal("failures in expired windows still block")
	}
}
