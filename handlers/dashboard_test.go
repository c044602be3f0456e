package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestConnectionPageSaysWhatToDo: each broken state has one banner with its cause
// and the action that fixes it, and the page offers no action that cannot work.
func TestConnectionPageSaysWhatToDo(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	page := f.op.get("/connections/" + conn.ID).body
	mustNotContain(t, page, `data-testid="status-banner"`)
	mustContain(t, page, `class="primary" data-testid="refresh-now"`, `data-testid="run-test"`, `data-testid="make-reconnect"`, `data-testid="disconnect"`, "badge-lg")

	// Transient failure: retried, with the next attempt; "Retry now" in the banner.
	f.fake.FailToken(getresponsetest.TokenServerError, 1)
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
	page = f.op.get("/connections/" + conn.ID).body
	mustContain(t, page, "banner-warn", "grconnect keeps trying", `data-testid="next-attempt"`, "Retry now", `data-testid="run-test"`)
	if strings.Count(page, `data-testid="refresh-now"`) != 1 {
		t.Error("a failing connection offers its refresh more than once")
	}
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil) // recovers

	// The refresh token is rejected: the customer must reconnect.
	f.fake.RevokeRefreshTokens()
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
	got, _ := f.store.ConnectionByID(t.Context(), conn.ID)
	page = f.op.get("/connections/" + conn.ID).body
	mustContain(t, page, "banner-bad", "The customer must approve access again", `data-testid="make-reconnect"`,
		`disabled aria-describedby="refresh-blocked"`, `data-testid="refresh-blocked"`, `disabled aria-describedby="test-blocked"`,
		"unusable: needs a reconnect", `data-testid="disconnect"`)
	mustNotContain(t, page, `id="reconnect"`) // the banner carries the reconnect link, not a card further down
	// Above the timeline, and outside the history strip's hover titles.
	main := page[strings.Index(page, "<main"):strings.Index(page, `data-testid="refresh-history"`)] + page[strings.Index(page, `id="test"`):strings.Index(page, `id="timeline"`)]
	if n := strings.Count(main, got.LastError); n != 1 {
		t.Errorf("the error %q shows %d times above the timeline, want once", got.LastError, n)
	}
	if strings.Contains(main, `data-relative="expiry"`) {
		t.Error("an unusable token shows an expiry")
	}
	// The reconnect link lands in the banner, ready to copy.
	r := f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/reconnect", nil)
	if !strings.HasSuffix(r.location(), "#status-banner") {
		t.Errorf("a reconnect link leads to %q, want the banner", r.location())
	}
	page = f.op.get("/connections/" + conn.ID).body
	banner := page[strings.Index(page, `data-testid="status-banner"`):strings.Index(page, `id="tok-title"`)]
	mustContain(t, banner, `id="reconnect-url"`, `data-copy="reconnect-url"`, `data-testid="open-reconnect"`, "Make a new link")
	// A test call cannot run either, and says why.
	r = f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/test", url.Values{"endpoint": {"/from-fields"}})
	mustContain(t, r.body, "the customer must reconnect first")

	// Disconnected: no test call, no refresh, no disconnect; a reconnect link brings it back.
	f.op.submit("/connections/"+conn.ID+"/disconnect", "/connections/"+conn.ID+"/disconnect", nil)
	page = f.op.get("/connections/" + conn.ID).body
	mustContain(t, page, "banner-off", "Disconnected", "The tokens were erased", "none: disconnected")
	mustNotContain(t, page, `data-testid="run-test"`, `data-testid="refresh-now"`, `data-testid="disconnect"`, `id="test"`)

	// A deleted app: the banner points to the apps, nothing can be refreshed.
	other := f.connect("customer-2", f.fake.AddAccount(getresponsetest.Account{AccountID: "Other2", Email: "other@example.com", FirstName: "Other"}))
	f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Update("deleted_at", models.Now())
	f.store.AppsWritten() // a raw write: the app cache must hear of it
	page = f.op.get("/connections/" + other.ID).body
	mustContain(t, page, "This connection&#39;s app was deleted", `href="/apps" data-testid="banner-action"`, `data-testid="refresh-blocked"`)
}

