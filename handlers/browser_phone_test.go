package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// Long unbroken values, as real data sometimes has them: each must wrap, never
// widen a page.
var (
	longEmail   = "ann.operator.with.a.long.address.0123456789@integrations.example-company-international.com"
	longAppName = "MyTemplateMakerEnterpriseEditionForAgenciesResellersAndPartnersWorldwideWithAVeryLongNameIndeed01" // 100
	longRef     = "customer-" + strings.Repeat("0123456789", 6) + "x"                                                 // 70
	longKeyName = "billing-backend-" + strings.Repeat("abcdefghij", 8) + "0123"                                       // 100
	longAccount = getresponsetest.Account{
		AccountID: "LongAcct" + strings.Repeat("Z9", 20), Email: "owner.of.the.account." + strings.Repeat("x", 30) + "@long-customer-domain-name-example.com",
		FirstName: "Maximilian" + strings.Repeat("a", 40), LastName: "Longname", CompanyName: "Company" + strings.Repeat("Co", 40),
		TimeZoneName: "Europe/Warsaw",
		FromFields: []getresponsetest.FromField{{FromFieldID: "LNG1", Email: "newsletter." + strings.Repeat("y", 40) + "@long-customer-domain-name-example.com",
			Name: "Newsletter" + strings.Repeat("N", 60), IsActive: true, IsDefault: true, CreatedOn: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}},
		Campaigns: []getresponsetest.Campaign{{CampaignID: "CAMP" + strings.Repeat("7", 30), Name: "campaign_" + strings.Repeat("c", 60), TechName: "c",
			LanguageCode: "EN", IsDefault: true, CreatedOn: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}},
	}
)

// longFixture is demo mode filled with long names: an operator, a second operator,
// the demo app renamed to a 100-character name with long settings, a customer
// connected through it with a long account, a long API key, a webhook.
type longFixture struct {
	app      *testApp
	op       *browser // the operator, over plain HTTP (for setup)
	browser  *session // the operator, in Chromium
	customer *session
	appID    string
	connID   string
	link     string
	bobID    string
	apiKey   string
	keyID    string
}

