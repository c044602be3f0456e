package models_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
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
	if err := store.SetOperatorPassword(ctx, first.ID, "h2", ""); err != nil {
		t.Fatalf("SetOperatorPassword = %v", err)
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
	for i := range 4 {
		n, until, err := store.ReserveLoginAttempt(ctx, "email:a@example.com", time.Minute)
		if err != nil || n != i+1 || until.Before(time.Now()) || until.After(time.Now().Add(time.Minute+time.Second)) {
			t.Fatalf("attempt %d: n=%d until=%v err=%v", i+1, n, until, err)
		}
	}
	if err := store.RefundLoginAttempt(ctx, "email:a@example.com"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := store.ReserveLoginAttempt(ctx, "email:a@example.com", time.Minute); n != 4 {
		t.Fatalf("after a refund the next attempt is number %d, want 4", n)
	}
	if err := store.ClearLoginFailures(ctx, "email:a@example.com"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := store.ReserveLoginAttempt(ctx, "email:a@example.com", time.Minute); n != 1 {
		t.Fatalf("after clearing the next attempt is number %d, want 1", n)
	}
	// A window that has passed starts again at one.
	for range 5 {
		store.ReserveLoginAttempt(ctx, "ip:10.0.0.1", time.Nanosecond)
	}
	if n, _, _ := store.ReserveLoginAttempt(ctx, "ip:10.0.0.1", time.Nanosecond); n != 1 {
		t.Fatalf("attempts in expired windows still count: %d", n)
	}
	// Old rows are swept.
	n, err := store.DeleteOldLoginThrottles(ctx, time.Now().Add(time.Second))
	if err != nil || n != 2 {
		t.Fatalf("DeleteOldLoginThrottles = %d, %v; want 2", n, err)
	}
}

// TestLoginAttemptsReservedAtomically: parallel reservations each get their own
// number, so no more attempts than the limit are ever judged.
func TestLoginAttemptsReservedAtomically(t *testing.T) {
	store := modelstest.New(t)
	const parallel = 40
	var wg sync.WaitGroup
	seen := make([]int, parallel)
	for i := range parallel {
		wg.Go(func() {
			n, _, err := store.ReserveLoginAttempt(context.Background(), "email:race@example.com", time.Minute)
			if err != nil {
				t.Error(err)
			}
			seen[i] = n
		})
	}
	wg.Wait()
	slices.Sort(seen)
	for i, n := range seen {
		if n != i+1 {
			t.Fatalf("attempt numbers %v, want 1..%d each once", seen, parallel)
		}
	}
}

// TestFirstOperatorRace: of many concurrent first-operator creations exactly one
// wins (PostgreSQL's READ COMMITTED let several count zero operators).
func TestFirstOperatorRace(t *testing.T) {
	store := modelstest.New(t)
	const parallel = 12
	for round := range 10 {
		var wg sync.WaitGroup
		var created atomic.Int32
		start := make(chan struct{})
		for i := range parallel {
			wg.Go(func() {
				<-start
				err := store.CreateFirstOperator(context.Background(), &models.Operator{Email: fmt.Sprintf("op%d@example.com", i), PasswordHash: "h"})
				switch {
				case err == nil:
					created.Add(1)
				case !errors.Is(err, models.ErrDuplicate):
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n, _ := store.CountOperators(context.Background()); n != 1 || created.Load() != 1 {
			t.Fatalf("round %d: %d operators, %d creations reported; want exactly one first operator", round, n, created.Load())
		}
		if err := store.DB().Exec("DELETE FROM operators").Error; err != nil {
			t.Fatal(err)
		}
	}
}

// TestOperatorsRemovingEachOther: two operators removing each other at the same
// moment leave one of them, never none (which would reopen /setup).
func TestOperatorsRemovingEachOther(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	for round := range 15 {
		a := &models.Operator{Email: fmt.Sprintf("a%d@example.com", round), PasswordHash: "h"}
		b := &models.Operator{Email: fmt.Sprintf("b%d@example.com", round), PasswordHash: "h"}
		if err := store.CreateOperator(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := store.CreateOperator(ctx, b); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, id := range []string{a.ID, b.ID} {
			wg.Go(func() {
				<-start
				if err := store.DeleteOperator(ctx, id); err != nil && !errors.Is(err, models.ErrLastOperator) {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		n, err := store.CountOperators(ctx)
		if err != nil || n != 1 {
			t.Fatalf("round %d: %d operators left (%v), want 1", round, n, err)
		}
		// Start the next round from none: remove the survivor directly.
		if err := store.DB().Exec("DELETE FROM operators").Error; err != nil {
			t.Fatal(err)
		}
	}
}
