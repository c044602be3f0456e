//go:build unix

package models_test

import (
	"path/filepath"
	"testing"

	"github.com/grconnect/grconnect/models"
)

// Only a server that finds no other serving the database is alone; while one
// serves, a second shares the database without ending anything; once every
// server is gone, the next is alone again.
func TestLockServingIsAloneOnlyWithoutOtherServers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grconnect.db")
	alone := 0
	count := func() error { alone++; return nil }
	first, err := models.LockServing(path, count)
	if err != nil || alone != 1 {
		t.Fatalf("first server: alone %d times, %v; want alone once", alone, err)
	}
	second, err := models.LockServing(path, count)
	if err != nil || alone != 1 {
		t.Fatalf("second server beside the first: alone %d times, %v; want not alone", alone, err)
	}
	first()
	third, err := models.LockServing(path, count)
	if err != nil || alone != 1 {
		t.Fatalf("third server while the second serves: alone %d times, %v; want not alone", alone, err)
	}
	second()
	third()
	last, err := models.LockServing(path, count)
	if err != nil || alone != 2 {
		t.Fatalf("a server after every other stopped: alone %d times, %v; want alone", alone, err)
	}
	last()
}
