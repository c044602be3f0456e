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

// actionBar is the connection page's header actions: the primary one and the menu.
func actionBar(t *testing.T, page string) (primary, menu string) {
	t.Helper()
	i := strings.Index(page, `data-testid="action-bar"`)
	if i < 0 {
		t.Fatal("the page has no action bar")
	}
	bar := page[i:]
	bar = bar[:strings.Index(bar, `</details>`)+len("</details>")]
	if j := strings.Index(bar, `data-testid="more-actions"`); j >= 0 {
		return bar[:j], bar[j:]
	}
	return bar, ""
}

// TestConnectionPageSaysWhatToDo: a connection's page puts the one action for its
// state in the header and the rest in a menu, says once what is wrong, and shows
// only the cards and facts that apply to its state.
func TestConnectionPageSaysWhatToDo(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	page := f.op.get("/connections/" + conn.ID).body
	mustNotContain(t, page, `data-testid="status-banner"`)
	primary, menu := actionBar(t, page)
	mustContain(t, primary, `form="test-form" class="primary" data-testid="run-test-top"`)
	mustContain(t, menu, `data-testid="refresh-now"`, `data-testid="make-reconnect"`, `data-testid="disconnect"`)
	mustContain(t, page, `id="test-form"`, `data-testid="run-test"`, "badge-lg", "stored, encrypted", `data-testid="fingerprint"`, `data-testid="api-card"`)
	mustNotContain(t, page, `data-testid="streak"`, "GetResponse headers")

	// Transient failure: retried, with the next attempt; Retry now is the action.
	f.fake.FailToken(getresponsetest.TokenServerError, 1)
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
	page = f.op.get("/connections/" + conn.ID).body
	mustContain(t, page, "banner-warn", "grconnect keeps trying", `data-testid="next-attempt"`, `data-testid="run-test"`)
	primary, _ = actionBar(t, page)
	mustContain(t, primary, "Retry now", `class="primary" data-testid="refresh-now"`)
	if strings.Count(page, `data-testid="refresh-now"`) != 1 {
		t.Error("a failing connection offers its refresh more than once")
	}
	// The history and the failures in a row say the same thing.
	mustContain(t, page, "One refresh so far", "it failed.", `data-testid="streak">the last refresh failed<`)
	f.fake.FailToken(getresponsetest.TokenServerError, 1)
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
	page = f.op.get("/connections/" + conn.ID).body
	mustContain(t, page, "2 refreshes so far", "0 succeeded, 2 failed", `data-testid="streak">all 2 refreshes failed<`)
	mustNotContain(t, page, "One refresh so far")
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil) // recovers
	mustNotContain(t, f.op.get("/connections/"+conn.ID).body, `data-testid="streak"`)

	// The refresh token is rejected: the customer must reconnect. Nothing that
	// needs a token is offered, and no fact says the token is stored.
	f.fake.RevokeRefreshTokens()
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
	got, _ := f.store.ConnectionByID(t.Context(), conn.ID)
	page = f.op.get("/connections/" + conn.ID).body
	mustContain(t, page, "banner-bad", "The customer must approve access again", "rejected by GetResponse", "unusable: needs a reconnect")
	primary, menu = actionBar(t, page)
	mustContain(t, primary, `class="primary" data-testid="make-reconnect"`)
	mustContain(t, menu, `data-testid="disconnect"`)
	mustNotContain(t, page, `data-testid="refresh-now"`, `data-testid="run-test"`, `id="test"`, "stored, encrypted",
		`data-testid="fingerprint"`, `data-testid="budget"`, `data-testid="api-card"`, `id="reconnect"`)
	// The cause shows once above the timeline (outside the history's hover titles).
	main := page[strings.Index(page, "<main"):strings.Index(page, `data-testid="refresh-history"`)]
	cause := strings.TrimSuffix(got.LastError, "; the customer must reconnect")
	if n := strings.Count(main, cause); n != 1 {
		t.Errorf("the error %q shows %d times above the history, want once", cause, n)
	}
	if strings.Contains(main, `data-relative="expiry"`) {
		t.Error("an unusable token shows an expiry")
	}
	// The reconnect link lands in the banner; copying it becomes the action.
	r := f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/reconnect", nil)
	if !strings.HasSuffix(r.location(), "#status-banner") {
		t.Errorf("a reconnect link leads to %q, want the banner", r.location())
	}
	page = f.op.get("/connections/" + conn.ID).body
	banner := page[strings.Index(page, `data-testid="status-banner"`):strings.Index(page, `id="tok-title"`)]
	mustContain(t, banner, `id="reconnect-url"`, `data-testid="open-reconnect"`)
	primary, menu = actionBar(t, page)
	mustContain(t, primary, `data-copy="reconnect-url"`, "Copy reconnect link")
	mustContain(t, menu, "Make a new reconnect link")
	// A test call cannot run either, and says why.
	r = f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/test", url.Values{"endpoint": {"/from-fields"}})
	mustContain(t, f.op.get(r.location()).body, "the customer must reconnect first")

	// Disconnected: no test call, no refresh, no disconnect, no API; a reconnect
	// link brings it back.
	f.op.submit("/connections/"+conn.ID+"/disconnect", "/connections/"+conn.ID+"/disconnect", nil)
	page = f.op.get("/connections/" + conn.ID).body
	mustContain(t, page, "banner-off", "Disconnected", "The tokens were erased", "none: disconnected", "erased at the disconnect")
	mustNotContain(t, page, `data-testid="run-test"`, `data-testid="refresh-now"`, `data-testid="disconnect"`, `id="test"`,
		`data-testid="api-card"`, `data-testid="budget"`, `data-testid="identity-card"`)

	// A deleted app: the action points to the apps, nothing can be refreshed.
	other := f.connect("customer-2", f.fake.AddAccount(getresponsetest.Account{AccountID: "Other2", Email: "other@example.com", FirstName: "Other"}))
	f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Update("deleted_at", models.Now())
	f.store.AppsWritten() // a raw write: the app cache must hear of it
	page = f.op.get("/connections/" + other.ID).body
	mustContain(t, page, "This connection&#39;s app was deleted", `href="/apps" data-testid="banner-action"`)
	mustNotContain(t, page, `data-testid="refresh-now"`, `data-testid="make-reconnect"`)
}

// TestEmptyListSaysWhatTheFilterHides: when the only connections are disconnected,
// the default list says so and offers to show them.
func TestEmptyListSaysWhatTheFilterHides(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
	app := newTestApp(t)
	b := app.setup(annEmail, annPass)
	r := b.get("/connections/con_nope")
	mustContain(t, r.body, "<title>Page not found · grconnect</title>", "Error 404", ">Page not found</h1>")
	mustNotContain(t, r.body, "Not Found")
}

// TestOpenAPIDownloadWithSession: the API keys page links the OpenAPI document as a
// download a signed-in browser can fetch.
func TestOpenAPIDownloadWithSession(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
