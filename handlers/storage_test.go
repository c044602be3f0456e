package handlers_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// refuseWrites makes every write statement fail as SQLite does on a full disk while
// on is set.
func refuseWrites(t *testing.T, a *testApp) *atomic.Bool {
	t.Helper()
	var on atomic.Bool
	fail := func(db *gorm.DB) {
		if on.Load() {
			db.AddError(errors.New("database or disk is full (13)"))
		}
	}
	cb := a.store.DB().Callback()
	for _, err := range []error{
		cb.Create().Before("gorm:create").Register("test:full", fail),
		cb.Update().Before("gorm:update").Register("test:full", fail),
		cb.Delete().Before("gorm:delete").Register("test:full", fail),
		cb.Raw().Before("gorm:raw").Register("test:full", fail),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return &on
}

// TestStorageRefusingWrites: while the database refuses writes, /readyz says so
// without details, still-valid tokens are still handed out, a change answers 503
// storage_unavailable (not a bare 500), and the dashboard says what is wrong.
func TestStorageRefusingWrites(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	full := refuseWrites(t, f.testApp)
	f.store.SetHealthHold(0) // the "disk" is freed at once below
	// A session last seen minutes ago: showing a page would note its use, a write.
	if err := f.store.DB().Exec("UPDATE operator_sessions SET last_seen_at = ?", models.Now().Add(-2*time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	if r := f.call(http.MethodGet, "/readyz", nil); r.status != http.StatusOK {
		t.Fatalf("/readyz before = %d", r.status)
	}
	full.Store(true)

	r := f.call(http.MethodGet, "/readyz", nil)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "the disk holding the database is full") || r.header.Get("Retry-After") == "" {
		t.Fatalf("/readyz while writes fail = %d %s", r.status, r.body)
	}
	if strings.Contains(r.body, f.dbPath) || strings.Contains(r.body, "store:") {
		t.Fatalf("/readyz shows details: %s", r.body)
	}
	if r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", nil); r.status != http.StatusOK {
		t.Fatalf("a still-valid token while writes fail = %d %s", r.status, r.body)
	}
	e := wantError(t, f.call(http.MethodDelete, "/api/v1/connections/"+conn.ID, nil), http.StatusServiceUnavailable, "storage_unavailable")
	if e.Error.RetryAfter == 0 || !strings.Contains(e.Error.Message, "disk") {
		t.Fatalf("storage_unavailable = %+v", e.Error)
	}
	page := f.op.get("/")
	mustContain(t, page.body, `data-testid="storage-banner"`, "the disk holding the database is full", "automatic refreshes are paused")

	full.Store(false)
	if r := f.call(http.MethodGet, "/readyz", nil); r.status != http.StatusOK {
		t.Fatalf("/readyz after the disk freed = %d %s", r.status, r.body)
	}
	mustNotContain(t, f.op.get("/").body, `data-testid="storage-banner"`)
}
