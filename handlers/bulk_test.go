package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

func TestBulkRefreshShowsProgress(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	var ids []string
	for i, acct := range []string{"B1", "B2", "B3"} {
		f.fake.AddAccount(getresponsetest.Account{AccountID: acct, Email: strings.ToLower(acct) + "@example.com"})
		c := f.connect("customer-"+acct, acct)
		ids = append(ids, c.ID)
		if i < 2 {
			f.store.DB().Model(&models.Connection{}).Where("id = ?", c.ID).Updates(map[string]any{"status": models.StatusRefreshFailing, "failure_count": 2, "last_error": "HTTP 503"})
		}
	}
	mustContain(t, f.op.get("/connections").body, `data-testid="bulk-failing"`)
	r := f.op.submit("/connections", "/connections/bulk-refresh", url.Values{"scope": {"failing"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/connections/bulk/job_") {
		t.Fatalf("start = %d → %q", r.status, r.location())
	}
	f.bulk.Wait()
	page := f.op.get(r.location())
	mustContain(t, page.body, `data-running="false"`, "Finished: 2 of 2 done", `data-testid="bulk-ok">2<`, `data-testid="bulk-failed">0<`)
	mustNotContain(t, page.body, `http-equiv="refresh"`)
	for _, id := range ids[:2] {
		if c, _ := f.store.ConnectionByID(t.Context(), id); c.Status != models.StatusActive {
			t.Errorf("%s still %s after the bulk refresh", id, c.Status)
		}
	}
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh); n != 2 {
		t.Fatalf("bulk refresh of 2 failing connections made %d refresh calls", n)
	}
	// A running job reloads itself; nothing to do says so; a bad scope is refused.
	job := &models.BulkJob{ID: "job_running", Scope: "expiring", Total: 10, Done: 3, Status: models.BulkRunning, CreatedAt: models.Now()}
	f.store.CreateBulkJob(t.Context(), job)
	mustContain(t, f.op.get("/connections/bulk/job_running").body, `http-equiv="refresh" content="2"`, "Working… 3 of 10 done", `<progress id="bulk-bar" max="10" value="3">`)
	r = f.op.submit("/connections", "/connections/bulk-refresh", url.Values{"scope": {"failing"}})
	if r.location() != "/connections" {
		t.Fatalf("nothing to do = %q", r.location())
	}
	mustContain(t, f.op.get("/connections").body, "Nothing to do")
	if r := f.op.submit("/connections", "/connections/bulk-refresh", url.Values{"scope": {"everything"}}); r.status != http.StatusBadRequest {
		t.Fatalf("bad scope = %d", r.status)
	}
	if r := f.op.get("/connections/bulk/job_nope"); r.status != http.StatusNotFound {
		t.Fatalf("unknown job = %d", r.status)
	}
}
