// Package modelstest gives tests a fresh, migrated database of their own.
package modelstest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/grconnect/grconnect/models"
)

// Path returns the SQLite file that New would use in dir.
func Path(dir string) string { return filepath.Join(dir, "grconnect.db") }

// New opens a migrated SQLite database in a temporary directory, closed when the test ends.
// (A temp file, not :memory:, since every pooled connection of :memory: is a different database.)
func New(t testing.TB) *models.Store {
	t.Helper()
	return NewAt(t, Path(t.TempDir()))
}

// NewAt opens and migrates the SQLite database at path.
func NewAt(t testing.TB, path string) *models.Store {
	t.Helper()
	store, err := models.Open(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}