func newLongFixture(t *testing.T, shots *screenshots) *longFixture {
	t.Helper()
	ctx := browserTest(t)
	app := newDemoApp(t)
	f := &longFixture{app: app, op: app.setup(longEmail, annPass), appID: demoAppID(t, app)}
	app.setupSecondOperator(f.op, "bob."+strings.Repeat("b", 40)+"@example.com", "bob password 1")
	var bob models.Operator
	if err := app.store.DB().Where("email LIKE ?", "bob.%").First(&bob).Error; err != nil {
		t.Fatalf("second operator: %v", err)
	}
	f.bobID = bob.ID
	// The demo app, renamed and given long settings through its form.
	demo, _ := app.store.AppByID(t.Context(), f.appID)
	r := f.op.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", url.Values{
		"name": {longAppName}, "client_id": {demo.ClientID}, "edition": {"standard"}, "auth_url": {demo.AuthURL}, "api_url": {demo.APIURL},
		"return_origins": {"https://integrations.example-company-international-" + strings.Repeat("z", 30) + ".com"},
	})
	if r.status != http.StatusSeeOther {
		t.Fatalf("rename the demo app = %d\n%s", r.status, r.body)
	}
	// A second app whose client ID is long and unbroken.
	second := appForm("Second" + strings.Repeat("App", 30))
	second.Set("client_id", "client-"+strings.Repeat("0123456789abcdef", 7))
	createApp(t, f.op, second)
	hook := "https://hooks.example-company-international.com/grconnect/" + strings.Repeat("h", 80)
	if r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/webhook", url.Values{"webhook_url": {hook}}); r.status != http.StatusOK {
		t.Fatalf("webhook = %d", r.status)
	}
	r = f.op.submit("/api-keys", "/api-keys", url.Values{"name": {longKeyName}})
	m := regexp.MustCompile(`value="(grc_[a-z0-9_]+)"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no API key shown:\n%s", r.body)
	}
	f.apiKey = m[1]
	var key models.APIKey
	app.store.DB().Where("name = ?", longKeyName).First(&key)
	f.keyID = key.ID
	app.built.Demo.Fake.AddAccount(longAccount)

	// A connect link for a customer with a long reference, and the customer
	// connecting the long account through it.
	cf := &connectFixture{testApp: app, op: f.op, appID: f.appID}
	f.link = cf.makeLink(longRef, "")
	f.customer = newSession(t, ctx, app.srv.URL, "customer", shots)
	f.customer.phone(true)
	f.customer.open(f.link)
	f.customer.wantText("h1", "Connect your GetResponse account")
	f.customer.fits("phone-customer-connect")
	f.customer.click(`[data-testid="connect-button"]`)
	f.customer.do("choose the long account", chromedp.Click(chromedp.CSS(`input[value="`+longAccount.AccountID+`"]`), chromedp.NodeVisible))
	f.customer.click(`[data-testid="consent-approve"]`)
	f.customer.wantText(`[data-testid="connect-success"] h1`, "Connected")
	f.customer.fits("phone-customer-connected")
	var conn models.Connection
	if err := app.store.DB().Where("account_id = ?", longAccount.AccountID).First(&conn).Error; err != nil {
		t.Fatalf("the long account's connection: %v", err)
	}
	f.connID = conn.ID
	// The backend uses the connection with the long-named key: the timeline names it.
	// (Its token is made older first: one refreshed moments ago is not refreshed again.)
	if err := app.store.DB().Model(&conn).Update("last_refresh_at", time.Now().UTC().Add(-time.Hour)).Error; err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, app.srv.URL+"/api/v1/connections/"+conn.ID+"/refresh", nil)
	req.Header.Set("Authorization", "Bearer "+f.apiKey)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("API refresh: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	f.browser = newSession(t, ctx, app.srv.URL, "operator", shots)
	return f
}

// signIn signs the operator's Chromium session in through the form.
func (f *longFixture) signIn(email string) {
	s := f.browser
	s.t.Helper()
	s.open("/login")
	s.fill("#email", email)
	s.fill("#password", annPass)
	s.click(`[data-testid="login-submit"]`)
	if s.count(`[data-testid="logout"]`) == 0 {
		s.fatalf("signing in failed")
	}
}

// TestBrowserPhoneWidth opens every operator page and every customer page at a
// phone's 390 px, with long unbroken names, refs, e-mails and IDs everywhere:
// nothing may widen the page, nor sit past its right edge, in light and dark mode.
func TestBrowserPhoneWidth(t *testing.T) {
	t.Parallel()
	shots := newScreenshots(t, "phone")
	f := newLongFixture(t, shots)
	op := f.browser
	op.phone(true)
	op.timeZone("Asia/Kolkata")
	f.signIn(longEmail)

	// The header is one compact row (and a slim demo note); the navigation opens
	// from a menu and fits too.
	op.open("/")
	if bottom := evalIn[float64](op, `document.querySelector("header.topbar").getBoundingClientRect().bottom`); bottom > 0.12*phoneHeight {
		op.fatalf("the header ends %.0f px down a %d px phone screen, want at most 12 %%", bottom, phoneHeight)
	}
	if n := evalIn[int](op, `Array.from(document.querySelectorAll("header a, header button, header summary")).filter(e => e.checkVisibility()).length`); n != 2 {
		op.fatalf("the closed phone header shows %d controls, want the brand and the menu", n)
	}
	op.fits("phone-overview")
	op.do("open the menu", chromedp.Click(chromedp.CSS(`[data-testid="nav-menu"] > summary`), chromedp.NodeVisible))
	if n := evalIn[int](op, `Array.from(document.querySelectorAll('[data-testid="nav-menu"] nav a')).filter(e => e.checkVisibility()).length`); n != 7 {
		op.fatalf("the open menu shows %d navigation links, want all 7", n)
	}
	op.fits("phone-menu")
	op.page("phone-menu-accessible") // the open menu passes the accessibility check too
	op.follow("go to Connections from the menu", chromedp.Click(chromedp.CSS(`[data-testid="nav-menu"] nav a[href="/connections"]`), chromedp.NodeVisible))
	if p := op.path(); p != "/connections" {
		op.fatalf("the menu led to %s", p)
	}

	// The browser's zone was reported once and is used from then on, UTC on hover.
	op.open("/account")
	if z := op.value("#time_zone"); z != "Asia/Kolkata" && z != "Asia/Calcutta" { // Chromium's ICU says Calcutta
		op.fatalf("the account's time zone is %q, want the browser's Asia/Kolkata", z)
	}
	op.fits("phone-account")

	// The connections list: a stacked card per connection, status and expiry on top.
	op.open("/connections")
	op.fits("phone-connections")
	op.page("phone-connections-accessible")
	// Each row is two lines: the state and the account, then the expiry (or
	// why) and the action; the customer and the app on the connection's page.
	lines := evalIn[[]string](op, `(() => { const row = document.querySelector('[data-testid="connection-row"]');
		const shown = Array.from(row.children).filter(td => td.checkVisibility());
		const second = Math.min(...shown.filter(td => /c-(reason|expires|action)/.test(td.className)).map(td => td.getBoundingClientRect().top));
		return shown.map(td => (td.getBoundingClientRect().bottom > second + 2 ? "2:" : "1:") + td.className); })()`)
	if strings.Join(lines, " ") != "1:c-status 1:c-account 2:c-expires" && strings.Join(lines, " ") != "1:c-status 1:c-account 2:c-reason 2:c-action" {
		op.fatalf("a connection row shows %v, want status and account, then expiry or reason and action", lines)
	}
	title := evalIn[string](op, `document.querySelector('[data-testid="connection-row"] time[data-relative="expiry"]').title`)
	if !strings.Contains(title, "IST") || !strings.HasSuffix(title, "UTC)") {
		op.fatalf("an expiry says %q on hover, want Indian time and UTC", title)
	}
	// The filters wait behind a Filter button, which works without a script.
	if evalIn[bool](op, `document.getElementById("app").checkVisibility()`) {
		op.fatalf("on a phone the app filter shows before Filter is pressed")
	}
	op.do("press Filter", chromedp.Click(chromedp.CSS(`[data-testid="filter-more"] > summary`), chromedp.NodeVisible))
	if !evalIn[bool](op, `document.getElementById("app").checkVisibility() && document.getElementById("sort").checkVisibility()`) {
		op.fatalf("Filter shows no app filter and sort")
	}
	op.fits("phone-connections-filter")

	// The connection with a test call: its tables stack, the raw JSON may scroll in its box.
	op.open("/connections/" + f.connID)
	op.wantText(`[data-testid="timeline"]`, "by API key “"+longKeyName+"”")
	op.wantText(`[data-testid="timeline-kept"]`, "Events are kept 90 days")
	op.fits("phone-connection")
	// Its menu and its folds, open: the events URL and the steps to give it to GetResponse.
	op.do("open the More menu", chromedp.Click(chromedp.CSS(`[data-testid="more-actions"] > summary`), chromedp.NodeVisible))
	op.fits("phone-connection-menu")
	op.do("open the events fold", chromedp.Click(chromedp.CSS(`[data-testid="events-card"] > summary`), chromedp.NodeVisible),
		chromedp.Click(chromedp.CSS(`[data-testid="events-steps"] > summary`), chromedp.NodeVisible))
	op.fits("phone-connection-events")
	op.click(`[data-testid="run-test"]`)
	op.wantText(`[data-testid="test-status"]`, "HTTP 200")
	op.do("choose /campaigns", chromedp.SetValue(chromedp.CSS("#endpoint"), "/campaigns"))
	op.click(`[data-testid="run-test"]`)
	op.do("open the raw JSON", chromedp.Click(chromedp.CSS(`[data-testid="test-result"] details summary`), chromedp.NodeVisible))
	op.fits("phone-connection-test-call")

	// Broken: GetResponse rejects the refresh token. The banner carries the fix.
	f.app.built.Demo.Fake.RevokeRefreshTokens()
	op.open("/connections/" + f.connID)
	op.fromMenu(`[data-testid="refresh-now"]`)
	op.wantText(`[data-testid="status-banner"]`, "The customer must approve access again")
	op.fits("phone-connection-needs-reconnect")
	op.click(`[data-testid="make-reconnect"]`)
	reconnect := op.value("#reconnect-url")
	op.fits("phone-connection-reconnect-link")
	op.open("/connections/" + f.connID + "/disconnect")
	op.fits("phone-disconnect-confirm")

	// The customer's reconnect page, and problem pages.
	f.customer.open(reconnect)
	f.customer.wantText(`[data-testid="connect-button"]`, "Reconnect GetResponse")
	f.customer.fits("phone-customer-reconnect")
	f.customer.click(`[data-testid="connect-button"]`)
	f.customer.click(`[data-testid="consent-deny"]`)
	f.customer.wantText("h1", "Access was not granted")
	f.customer.fits("phone-customer-denied")
	used := f.link
	f.customer.wantStatus(f.customer.open(used), 410, "a used link")
	f.customer.fits("phone-customer-used-link")

	// Everything else an operator opens.
	op.open("/")
	bulk := f.op.submit("/connections", "/connections/bulk-refresh", url.Values{"scope": {"failing"}})
	if bulk.status != http.StatusSeeOther {
		t.Fatalf("bulk refresh = %d", bulk.status)
	}
	f.app.bulk.Wait()
	var linkID string
	f.app.store.DB().Model(&models.ConnectLink{}).Where("customer_ref = ? AND connection_id IS NULL", longRef).Pluck("id", &linkID)
	var delivery models.WebhookDelivery
	if err := f.app.store.DB().Where("app_id = ?", f.appID).First(&delivery).Error; err != nil {
		t.Fatalf("a webhook delivery of the long app: %v", err)
	}
	invitation := f.app.invite(f.op, "carol."+strings.Repeat("c", 40)+"@example-company-international.com", models.RoleViewer)
	for _, p := range []struct{ path, step string }{
		{"/", "phone-overview-broken"},
		{"/connections?status=all", "phone-connections-all"},
		{"/connections?q=nothing-matches", "phone-connections-empty"},
		{bulk.location(), "phone-bulk"},
		{"/apps", "phone-apps"},
		{"/apps/" + f.appID, "phone-app"},
		{"/apps/" + f.appID + "/edit", "phone-app-edit"},
		{"/apps/" + f.appID + "/delete", "phone-app-delete"},
		{"/apps/" + f.appID + "/links/" + linkID, "phone-link"},
		{"/apps/new", "phone-app-new"},
		{"/operators", "phone-operators"},
		{"/operators/" + f.bobID + "/remove", "phone-operator-remove"},
		{"/operators/" + f.bobID + "/reset-password", "phone-operator-reset"},
		{"/api-keys", "phone-api-keys"},
		{"/api-keys/" + f.keyID + "/revoke", "phone-api-key-revoke"},
		{"/api-keys/" + f.keyID + "/roll", "phone-api-key-roll"},
		{"/operators/" + f.bobID + "/role", "phone-operator-role"},
		{"/apps/" + f.appID + "/webhook-deliveries/" + strconv.FormatInt(delivery.ID, 10), "phone-webhook-delivery"},
		{"/audit", "phone-audit"},
		{"/backups", "phone-backups"},
		{"/account/sessions", "phone-sessions"},
		{"/account/password", "phone-password"},
		{"/connections/con_doesnotexist", "phone-not-found"},
	} {
		op.open(p.path)
		op.fits(p.step)
	}
	// Forms with every error showing.
	op.open("/apps/new")
	op.fill("#name", longAppName+"x")
	op.fill("#client_secret", "short")
	op.do("choose MAX", chromedp.SetValue(chromedp.CSS("#edition"), "max_us"))
	op.do("type the return origins", chromedp.SetValue(chromedp.CSS("#return_origins"), "https://"+strings.Repeat("o", 80)+".example.com/with/a/path\nnot a url"))
	op.wantStatus(op.click(`[data-testid="app-submit"]`), 422, "an invalid app form")
	op.fits("phone-app-form-errors")
	op.open("/apps/" + f.appID)
	op.fill("#customer_ref", longRef)
	op.fill("#return_url", "https://elsewhere.example.com/"+strings.Repeat("p", 80))
	op.fill("#ttl_days", "500")
	op.wantStatus(op.click(`[data-testid="create-link"]`), 422, "an invalid link form")
	op.fits("phone-link-form-errors")
	op.open("/api-keys")
	op.fill("#name", longKeyName)
	op.fill("#current_password", annPass) // then good for ten minutes: the reset below asks no more
	op.click(`[data-testid="create-apikey"]`)
	op.fits("phone-api-key-created")
	op.open("/operators/" + f.bobID + "/reset-password")
	op.click(`[data-testid="confirm-reset"]`)
	resetURL := op.value("#reset-url")
	op.fits("phone-operator-reset-link")

	// The public pages: a reset link, sign-in, a fresh install's setup.
	f.customer.open(resetURL)
	f.customer.wantText("h1", "Choose a new password")
	f.customer.fits("phone-reset-password")
	f.customer.open("/login?signed_out=1")
	f.customer.fits("phone-login")
	f.customer.open(invitation)
	f.customer.wantText("h1", "Join grconnect")
	f.customer.fits("phone-invitation")
	fresh := newDemoApp(t)
	visitor := newSession(t, browserTest(t), fresh.srv.URL, "visitor", shots)
	visitor.phone(true)
	visitor.open(fresh.setupURL())
	visitor.fill("#email", longEmail)
	visitor.wantStatus(visitor.click(`[data-testid="setup-submit"]`), 422, "setup without a password")
	visitor.fits("phone-setup")

	// The same long names on a wide screen.
	op.phone(false)
	for _, p := range []struct{ path, step string }{
		{"/", "wide-overview"}, {"/connections?status=all", "wide-connections"}, {"/connections/" + f.connID, "wide-connection"},
		{"/apps", "wide-apps"}, {"/apps/" + f.appID, "wide-app"}, {"/operators", "wide-operators"}, {"/api-keys", "wide-api-keys"},
		{"/audit", "wide-audit"}, {"/apps/" + f.appID + "/webhook-deliveries/" + strconv.FormatInt(delivery.ID, 10), "wide-webhook-delivery"},
	} {
		op.open(p.path)
		op.fits(p.step)
	}

	for _, p := range []string{"/", "/connections", "/connections/" + f.connID, "/apps", "/apps/" + f.appID, "/apps/new", "/operators", "/api-keys", "/account",
		"/audit", "/backups", "/account/sessions", "/operators/" + f.bobID + "/role", "/api-keys/" + f.keyID + "/roll"} {
		if !op.fitted[p] {
			t.Errorf("the phone walk never checked %s", p)
		}
	}
	for _, p := range []string{strings.TrimPrefix(f.link, f.app.srv.URL), "/oauth/callback", "/login", invitation} {
		if !f.customer.fitted[p] {
			t.Errorf("the phone walk never checked the customer's %s", p)
		}
	}
}

// TestBrowserFitsWidthCheck proves the phone-width check catches each way a page
// can be too wide, and passes a page that wraps.
func TestBrowserFitsWidthCheck(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	long := strings.Repeat("W", 150)
	srv := newStaticServer(t, map[string]string{
		"/good": `<main><h1 style="overflow-wrap:anywhere">` + long + `</h1><p style="overflow-wrap:anywhere">` + long + `</p><pre style="overflow:auto">` + long + `</pre>
<span style="position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap">` + long + `</span></main>`,
		"/wide":   `<main><p style="white-space:nowrap">` + long + `</p></main>`,
		"/scroll": `<main><div style="overflow-x:auto"><table><tr><td style="white-space:nowrap">Status ` + long + `</td><td>Revoke</td></tr></table></div></main>`,
		"/past":   `<main><p style="position:fixed;left:340px;white-space:nowrap">Expires in 1 h</p></main>`,
		"/hidden": `<main style="overflow:hidden"><p style="white-space:nowrap;margin-left:300px">Needs reconnect</p></main>`,
	})
	s := newSession(t, ctx, srv, "checker", nil)
	s.phone(true)
	s.open("/good")
	if problems := evalIn[[]string](s, fitsWidthJS); len(problems) != 0 {
		t.Errorf("a page that wraps fails the check:\n%s", strings.Join(problems, "\n"))
	}
	for path, want := range map[string]string{
		"/wide":   "the document is",
		"/scroll": "scrolls sideways",
		"/past":   `text "Expires in 1 h" ends at`,
		"/hidden": `text "Needs reconnect" is cut off on the right`,
	} {
		s.open(path)
		problems := strings.Join(evalIn[[]string](s, fitsWidthJS), "\n")
		if !strings.Contains(problems, want) {
			t.Errorf("%s: the check missed %q; it said:\n%s", path, want, problems)
		}
	}
}

// newStaticServer serves fixed pages (each the body of a phone-ready HTML page),
// for checks of the checks.
func newStaticServer(t *testing.T, pages map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><html lang="en"><head><meta name="viewport" content="width=device-width, initial-scale=1"><title>Check</title></head><body>` + body + `</body></html>`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
