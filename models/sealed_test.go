package models_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// TestSealedTablesListEverySealedColumn: every column named *_enc is in
// models.SealedTables, so grconnect rekey re-seals it and the key checks see it. A
// new sealed column must be added there.
func TestSealedTablesListEverySealedColumn(t *testing.T) {
	store := modelstest.New(t)
	var columns []string
	q := `SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND p.name LIKE '%\_enc' ESCAPE '\'`
	if store.IsPostgres() {
		q = `SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name LIKE '%\_enc'`
	}
	if err := store.DB().Raw(q).Scan(&columns).Error; err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, tb := range models.SealedTables {
		for _, f := range tb.Fields {
			listed = append(listed, tb.Table+"."+f.Column)
		}
	}
	sort.Strings(columns)
	sort.Strings(listed)
	if strings.Join(columns, " ") != strings.Join(listed, " ") {
		t.Fatalf("sealed columns in the schema:\n  %v\nin models.SealedTables:\n  %v", columns, listed)
	}
	// And each table's rows page by key.
	for _, tb := range models.SealedTables {
		if _, err := store.SealedRows(context.Background(), tb, "", 10); err != nil {
			t.Errorf("%s: %v", tb.Table, err)
		}
	}
}
