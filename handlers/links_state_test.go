package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

var linkIDRe = regexp.MustCompile(`/apps/app_[a-z0-9]+/links/(lnk_[a-z0-9]+)`)

// linkIDOf makes a link for customerRef and returns its ID and URL.
func (f *connectFixture) linkIDOf(customerRef string) (id, link string) {
	f.t.Helper()
	r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/links", url.Values{"customer_ref": {customerRef}, "return_url": {"https://app.example.com/back"}})
	m := linkIDRe.FindStringSubmatch(r.location())
	if m == nil {
		f.t.Fatalf("create link → %q", r.location())
	}
	return m[1], linkURLRe.FindStringSubmatch(f.op.get(r.location()).body)[1]
}

// TestRecentLinksShowTheirRealState: the app's recent links say what became of
// each — used (by which account), revoked, expired, declined by the customer (and
// still valid), valid — never "expires in 7 d" for a dead one.
func TestRecentLinksShowTheirRealState(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("used-customer", "")
	revoked, _ := f.linkIDOf("revoked-customer")
	f.op.submit("/apps/"+f.appID+"/links/"+revoked, "/apps/"+f.appID+"/links/"+revoked+"/revoke", nil)
	expired, _ := f.linkIDOf("expired-customer")
	f.store.DB().Model(&models.ConnectLink{}).Where("id = ?", expired).Update("expires_at", time.Now().Add(-time.Hour))
	denied, deniedLink := f.linkIDOf("denied-customer")
	customer := f.browser()
	redirect, _ := f.fake.Deny(f.clientID, f.startFlow(customer, deniedLink))
	f.callback(customer, redirect)
	f.linkIDOf("valid-customer")

	page := f.op.get("/apps/" + f.appID).body
	table := page[strings.Index(page, `data-testid="links-table"`):]
	row := func(ref string) string {
		i := strings.Index(table, ref)
		if i < 0 {
			t.Fatalf("%s is not listed", ref)
		}
		return table[i : i+strings.Index(table[i:], "</tr>")]
	}
	mustContain(t, row("used-customer"), `link-used" data-testid="link-state">used<`, "used ", "by "+conn.AccountEmail)
	mustContain(t, row("revoked-customer"), `link-revoked" data-testid="link-state">revoked<`, "revoked ")
	mustContain(t, row("expired-customer"), `link-expired" data-testid="link-state">expired<`, "expired ")
	mustContain(t, row("denied-customer"), `link-denied" data-testid="link-state">declined<`, "declined ", "still valid; expires in 7 d")
	mustContain(t, row("valid-customer"), `link-valid" data-testid="link-state">valid<`, "expires ")
	for _, dead := range []string{"used-customer", "revoked-customer", "expired-customer"} {
		mustNotContain(t, row(dead), "in 7 d")
	}
	// The declined link's own page says so and still gives the link.
	mustContain(t, f.op.get("/apps/"+f.appID+"/links/"+denied).body, `data-testid="link-denied"`, "declined access", `id="link-url"`)
	// Using it after all makes it used.
	redirect, _ = f.fake.Approve(f.clientID, f.startFlow(customer, deniedLink), f.fake.AddAccount(getresponsetest.Account{AccountID: "D1", Email: "d1@example.com"}))
	f.callback(customer, redirect)
	mustContain(t, f.op.get("/apps/"+f.appID+"/links/"+denied).body, `data-testid="link-used"`)
}

