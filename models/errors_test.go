package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// A storage error names the operation that failed and still matches the store's
// sentinels with errors.Is.
func TestStoreErrorsNameTheOperation(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()

	app, err := store.AppByID(ctx, "app_missing")
	if !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("AppByID(unknown) = %v, want ErrNotFound", err)
	}
	if want := "store: unable to fetch app app_missing: not found"; err.Error() != want {
		t.Fatalf("AppByID(unknown) error = %q, want %q", err, want)
	}
	if app != nil {
		t.Fatalf("AppByID(unknown) returned %+v alongside its error", app)
	}

	// A sentinel returned inside a transaction is wrapped once, at the method's return.
	_, err = store.DeleteApp(ctx, "app_missing", "test", false)
	if !errors.Is(err, models.ErrNotFound) || !strings.HasPrefix(err.Error(), "store: unable to delete app app_missing: ") {
		t.Fatalf("DeleteApp(unknown) = %v, want ErrNotFound naming the deletion", err)
	}

	// Lookups by secret or personal values name the operation, not the value.
	const email = "nobody@example.com"
	_, err = store.OperatorByEmail(ctx, email)
	if !errors.Is(err, models.ErrNotFound) || !strings.HasPrefix(err.Error(), "store: unable to fetch operator by email") ||
		strings.Contains(err.Error(), email) {
		t.Fatalf("OperatorByEmail(unknown) = %v", err)
	}

	// A driver's error is wrapped too.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = store.ListAPIKeys(ctx)
	if err == nil || !strings.HasPrefix(err.Error(), "store: unable to list API keys: ") {
		t.Fatalf("ListAPIKeys on a closed store = %v, want an error naming the listing", err)
	}
}
