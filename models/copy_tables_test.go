package models_test

import (
	"slices"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// TestCopyDBNamesEveryTable: every table of the schema is either copied by copy-db
// or named as left behind, so a table a new migration adds cannot be forgotten.
func TestCopyDBNamesEveryTable(t *testing.T) {
	modelstest.SkipOnPostgres(t, "reads SQLite's table list")
	store := modelstest.New(t)
	var tables []string
	if err := store.DB().Raw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	copied, left := models.CopyTablesForTest()
	for _, table := range tables {
		if !slices.Contains(copied, table) && !slices.Contains(left, table) {
			t.Errorf("table %s is neither copied by copy-db nor named as left behind", table)
		}
	}
}