// TestDeadLinksOfferANewOne: every dead link's page — the operator's (used,
// revoked, expired) and the customer's (expired, withdrawn, used) — leads to a new
// link for the same customer: a button that makes one for a signed-in operator,
// the app's support contact for a customer.
func TestDeadLinksOfferANewOne(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	f.op.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", url.Values{"name": {"Acme Templates"}, "client_id": {"acme-client"},
		"edition": {"standard"}, "auth_url": {f.fake.AuthURL()}, "api_url": {f.fake.APIURL()}, "return_origins": {"https://app.example.com"},
		"support_contact": {"help@acme.example"}})
	conn := f.connect("used-customer", "")
	revoked, revokedLink := f.linkIDOf("revoked-customer")
	f.op.submit("/apps/"+f.appID+"/links/"+revoked, "/apps/"+f.appID+"/links/"+revoked+"/revoke", nil)
	expired, expiredLink := f.linkIDOf("expired-customer")
	f.store.DB().Model(&models.ConnectLink{}).Where("id = ?", expired).Update("expires_at", time.Now().Add(-time.Hour))
	var used models.ConnectLink
	f.store.DB().Where("used_connection_id = ?", conn.ID).First(&used)

	for _, l := range []struct{ id, ref, state, back string }{{used.ID, "used-customer", "link-used", ""},
		{revoked, "revoked-customer", "link-revoked", "https://app.example.com/back"}, {expired, "expired-customer", "link-expired", "https://app.example.com/back"}} {
		page := f.op.get("/apps/" + f.appID + "/links/" + l.id).body
		mustContain(t, page, `data-testid="`+l.state+`"`, `action="/apps/`+f.appID+`/links/`+l.id+`/renew"`, ">Make a new link for "+l.ref+"<")
		r := f.op.submit("/apps/"+f.appID+"/links/"+l.id, "/apps/"+f.appID+"/links/"+l.id+"/renew", nil)
		m := linkIDRe.FindStringSubmatch(r.location())
		if r.status != http.StatusSeeOther || m == nil || m[1] == l.id {
			t.Fatalf("renew %s = %d → %q", l.id, r.status, r.location())
		}
		fresh := f.op.get(r.location()).body
		mustContain(t, fresh, "New connect link for "+l.ref, `id="link-url"`)
		var renewed models.ConnectLink
		f.store.DB().Where("id = ?", m[1]).First(&renewed)
		if renewed.CustomerRef != l.ref || renewed.ReturnURL != l.back || renewed.UsedAt != nil || renewed.RevokedAt != nil || !renewed.ExpiresAt.After(time.Now().Add(6*24*time.Hour)) {
			t.Errorf("renewed link of %s: %+v", l.ref, renewed)
		}
	}

	// The customer's page of a dead link: ask the operator, through the app's
	// support contact; no button to make a link.
	customer := f.browser()
	for _, link := range []string{expiredLink, revokedLink} {
		page := customer.get(strings.TrimPrefix(link, f.srv.URL))
		if page.status != http.StatusGone {
			t.Fatalf("a dead link = %d", page.status)
		}
		mustContain(t, page.body, "Acme Templates for a new", `data-testid="problem-support"`, "mailto:help@acme.example")
		mustNotContain(t, page.body, `data-testid="operator-renew"`, "/renew")
	}
	// The same page, opened by the signed-in operator, makes one.
	page := f.op.get(strings.TrimPrefix(expiredLink, f.srv.URL))
	mustContain(t, page.body, `data-testid="operator-renew"`, `action="/apps/`+f.appID+`/links/`+expired+`/renew"`, "Make a new link for expired-customer")
	csrf := csrfRe.FindStringSubmatch(page.body)
	r := f.op.post("/apps/"+f.appID+"/links/"+expired+"/renew", url.Values{"_csrf": {csrf[1]}})
	if r.status != http.StatusSeeOther || !linkIDRe.MatchString(r.location()) {
		t.Fatalf("renew from the customer's page = %d → %q", r.status, r.location())
	}
	// Only an operator may: without a session the route sends to the login.
	if r := customer.post("/apps/"+f.appID+"/links/"+expired+"/renew", nil); r.status != http.StatusForbidden && r.status != http.StatusSeeOther {
		t.Fatalf("renew without a session = %d", r.status)
	} else if r.status == http.StatusSeeOther && !strings.HasPrefix(r.location(), "/login") {
		t.Fatalf("renew without a session → %q", r.location())
	}
}

// TestLinksRefusedForARefusedApp: while GetResponse rejects an app's credentials
// or settings, no link is made for it — the dashboard shows the form disabled
// with the reason and the fix, the API answers 409 with the app's error code — and
// once the app works again links are made.
func TestLinksRefusedForARefusedApp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		health models.AppHealth
		code   string
		fix    string
	}{
		{models.AppCredentialsRejected, "app_credentials_rejected", "Update client secret"},
		{models.AppMisconfigured, "app_misconfigured", "Fix app settings"},
	} {
		t.Run(string(tc.health), func(t *testing.T) {
			f := newAPIFixture(t, getresponsetest.Options{})
			f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Updates(map[string]any{"health": tc.health, "health_reason": "invalid_client"})
			f.store.AppsWritten()
			page := f.op.get("/apps/" + f.appID).body
			// The form says why, once; the fix is the app's alert above it.
			mustContain(t, page, `data-testid="links-unavailable"`, `<fieldset class="plain" disabled>`, `data-testid="app-fix">`+tc.fix)
			if n := strings.Count(page, "invalid_client"); n != 1 {
				t.Errorf("the app's page says invalid_client %d times, want once", n)
			}
			r := f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": f.appID, "customer_ref": "c-1"})
			var body struct {
				Error struct {
					Code, Message string
					App           struct{ ID, Health string }
				}
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != http.StatusConflict || body.Error.Code != tc.code ||
				body.Error.App.ID != f.appID || body.Error.App.Health != string(tc.health) || !strings.Contains(body.Error.Message, "No connect session was made") {
				t.Fatalf("API = %d %s", r.status, r.body)
			}
			var n int64
			f.store.DB().Model(&models.ConnectLink{}).Count(&n)
			if n != 0 {
				t.Fatalf("%d links were made", n)
			}
			// GetResponse refusing for now is no reason: those links work later.
			f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Update("health", models.AppRefused)
			f.store.AppsWritten()
			if r := f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": f.appID, "customer_ref": "c-1"}); r.status != http.StatusCreated {
				t.Fatalf("a link for an app refused for now = %d", r.status)
			}
		})
	}
}

// TestReconnectPageNamesTheAccount: the customer's reconnect page says which
// account to sign in as (and on which MAX domain).
func TestReconnectPageNamesTheAccount(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/reconnect", nil)
	m := regexp.MustCompile(`id="reconnect-url" type="text" readonly value="([^"]+)"`).FindStringSubmatch(f.op.get("/connections/" + conn.ID).body)
	if m == nil {
		t.Fatal("no reconnect link")
	}
	page := f.browser().get(strings.TrimPrefix(m[1], f.srv.URL)).body
	mustContain(t, page, "Reconnect your GetResponse account", `data-testid="reconnect-account"`, "Sign in to GetResponse as <strong>"+conn.AccountEmail+"</strong>")
	// A new connection's page names no account.
	mustNotContain(t, f.browser().get(strings.TrimPrefix(f.makeLink("customer-2", ""), f.srv.URL)).body, `data-testid="reconnect-account"`)
}
