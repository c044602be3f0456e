package models_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// TestMigration9KeepsMaxConnections upgrades an install of the schema before
// version 9, with a MAX app (its one domain) and a standard app, each with a
// connection: the MAX connection takes the app's domain as its own (so it sends the
// same X-Domain as before), the standard one none, and identity becomes (app,
// domain, account).
func TestMigration9KeepsMaxConnections(t *testing.T) {
	ctx := context.Background()
	dsn := modelstest.Database(t, t.TempDir())
	store, err := models.Open(dsn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.MigrateBeforeForTest(ctx, 9); err != nil {
		t.Fatal(err)
	}
	db := store.DB()
	now := time.Now().UTC()
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO apps (id, name, client_id, client_secret_enc, edition, max_domain, auth_url, api_url, created_at, updated_at)
			VALUES ('app_max', 'MAX', 'c1', 'x', 'max_us', 'example.com', 'https://example.com/oauth2_authorize.html', 'https://api3.getresponse360.com/v3', ?, ?)`, []any{now, now}},
		{`INSERT INTO apps (id, name, client_id, client_secret_enc, edition, max_domain, auth_url, api_url, created_at, updated_at)
			VALUES ('app_std', 'Standard', 'c2', 'x', 'standard', '', 'https://app.getresponse.com/oauth2_authorize.html', 'https://api.getresponse.com/v3', ?, ?)`, []any{now, now}},
		{`INSERT INTO connections (id, app_id, customer_ref, account_id, status, connected_at, created_at, updated_at)
			VALUES ('con_max', 'app_max', 'a', 'acc1', 'active', ?, ?, ?)`, []any{now, now, now}},
		{`INSERT INTO connections (id, app_id, customer_ref, account_id, status, connected_at, created_at, updated_at)
			VALUES ('con_std', 'app_std', 'b', 'acc1', 'active', ?, ?, ?)`, []any{now, now, now}},
		{`INSERT INTO connect_links (id, token_hash, token_enc, app_id, customer_ref, expires_at, created_at)
			VALUES ('lnk_old', 'h', 'x', 'app_max', 'c', ?, ?)`, []any{now.Add(time.Hour), now}},
	} {
		if err := db.Exec(stmt.sql, stmt.args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := store.CurrentSchemaVersion(ctx); v != models.SchemaVersion() {
		t.Fatalf("schema version %d after the upgrade", v)
	}
	maxConn, err := store.ConnectionByID(ctx, "con_max")
	if err != nil || maxConn.MaxDomain != "example.com" || maxConn.ParentLogin != "" {
		t.Fatalf("MAX connection after the upgrade: %+v %v", maxConn, err)
	}
	if std, err := store.ConnectionByID(ctx, "con_std"); err != nil || std.MaxDomain != "" {
		t.Fatalf("standard connection after the upgrade: %+v %v", std, err)
	}
	link, err := store.ConnectLinkByID(ctx, "lnk_old")
	if err != nil || link.AllowTransfer || link.MaxDomain != "" || link.RevokedAt != nil || link.UsedAt != nil {
		t.Fatalf("link after the upgrade: %+v %v", link, err)
	}
	// The same account on another MAX domain of the same app is another connection…
	insert := `INSERT INTO connections (id, app_id, customer_ref, max_domain, account_id, status, connected_at, created_at, updated_at)
		VALUES (?, 'app_max', 'c', ?, 'acc1', 'active', ?, ?, ?)`
	if err := db.Exec(insert, "con_max2", "other.example.com", now, now, now).Error; err != nil {
		t.Fatalf("same account, other domain: %v", err)
	}
	// …and the same identity twice is refused.
	if err := db.Exec(insert, "con_max3", "example.com", now, now, now).Error; err == nil {
		t.Fatal("a second connection with the same app, domain and account was stored")
	}
}

// TestMigrationAppliedAfterALaterOne: an install that already has a later version
// (migrations developed side by side) still gets migration 9 when it arrives.
func TestMigrationAppliedAfterALaterOne(t *testing.T) {
	ctx := context.Background()
	dsn := modelstest.Database(t, t.TempDir())
	store, err := models.Open(dsn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.MigrateWithLaterForTest(ctx, 9, 99); err != nil {
		t.Fatal(err)
	}
	// In the order they were applied: 99 (the later one) before 9 and the rest.
	var versions []int
	if err := store.DB().Raw("SELECT version FROM schema_migrations ORDER BY applied_at, version").Scan(&versions).Error; err != nil {
		t.Fatal(err)
	}
	pos := map[int]int{}
	for i, v := range versions {
		pos[v] = i
	}
	if _, ok := pos[9]; !ok || pos[9] < pos[99] {
		t.Fatalf("applied versions %v, want 9 applied after 99", versions)
	}
	if err := store.DB().Exec("SELECT max_domain, parent_login FROM connections").Error; err != nil {
		t.Fatalf("migration 9 did not run: %v", err)
	}
}
