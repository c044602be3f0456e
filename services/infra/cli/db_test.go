package cli

import (
	"context"
	"encoding/base64"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

func TestMigrateCommand(t *testing.T) {
	dsn := modelstest.Database(t, t.TempDir()+"/data")
	env := map[string]string{"GRCONNECT_DATABASE": dsn}
	r := runCmd(t, env, "", "migrate")
	if r.err != nil {
		t.Fatalf("migrate: %v\nstderr: %s", r.err, r.stderr)
	}
	if want := "schema version " + itoa(models.SchemaVersion()) + "\n"; r.stdout != want {
		t.Fatalf("stdout = %q, want %q", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "database migrated") {
		t.Errorf("stderr = %q, want the migration logged", r.stderr)
	}
	store := openStore(t, dsn)
	if v, err := store.CurrentSchemaVersion(context.Background()); err != nil || v != models.SchemaVersion() {
		t.Fatalf("schema version %d, %v", v, err)
	}
	// Again: nothing to do, same answer, nothing logged.
	again := runCmd(t, env, "", "migrate")
	if again.err != nil || again.stdout != r.stdout || strings.Contains(again.stderr, "database migrated") {
		t.Fatalf("second migrate: %q %q %v", again.stdout, again.stderr, again.err)
	}
	if r := runCmd(t, env, "", "migrate", "extra"); r.err == nil {
		t.Error("migrate with an argument succeeded")
	}
	if r := runCmd(t, env, "", "help"); !strings.Contains(r.stdout, "grconnect migrate") || !strings.Contains(r.stdout, "grconnect copy-db --to") {
		t.Error("usage does not list migrate and copy-db")
	}
}

func TestCopyDBUsage(t *testing.T) {
	env, _ := dbEnv(t)
	for _, args := range [][]string{{"copy-db"}, {"copy-db", "--to", "/tmp/other.db"}, {"copy-db", "--to", "postgres://x@127.0.0.1/db", "extra"}} {
		if r := runCmd(t, env, "", args...); r.err == nil || !strings.Contains(r.err.Error(), "usage") {
			t.Errorf("%q = %v, want a usage error", args, r.err)
		}
	}
}

// TestCopyDBToPostgres fills every table of a SQLite install, copies it into an
// empty PostgreSQL database, and checks the copy row by row where it matters: sealed
// values byte for byte (and still readable with the same key), booleans, times,
// sequences that continue after the copied IDs; a second copy into the now non-empty
// database is refused.
func TestCopyDBToPostgres(t *testing.T) {
	if !modelstest.Postgres() {
		t.Skip("needs a PostgreSQL server: set " + modelstest.EnvDatabase)
	}
	ctx := context.Background()
	key := make([]byte, secrets.KeySize)
	for i := range key {
		key[i] = byte(i)
	}
	env, path := dbEnv(t)
	env["GRCONNECT_SECRET_KEY"] = base64.StdEncoding.EncodeToString(key)
	if r := runCmd(t, env, "a long password 123\n", "operator", "create", "--email", "ann@example.com", "--password-stdin"); r.err != nil {
		t.Fatalf("operator create: %v %s", r.err, r.stderr)
	}
	if r := runCmd(t, env, "", "apikey", "create", "--name", "backend"); r.err != nil {
		t.Fatalf("apikey create: %v %s", r.err, r.stderr)
	}
	r := runCmd(t, env, "the-client-secret\n", "app", "create", "--name", "Acme", "--client-id", "acme", "--client-secret-stdin")
	if r.err != nil {
		t.Fatalf("app create: %v %s", r.err, r.stderr)
	}
	appID := strings.TrimSpace(r.stdout)
	src := openStore(t, path)
	box, _ := secrets.New(key)
	db := src.DB()
	now := models.Now()
	if err := db.Exec("UPDATE apps SET demo = TRUE, webhook_url = 'https://hooks.example/x' WHERE id = ?", appID).Error; err != nil {
		t.Fatal(err)
	}
	var conns []*models.Connection
	for i := range 3 {
		id := models.NewID("con")
		exp := now.Add(time.Duration(i+1) * time.Hour)
		c := &models.Connection{ID: id, AppID: appID, AccountID: "acc" + itoa(i), AccountEmail: "a" + itoa(i) + "@example.com",
			Status: models.StatusActive, ExpiresAt: &exp, LastRefreshAt: &now, ConnectedAt: now}
		c.AccessTokenEnc, _ = box.Seal("access-"+itoa(i), secrets.AAD("connection", id, "access_token"))
		c.RefreshTokenEnc, _ = box.Seal("refresh-"+itoa(i), secrets.AAD("connection", id, "refresh_token"))
		if err := db.Create(c).Error; err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// Events, and through the app's webhook URL, outbox rows.
		if err := src.AddEvent(ctx, &models.Event{ConnectionID: &id, AppID: &appID, Type: "connection.created", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	link := &models.ConnectLink{ID: models.NewID("lnk"), TokenHash: "hash", TokenEnc: "sealed", AppID: appID, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	if err := src.CreateConnectLink(ctx, link); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateAuthState(ctx, &models.AuthState{ID: models.NewID("st"), StateHash: "s", BrowserHash: "b", AppID: appID, LinkID: &link.ID,
		ExpiresAt: now.Add(10 * time.Minute), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.ReserveLoginAttempt(ctx, "ip:127.0.0.1", time.Minute); err != nil {
		t.Fatal(err)
	}
	op, err := src.OperatorByEmail(ctx, "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := src.CreateSession(ctx, &models.OperatorSession{TokenHash: "h", OperatorID: op.ID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateBulkJob(ctx, &models.BulkJob{ID: models.NewID("bulk"), Scope: "all", Total: 3, Status: "running", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("INSERT INTO daily_refresh_stats (day, succeeded, failed) VALUES ('2026-01-02', 5, 1)").Error; err != nil {
		t.Fatal(err)
	}

	// Alerts already sent for these events: the copy must not send them again.
	if err := db.Exec("UPDATE alert_cursor SET last_event_id = (SELECT MAX(id) FROM events) WHERE id = 1").Error; err != nil {
		t.Fatal(err)
	}

	target := modelstest.NewPostgresDatabase(t, os.Getenv(modelstest.EnvDatabase))
	out := runCmd(t, env, "", "copy-db", "--to", target)
	if out.err != nil {
		t.Fatalf("copy-db: %v\nstderr: %s", out.err, out.stderr)
	}
	for _, table := range []string{"operators", "apps", "connections", "events", "connect_links", "auth_states", "api_keys",
		"webhook_deliveries", "daily_refresh_stats", "bulk_jobs", "login_throttles", "schema_migrations", "operator_sessions", "install_secrets"} {
		if !strings.Contains(out.stdout, table) {
			t.Errorf("the report does not list %s:\n%s", table, out.stdout)
		}
		var a, b int64
		src.DB().Raw("SELECT COUNT(*) FROM " + table).Scan(&a)
		pg := openStore(t, target)
		pg.DB().Raw("SELECT COUNT(*) FROM " + table).Scan(&b)
		if a == 0 || a != b {
			t.Errorf("%s: %d rows in SQLite, %d in PostgreSQL (want equal, not zero)", table, a, b)
		}
	}
	pg := openStore(t, target)
	if v, err := pg.CurrentSchemaVersion(ctx); err != nil || v != models.SchemaVersion() {
		t.Fatalf("target schema version %d, %v", v, err)
	}
	var cursorSrc, cursorDst int64
	src.DB().Raw("SELECT last_event_id FROM alert_cursor WHERE id = 1").Scan(&cursorSrc)
	pg.DB().Raw("SELECT last_event_id FROM alert_cursor WHERE id = 1").Scan(&cursorDst)
	if cursorSrc == 0 || cursorDst != cursorSrc {
		t.Errorf("alert cursor: %d in SQLite, %d in PostgreSQL; want the same, so sent alerts are not sent again", cursorSrc, cursorDst)
	}
	for i, c := range conns {
		got, err := pg.ConnectionByID(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessTokenEnc != c.AccessTokenEnc || got.RefreshTokenEnc != c.RefreshTokenEnc {
			t.Errorf("%s: sealed tokens changed in the copy", c.ID)
		}
		if plain, err := box.Open(got.AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token")); err != nil || plain != "access-"+itoa(i) {
			t.Errorf("%s: the copied token opens to %q, %v", c.ID, plain, err)
		}
		if !got.ExpiresAt.Equal(*c.ExpiresAt) || !got.ConnectedAt.Equal(c.ConnectedAt) {
			t.Errorf("%s: times changed: %v %v, want %v %v", c.ID, got.ExpiresAt, got.ConnectedAt, c.ExpiresAt, c.ConnectedAt)
		}
	}
	app, err := pg.AppByID(ctx, appID)
	if err != nil || !app.Demo || app.ClientSecretEnc == "" {
		t.Fatalf("copied app = %+v, %v", app, err)
	}
	// New rows continue after the copied IDs.
	var maxEvent, maxDelivery int64
	src.DB().Raw("SELECT MAX(id) FROM events").Scan(&maxEvent)
	src.DB().Raw("SELECT MAX(id) FROM webhook_deliveries").Scan(&maxDelivery)
	e := &models.Event{ConnectionID: &conns[0].ID, AppID: &appID, Type: "connection.created", CreatedAt: models.Now()}
	if err := pg.AddEvent(ctx, e); err != nil || e.ID <= maxEvent {
		t.Fatalf("new event id %d (%v), want > %d", e.ID, err, maxEvent)
	}
	var newDelivery int64
	pg.DB().Raw("SELECT MAX(id) FROM webhook_deliveries").Scan(&newDelivery)
	if newDelivery <= maxDelivery {
		t.Fatalf("new delivery id %d, want > %d", newDelivery, maxDelivery)
	}

	// The target is no longer empty: a second copy is refused and changes nothing.
	again := runCmd(t, env, "", "copy-db", "--to", target)
	if again.err == nil || !strings.Contains(again.err.Error(), "not empty") {
		t.Fatalf("second copy-db = %v, want a refusal", again.err)
	}
	var n int64
	pg.DB().Raw("SELECT COUNT(*) FROM connections").Scan(&n)
	if n != 3 {
		t.Fatalf("%d connections after the refused copy", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