// TestEmptyListSaysWhatTheFilterHides: when the only connections are disconnected,
// the default list says so and offers to show them.
func TestEmptyListSaysWhatTheFilterHides(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	mustContain(t, f.op.get("/connections").body, "No connections yet")
	conn := f.connect("customer-1", "")
	f.op.submit("/connections/"+conn.ID+"/disconnect", "/connections/"+conn.ID+"/disconnect", nil)
	page := f.op.get("/connections").body
	mustContain(t, page, `data-testid="hidden-note"`, "1 connection is disconnected", `href="/connections?status=all" data-testid="show-hidden"`)
	mustNotContain(t, page, "No connections yet")
	mustContain(t, f.op.get("/connections?status=all").body, conn.AccountEmail)
}

// TestBulkOffersOnlyWhatHasWork: each bulk refresh says how many it would refresh;
// with none it is disabled and asks no confirmation; "expiring" follows the tokens'
// lifetime (hour-long tokens: a quarter hour, not every connection); a finished job
// says it is done.
func TestBulkOffersOnlyWhatHasWork(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	a := f.connect("customer-1", "")
	page := f.op.get("/connections").body
	mustContain(t, page, "Refresh failing (none)", "Expiring within 15 min (none)")
	mustNotContain(t, page, "data-confirm")
	if r := f.op.submit("/connections", "/connections/bulk-refresh", url.Values{"scope": {"expiring"}}); r.location() != "/connections" {
		t.Fatalf("expiring with fresh hour-long tokens = %q, want nothing to do", r.location())
	}
	// One token is nearly out: it alone is expiring.
	soon := time.Now().Add(5 * time.Minute)
	f.store.DB().Model(&models.Connection{}).Where("id = ?", a.ID).Update("expires_at", soon)
	f.fake.AddAccount(getresponsetest.Account{AccountID: "B2", Email: "b2@example.com"})
	f.connect("customer-2", "B2")
	page = f.op.get("/connections").body
	mustContain(t, page, "Expiring within 15 min (1)", `data-confirm="Refresh 1 connection now?"`)
	r := f.op.submit("/connections", "/connections/bulk-refresh", url.Values{"scope": {"expiring"}})
	if !strings.HasPrefix(r.location(), "/connections/bulk/") {
		t.Fatalf("start = %q", r.location())
	}
	f.bulk.Wait()
	job := f.op.get(r.location()).body
	mustContain(t, job, "Refreshed connections expiring soon", "Finished: 1 of 1 done")
	mustNotContain(t, job, "Refreshing")
}

// TestErrorPageNamesItOnce: the error page's title and heading agree, and the status
// is a small note.
func TestErrorPageNamesItOnce(t *testing.T) {
	app := newTestApp(t)
	b := app.setup(annEmail, annPass)
	r := b.get("/connections/con_nope")
	mustContain(t, r.body, "<title>Page not found · grconnect</title>", "Error 404", ">Page not found</h1>")
	mustNotContain(t, r.body, "Not Found")
}

// TestOpenAPIDownloadWithSession: the API keys page links the OpenAPI document as a
// download a signed-in browser can fetch.
func TestOpenAPIDownloadWithSession(t *testing.T) {
	app := newTestApp(t)
	b := app.setup(annEmail, annPass)
	mustContain(t, b.get("/api-keys").body, `href="/api-keys/openapi.json" download="grconnect-openapi.json"`)
	r := b.get("/api-keys/openapi.json")
	if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("download = %d, %q", r.status, r.header.Get("Content-Disposition"))
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil || doc["openapi"] == nil {
		t.Fatalf("not the OpenAPI document: %v", err)
	}
	if r := app.browser().get("/api-keys/openapi.json"); r.status != http.StatusSeeOther {
		t.Fatalf("signed out download = %d, want a redirect to sign in", r.status)
	}
}

// TestShowOnceNoticesMatch: the new API key and the webhook secret use one notice.
func TestShowOnceNoticesMatch(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	key := f.op.submit("/api-keys", "/api-keys", url.Values{"name": {"k"}}).body
	hook := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/webhook", url.Values{"webhook_url": {"https://hooks.example.com/x"}}).body
	for name, body := range map[string]string{"API key": key, "webhook secret": hook} {
		mustContain(t, body, `class="flash flash-warning show-once" role="note" data-testid="show-once"`)
		if strings.Contains(body, "flash-success") {
			t.Errorf("the %s page shows a success-coloured notice too", name)
		}
	}
	mustContain(t, key, `<textarea id="api-key-example" readonly`)
}
