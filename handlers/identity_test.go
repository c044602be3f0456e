package handlers_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// countConnections counts an app's connections.
func (f *connectFixture) countConnections() int64 {
	f.t.Helper()
	var n int64
	if err := f.store.DB().Model(&models.Connection{}).Where("app_id = ?", f.appID).Count(&n).Error; err != nil {
		f.t.Fatal(err)
	}
	return n
}

// addAccount adds a simulated account with a name and e-mail of its own.
func (f *connectFixture) addAccount(id, domain string) string {
	return f.fake.AddAccount(getresponsetest.Account{AccountID: id, Domain: domain, Email: strings.ToLower(id) + "@example.com",
		FirstName: "Test", LastName: id})
}

// TestTwoFlowsOfOneLinkMakeOneConnection: two browsers press Connect on one link
// before either finishes; the first to complete makes the connection, the second
// gets a page saying the link was used, and never reaches GetResponse's token
// endpoint. The operator's link page then says when and by which account it was used.
func TestTwoFlowsOfOneLinkMakeOneConnection(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	link := f.makeLink("customer-7", "")
	first, second := f.browser(), f.browser()
	s1, s2 := f.startFlow(first, link), f.startFlow(second, link)
	r1, err := f.fake.Approve(f.clientID, s1, "Qm7Kp")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := f.fake.Approve(f.clientID, s2, "Zr2Tx")
	if err != nil {
		t.Fatal(err)
	}
	if r := f.callback(first, r1); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="connect-success"`) {
		t.Fatalf("first flow = %d\n%s", r.status, r.body)
	}
	r := f.callback(second, r2)
	if r.status != http.StatusGone || !strings.Contains(r.body, `data-kind="link_used"`) {
		t.Fatalf("second flow = %d\n%s", r.status, r.body)
	}
	mustContain(t, r.body, "This link was already used", "ask Acme Templates for a new link")
	mustNotContain(t, r.body, `data-testid="try-again"`)
	if n := f.countConnections(); n != 1 {
		t.Fatalf("%d connections from one link", n)
	}
	if n := f.fake.Count(getresponsetest.EndpointTokenCode); n != 1 {
		t.Fatalf("%d code exchanges, want only the first flow's", n)
	}
	// The link itself now says it was used, to the customer and to the operator.
	path := strings.TrimPrefix(link, f.srv.URL)
	if r := f.browser().get(path); r.status != http.StatusGone || !strings.Contains(r.body, "was already used") {
		t.Fatalf("used link = %d", r.status)
	}
	var l models.ConnectLink
	f.store.DB().Where("customer_ref = ?", "customer-7").First(&l)
	page := f.op.get("/apps/" + f.appID + "/links/" + l.ID)
	mustContain(t, page.body, `data-testid="link-used"`, "maria.kowalska@example.com (Qm7Kp)", `data-testid="link-used-at"`, `data-testid="link-used-connection"`)
	mustNotContain(t, page.body, `id="link-url"`, `data-testid="link-snippet"`, `data-testid="revoke-link"`)
}

// TestConcurrentCallbacksOfOneLink: both flows of one link pass the state check and
// exchange their codes at the same time; the link's claim in the saving
// transaction lets exactly one complete.
func TestConcurrentCallbacksOfOneLink(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	link := f.makeLink("customer-8", "")
	a, b := f.addAccount("racerA", ""), f.addAccount("racerB", "")
	browsers := []*browser{f.browser(), f.browser()}
	var redirects []string
	for i, acct := range []string{a, b} {
		state := f.startFlow(browsers[i], link)
		r, err := f.fake.Approve(f.clientID, state, acct)
		if err != nil {
			t.Fatal(err)
		}
		redirects = append(redirects, r)
	}
	f.fake.SetTokenLatency(300 * time.Millisecond) // both exchanges in flight together
	statuses := make([]int, 2)
	bodies := make([]string, 2)
	var wg sync.WaitGroup
	for i := range browsers {
		wg.Go(func() {
			resp, err := browsers[i].client.Get(redirects[i])
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			statuses[i], bodies[i] = resp.StatusCode, string(body)
		})
	}
	wg.Wait()
	ok, used := 0, 0
	for i, st := range statuses {
		switch {
		case st == http.StatusOK && strings.Contains(bodies[i], `data-testid="connect-success"`):
			ok++
		case st == http.StatusGone && strings.Contains(bodies[i], `data-kind="link_used"`):
			used++
		default:
			t.Errorf("flow %d = %d\n%s", i, st, bodies[i])
		}
	}
	if ok != 1 || used != 1 || f.countConnections() != 1 {
		t.Fatalf("%d completed, %d told the link was used, %d connections; want 1, 1, 1", ok, used, f.countConnections())
	}
	if n := f.fake.Count(getresponsetest.EndpointTokenCode); n != 2 {
		t.Fatalf("%d code exchanges, want both (they ran together)", n)
	}
}

// webhookOf returns the payload of the newest outbox delivery of an event type.
func webhookOf(t *testing.T, store *models.Store, eventType string) string {
	t.Helper()
	var d models.WebhookDelivery
	if err := store.DB().Where("event_type = ?", eventType).Order("id DESC").First(&d).Error; err != nil {
		t.Fatalf("no %s webhook: %v", eventType, err)
	}
	return d.Payload
}

// TestAnotherCustomerCannotTakeAnAccountSilently: customer B authorizes the account
// connected for customer A. Without allow_transfer A's connection is unchanged, B is
// told the account is connected elsewhere, A's timeline shows the attempt and a
// connection.transfer_refused webhook goes out; with allow_transfer the connection
// moves, recorded as connection.transferred.
func TestAnotherCustomerCannotTakeAnAccountSilently(t *testing.T) {
	f := withAPIKey(newConnectFixture(t, getresponsetest.Options{}))
	ctx := context.Background()
	if err := f.store.SetWebhook(ctx, f.appID, models.WebhookSetting{URL: "https://hooks.example.com/grconnect"}); err != nil {
		t.Fatal(err)
	}
	a := f.connect("customer-A", "Qm7Kp")

	linkB := f.makeLink("customer-B", "")
	customerB := f.browser()
	state := f.startFlow(customerB, linkB)
	redirect, err := f.fake.Approve(f.clientID, state, "Qm7Kp")
	if err != nil {
		t.Fatal(err)
	}
	r := f.callback(customerB, redirect)
	if r.status != http.StatusConflict || !strings.Contains(r.body, `data-kind="account_taken"`) {
		t.Fatalf("B's flow = %d\n%s", r.status, r.body)
	}
	mustContain(t, r.body, "already connected", "contact Acme Templates", `data-testid="try-again"`)
	mustNotContain(t, r.body, "customer-A")
	list := decode[struct {
		Connections []connectionAnswer `json:"connections"`
	}](t, f.call(http.MethodGet, "/api/v1/connections?customer_ref=customer-A", nil))
	if len(list.Connections) != 1 || list.Connections[0].ID != a.ID || list.Connections[0].Status != models.StatusActive {
		t.Fatalf("A's connections after B's attempt: %+v", list.Connections)
	}
	after, _ := f.store.ConnectionByID(ctx, a.ID)
	if after.CustomerRef != "customer-A" || after.AccessTokenEnc != a.AccessTokenEnc || after.RefreshTokenEnc != a.RefreshTokenEnc {
		t.Fatalf("A's connection changed: %+v", after)
	}
	mustContain(t, f.op.get("/connections/"+a.ID).body, "connection.transfer_refused", "Customer customer-B authorized this GetResponse account")
	mustContain(t, webhookOf(t, f.store, "connection.transfer_refused"), `"attempted_customer_ref":"customer-B"`, `"customer_ref":"customer-A"`)
	// B's link is still usable (with another account, say).
	if r := f.browser().get(strings.TrimPrefix(linkB, f.srv.URL)); r.status != http.StatusOK {
		t.Fatalf("B's link after the refusal = %d", r.status)
	}

	// A link that allows the transfer moves the connection, keeping its ID and history.
	sess := decode[struct {
		URL string `json:"url"`
	}](t, f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{
		"app_id": f.appID, "customer_ref": "customer-B", "allow_transfer": true, "return_url": "https://app.example.com/done",
	}))
	state = f.startFlow(customerB, sess.URL)
	if redirect, err = f.fake.Approve(f.clientID, state, "Qm7Kp"); err != nil {
		t.Fatal(err)
	}
	back := f.callback(customerB, redirect)
	u, _ := url.Parse(back.location())
	if back.status != http.StatusSeeOther || u.Query().Get("status") != "transferred" || u.Query().Get("connection_id") != a.ID {
		t.Fatalf("transfer = %d %q", back.status, back.location())
	}
	for ref, want := range map[string]int{"customer-A": 0, "customer-B": 1} {
		got := decode[struct {
			Connections []connectionAnswer `json:"connections"`
		}](t, f.call(http.MethodGet, "/api/v1/connections?customer_ref="+ref, nil))
		if len(got.Connections) != want {
			t.Errorf("%s has %d connections after the transfer, want %d", ref, len(got.Connections), want)
		}
	}
	mustContain(t, f.op.get("/connections/"+a.ID).body, "connection.transferred", "Moved from customer customer-A to customer customer-B")
	mustContain(t, webhookOf(t, f.store, "connection.transferred"), `"previous_customer_ref":"customer-A"`, `"customer_ref":"customer-B"`)
}

// TestRevokeConnectLinks: an unused link can be revoked from the API and the
// dashboard; its page then says so, a flow started before cannot complete, and a
// used link cannot be revoked.
func TestRevokeConnectLinks(t *testing.T) {
	f := withAPIKey(newConnectFixture(t, getresponsetest.Options{}))
	created := decode[struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}](t, f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": f.appID, "customer_ref": "customer-9"}))
	customer := f.browser()
	state := f.startFlow(customer, created.URL)
	if r := f.call(http.MethodDelete, "/api/v1/connect-sessions/"+created.ID, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke = %d %s", r.status, r.body)
	}
	if r := f.call(http.MethodDelete, "/api/v1/connect-sessions/"+created.ID, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke again = %d %s", r.status, r.body)
	}
	page := f.browser().get(strings.TrimPrefix(created.URL, f.srv.URL))
	if page.status != http.StatusGone || !strings.Contains(page.body, "was withdrawn") {
		t.Fatalf("revoked link's page = %d\n%s", page.status, page.body)
	}
	redirect, err := f.fake.Approve(f.clientID, state, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := f.callback(customer, redirect); r.status != http.StatusGone || !strings.Contains(r.body, `data-kind="link_revoked"`) {
		t.Fatalf("flow of a revoked link = %d\n%s", r.status, r.body)
	}
	if f.countConnections() != 0 || f.fake.Count(getresponsetest.EndpointTokenCode) != 0 {
		t.Fatal("a revoked link's flow connected an account")
	}
	wantError(t, f.call(http.MethodDelete, "/api/v1/connect-sessions/lnk_nope", nil), http.StatusNotFound, "not_found")
	conn := f.connect("customer-10", "")
	var used models.ConnectLink
	f.store.DB().Where("used_connection_id = ?", conn.ID).First(&used)
	wantError(t, f.call(http.MethodDelete, "/api/v1/connect-sessions/"+used.ID, nil), http.StatusConflict, "link_used")

	// From the dashboard.
	link := f.makeLink("customer-11", "")
	var l models.ConnectLink
	f.store.DB().Where("customer_ref = ?", "customer-11").First(&l)
	linkPage := "/apps/" + f.appID + "/links/" + l.ID
	mustContain(t, f.op.get(linkPage).body, `data-testid="revoke-link"`, `data-testid="popup-snippet"`, "/static/connect/v1.js")
	r := f.op.submit(linkPage, linkPage+"/revoke", nil)
	if r.status != http.StatusSeeOther || r.location() != linkPage {
		t.Fatalf("dashboard revoke = %d %q", r.status, r.location())
	}
	mustContain(t, f.op.get(linkPage).body, `data-testid="link-revoked"`, annEmail+" revoked this link")
	if r := f.browser().get(strings.TrimPrefix(link, f.srv.URL)); r.status != http.StatusGone {
		t.Fatalf("dashboard-revoked link = %d", r.status)
	}
	mustContain(t, f.op.get("/apps/"+f.appID).body, ">revoked<")
}

// TestTwoMaxCustomersOnOneApp: one GetResponse MAX (Enterprise) app, two customers
// on their own MAX domains — one typed on the connect page, one given by the
// operator's connect session. Each authorizes on its own domain, and every token
// and API call of each connection carries its own X-Domain (the fake refuses any
// other and counts calls per client, account and domain).
func TestTwoMaxCustomersOnOneApp(t *testing.T) {
	app := newTestAppWith(t, getresponsetest.Options{})
	op := app.setup(annEmail, annPass)
	form := appForm("Max Templates")
	form.Set("client_id", "max-client")
	form.Set("edition", "max_us")
	id := createApp(t, op, form)
	// The fake's URLs are the configured standard defaults, which the form swaps for
	// MAX's: point the app at the fake, whose consent page of domain D is ?domain=D.
	if err := app.store.DB().Exec("UPDATE apps SET auth_url = ?, api_url = ? WHERE id = ?", app.fake.AuthURL()+"?domain={domain}", app.fake.APIURL(), id).Error; err != nil {
		t.Fatal(err)
	}
	app.store.AppsWritten() // a raw write: the app cache must hear of it
	app.fake.AddClient("max-client", clientSecret, app.cfg.RedirectURL())
	f := withAPIKey(&connectFixture{testApp: app, op: op, appID: id, clientID: "max-client"})
	alpha, beta := f.addAccount("alphaAcct", "alpha.example.com"), f.addAccount("betaAcct", "beta.example.com")

	// Alpha's link names no domain: the connect page asks for it.
	link := f.makeLink("customer-alpha", "")
	path := strings.TrimPrefix(link, f.srv.URL)
	customer := f.browser()
	page := customer.get(path)
	mustContain(t, page.body, `data-testid="max-domain-input"`, "Your GetResponse MAX address")
	if r := customer.submit(path, path, nil); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-max_domain"`) {
		t.Fatalf("connect without a MAX address = %d", r.status)
	}
	r := customer.submit(path, path, url.Values{"max_domain": {"https://www.Alpha.Example.com/"}})
	auth, _ := url.Parse(r.location())
	if r.status != http.StatusSeeOther || auth.Query().Get("domain") != "alpha.example.com" {
		t.Fatalf("start = %d %q, want the consent page of alpha.example.com", r.status, r.location())
	}
	redirect, err := f.fake.Decide(getresponsetest.Consent{ClientID: f.clientID, State: auth.Query().Get("state"), Domain: "alpha.example.com", AccountID: alpha})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.callback(customer, redirect); r.status != http.StatusOK {
		t.Fatalf("alpha's callback = %d\n%s", r.status, r.body)
	}

	// Beta's connect session names the domain: the page shows it and asks nothing.
	sess := decode[struct {
		URL string `json:"url"`
	}](t, f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": id, "customer_ref": "customer-beta", "max_domain": "beta.example.com"}))
	betaBrowser := f.browser()
	page = betaBrowser.get(strings.TrimPrefix(sess.URL, f.srv.URL))
	mustContain(t, page.body, `data-testid="max-domain"`, "beta.example.com")
	mustNotContain(t, page.body, `data-testid="max-domain-input"`)
	state := f.startFlow(betaBrowser, sess.URL)
	redirect, err = f.fake.Decide(getresponsetest.Consent{ClientID: f.clientID, State: state, Domain: "beta.example.com", AccountID: beta})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.callback(betaBrowser, redirect); r.status != http.StatusOK {
		t.Fatalf("beta's callback = %d\n%s", r.status, r.body)
	}
	// A MAX session with a domain for a standard app, or a bad one, is refused.
	wantError(t, f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": id, "customer_ref": "c", "max_domain": "not a domain"}), http.StatusBadRequest, "invalid_input")

	conns := map[string]string{} // account → connection ID
	for _, acct := range []string{alpha, beta} {
		var c models.Connection
		if err := f.store.DB().Where("account_id = ?", acct).First(&c).Error; err != nil {
			t.Fatal(err)
		}
		conns[acct] = c.ID
		domain := map[string]string{alpha: "alpha.example.com", beta: "beta.example.com"}[acct]
		if c.MaxDomain != domain {
			t.Fatalf("%s's connection is on %q, want %q", acct, c.MaxDomain, domain)
		}
		got := decode[connectionAnswer](t, f.call(http.MethodGet, "/api/v1/connections/"+c.ID, nil))
		if got.Account.ID != acct {
			t.Fatalf("API connection = %+v", got)
		}
		// Token, refresh, proxy and a dashboard test call: each with its own X-Domain.
		f.age(c.ID, time.Hour) // past the refresh cooldown, so the refresh calls GetResponse
		if r := f.call(http.MethodPost, "/api/v1/connections/"+c.ID+"/refresh", nil); r.status != http.StatusOK {
			t.Fatalf("refresh %s = %d %s", acct, r.status, r.body)
		}
		if r := f.call(http.MethodGet, "/api/v1/connections/"+c.ID+"/proxy/from-fields", nil); r.status != http.StatusOK {
			t.Fatalf("proxy %s = %d %s", acct, r.status, r.body)
		}
		if r := f.op.submit("/connections/"+c.ID, "/connections/"+c.ID+"/test", url.Values{"endpoint": {"/accounts"}}); r.status != http.StatusOK || !strings.Contains(r.body, acct) {
			t.Fatalf("test call %s = %d", acct, r.status)
		}
		mustContain(t, f.op.get("/connections/"+c.ID).body, `data-testid="connection-max-domain"`, domain)
	}
	if n := f.fake.Stat(getresponsetest.StatRefusedDomain); n != 0 {
		t.Fatalf("the fake refused %d calls for a wrong X-Domain", n)
	}
	seen := map[string]int{}
	for call, n := range f.fake.DomainCalls() {
		want := map[string]string{alpha: "alpha.example.com", beta: "beta.example.com"}[call.AccountID]
		if call.ClientID != f.clientID || call.XDomain != want {
			t.Errorf("%d calls for %s with X-Domain %q (client %s), want only %q", n, call.AccountID, call.XDomain, call.ClientID, want)
		}
		seen[call.AccountID] += n
	}
	// Per connection: the code exchange, /accounts, the refresh, the proxied call, the test call.
	if seen[alpha] < 5 || seen[beta] < 5 {
		t.Fatalf("calls per account: %v", seen)
	}

	// X-Parent-Login, set on one connection, goes with its API calls.
	if r := f.op.submit("/connections/"+conns[alpha], "/connections/"+conns[alpha]+"/parent-login", url.Values{"parent_login": {"has space"}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("a bad parent login = %d", r.status)
	}
	if r := f.op.submit("/connections/"+conns[alpha], "/connections/"+conns[alpha]+"/parent-login", url.Values{"parent_login": {"parent-7"}}); r.status != http.StatusSeeOther {
		t.Fatalf("parent login = %d", r.status)
	}
	c, _ := f.store.ConnectionByID(context.Background(), conns[alpha])
	if c.ParentLogin != "parent-7" {
		t.Fatalf("parent login stored as %q", c.ParentLogin)
	}
	mustContain(t, f.op.get("/connections/"+c.ID).body, "connection.parent_login_changed", `value="parent-7"`)
}

// TestCustomerPagesCarryTheApp: the connect, success and problem pages show the
// operator's app — its name, logo and support contact — and no grconnect wording,
// and the logo's origin is allowed by the page's CSP.
func TestCustomerPagesCarryTheApp(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	app, err := f.store.AppByID(context.Background(), f.appID)
	if err != nil {
		t.Fatal(err)
	}
	app.LogoURL, app.SupportContact = "https://cdn.acme.example/logo.png", "help@acme.example"
	if err := f.store.UpdateApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	link := f.makeLink("customer-12", "")
	path := strings.TrimPrefix(link, f.srv.URL)
	customer := f.browser()
	pages := map[string]response{"connect": customer.get(path)}
	state := f.startFlow(customer, link)
	redirect, err := f.fake.Approve(f.clientID, state, "")
	if err != nil {
		t.Fatal(err)
	}
	pages["success"] = f.callback(customer, redirect)
	pages["used link"] = customer.get(path)
	pages["denied"] = func() response {
		b := f.browser()
		st := f.startFlow(b, f.makeLink("customer-13", ""))
		deny, _ := f.fake.Deny(f.clientID, st)
		return f.callback(b, deny)
	}()
	for name, p := range pages {
		mustContain(t, p.body, `src="https://cdn.acme.example/logo.png"`, "Acme Templates", `href="mailto:help@acme.example"`, `data-testid="customer-brand"`)
		if strings.Contains(strings.ToLower(p.body), "grconnect") {
			t.Errorf("the %s page mentions grconnect", name)
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://cdn.acme.example;") || !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("the %s page's CSP is %q", name, csp)
		}
		if coop := p.header.Get("Cross-Origin-Opener-Policy"); coop != "unsafe-none" {
			t.Errorf("the %s page's COOP is %q: the connect popup would lose its opener", name, coop)
		}
	}
	mustContain(t, pages["connect"].body, "<title>Connect GetResponse · Acme Templates</title>")
}
