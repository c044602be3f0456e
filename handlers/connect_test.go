package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// connectFixture is an operator with an app registered against the fake GetResponse.
type connectFixture struct {
	*testApp
	op       *browser
	appID    string
	clientID string
}

func newConnectFixture(t testing.TB, fo getresponsetest.Options, opts ...option) *connectFixture {
	t.Helper()
	return newConnectFixtureOn(t, newTestAppWith(t, fo, opts...))
}

// newConnectFixtureOn sets up an operator and an app on a grconnect already built.
func newConnectFixtureOn(t testing.TB, app *testApp) *connectFixture {
	t.Helper()
	op := app.setup(annEmail, annPass)
	// Registered at GetResponse first, as an operator would: saving the app checks
	// its credentials.
	app.fake.AddClient("acme-client", clientSecret, app.cfg.RedirectURL())
	form := appForm("Acme Templates")
	form.Set("client_id", "acme-client")
	form.Set("return_origins", "https://app.example.com")
	id := createApp(t, op, form)
	return &connectFixture{testApp: app, op: op, appID: id, clientID: "acme-client"}
}

var linkURLRe = regexp.MustCompile(`id="link-url" type="text" readonly value="([^"]+)"`)

// makeLink creates a connect link through the app page and returns its URL.
func (f *connectFixture) makeLink(customerRef, returnURL string) string {
	f.t.Helper()
	r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/links", url.Values{"customer_ref": {customerRef}, "return_url": {returnURL}})
	if r.status != http.StatusSeeOther {
		f.t.Fatalf("create link = %d\n%s", r.status, r.body)
	}
	page := f.op.get(r.location())
	m := linkURLRe.FindStringSubmatch(page.body)
	if m == nil {
		f.t.Fatalf("no link URL on %s", r.location())
	}
	return m[1]
}

// startFlow opens a connect link as a customer and presses "Connect GetResponse";
// it returns the state sent to the fake's authorize page.
func (f *connectFixture) startFlow(customer *browser, link string) string {
	f.t.Helper()
	path := strings.TrimPrefix(link, f.srv.URL)
	r := customer.submit(path, path, nil)
	if r.status != http.StatusSeeOther {
		f.t.Fatalf("start = %d\n%s", r.status, r.body)
	}
	auth, err := url.Parse(r.location())
	if err != nil || !strings.HasPrefix(r.location(), f.fake.AuthURL()) {
		f.t.Fatalf("start redirected to %q, want the authorize URL", r.location())
	}
	q := auth.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != f.clientID || len(q.Get("state")) < 22 {
		f.t.Fatalf("authorize query = %v", q)
	}
	if ref := r.header.Get("Referrer-Policy"); ref != "no-referrer" {
		f.t.Errorf("Referrer-Policy = %q", ref)
	}
	return q.Get("state")
}

// callback follows GetResponse's redirect back into grconnect.
func (f *connectFixture) callback(customer *browser, redirect string) response {
	f.t.Helper()
	if !strings.HasPrefix(redirect, f.srv.URL+"/oauth/callback") {
		f.t.Fatalf("GetResponse redirected to %q", redirect)
	}
	return customer.get(strings.TrimPrefix(redirect, f.srv.URL))
}

// connect runs the whole flow for one customer and returns the connection.
// age moves a connection's last refresh back by d, as if its token were d old, so
// the 30-second refresh cooldown does not apply to it.
func (f *connectFixture) age(id string, d time.Duration) {
	f.t.Helper()
	if err := f.store.DB().Model(&models.Connection{}).Where("id = ?", id).Update("last_refresh_at", time.Now().UTC().Add(-d)).Error; err != nil {
		f.t.Fatal(err)
	}
}

// expireIn moves a connection's access-token expiry to d from now.
func (f *connectFixture) expireIn(id string, d time.Duration) {
	f.t.Helper()
	if err := f.store.DB().Model(&models.Connection{}).Where("id = ?", id).Update("expires_at", time.Now().UTC().Add(d)).Error; err != nil {
		f.t.Fatal(err)
	}
}

func (f *connectFixture) connect(customerRef, accountID string) *models.Connection {
	f.t.Helper()
	customer := f.browser()
	state := f.startFlow(customer, f.makeLink(customerRef, ""))
	redirect, err := f.fake.Approve(f.clientID, state, accountID)
	if err != nil {
		f.t.Fatal(err)
	}
	r := f.callback(customer, redirect)
	if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="connect-success"`) {
		f.t.Fatalf("callback = %d\n%s", r.status, r.body)
	}
	var conn models.Connection
	if err := f.store.DB().Where("account_id = ?", orDefault(accountID, getresponsetest.DefaultAccountID)).First(&conn).Error; err != nil {
		f.t.Fatal(err)
	}
	return &conn
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// plaintextTokens opens a connection's stored tokens.
func (f *connectFixture) plaintextTokens(id string) (access, refresh string) {
	f.t.Helper()
	c, err := f.store.ConnectionByID(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	access, err = f.box.Open(c.AccessTokenEnc, secrets.AAD("connection", id, "access_token"))
	if err != nil {
		f.t.Fatal(err)
	}
	refresh, err = f.box.Open(c.RefreshTokenEnc, secrets.AAD("connection", id, "refresh_token"))
	if err != nil {
		f.t.Fatal(err)
	}
	return access, refresh
}

func TestConnectFlowCreatesConnection(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-42", "")
	if conn.Status != models.StatusActive || conn.CustomerRef != "customer-42" || conn.AccountEmail == "" || conn.AccountID != getresponsetest.DefaultAccountID {
		t.Fatalf("connection = %+v", conn)
	}
	if conn.ExpiresAt == nil || !conn.ExpiresAt.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("expiry %v is not about an hour ahead", conn.ExpiresAt)
	}
	if f.fake.Count(getresponsetest.EndpointTokenCode) != 1 || f.fake.Count(getresponsetest.EndpointAccounts) != 1 {
		t.Fatalf("fake saw %d exchanges and %d account calls", f.fake.Count(getresponsetest.EndpointTokenCode), f.fake.Count(getresponsetest.EndpointAccounts))
	}
	list := f.op.get("/connections")
	mustContain(t, list.body, conn.AccountEmail, "customer-42", "Acme Templates", "badge-active", "in 1 h")
	page := f.op.get("/connections/" + conn.ID)
	mustContain(t, page.body, conn.AccountEmail, conn.TokenFingerprint, "connection.created", "Refresh now")
	overview := f.op.get("/")
	mustContain(t, overview.body, `data-testid="count-active">1<`, "connection.created", `data-testid="expiry-chart"`, `data-testid="refresh-chart"`,
		"1 live connection has an access token expiring in the next")

	// The link is single use.
	link := f.makeLink("customer-43", "")
	customer := f.browser()
	state := f.startFlow(customer, link)
	redirect, _ := f.fake.Approve(f.clientID, state, "Qm7Kp")
	f.callback(customer, redirect)
	path := strings.TrimPrefix(link, f.srv.URL)
	if r := f.browser().get(path); r.status != http.StatusGone || !strings.Contains(r.body, "already used") {
		t.Fatalf("used link = %d", r.status)
	}

	access, refresh := f.plaintextTokens(conn.ID)
	for _, p := range f.pages {
		mustNotContain(t, p, access, refresh, clientSecret)
	}
	logs := f.logs.String()
	for _, s := range []string{access, refresh, clientSecret, state} {
		if strings.Contains(logs, s) {
			t.Errorf("log output contains a secret %q", s[:6])
		}
	}
	assertNotInDatabaseFiles(t, f.testApp, access, refresh, clientSecret)
}

func TestConnectReturnURL(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	// Only the app's origins are allowed.
	for _, bad := range []string{"https://evil.example/cb", "javascript:alert(1)", "//app.example.com/x", "https://app.example.com.evil.example/"} {
		r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/links", url.Values{"customer_ref": {"c1"}, "return_url": {bad}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-return_url"`) {
			t.Errorf("return_url %q = %d, want 422", bad, r.status)
		}
	}
	customer := f.browser()
	state := f.startFlow(customer, f.makeLink("c1", "https://app.example.com/integrations?tab=gr"))
	redirect, _ := f.fake.Approve(f.clientID, state, "")
	r := f.callback(customer, redirect)
	if r.status != http.StatusSeeOther {
		t.Fatalf("callback with return URL = %d", r.status)
	}
	u, _ := url.Parse(r.location())
	if u.Host != "app.example.com" || u.Query().Get("tab") != "gr" || u.Query().Get("status") != "connected" || !strings.HasPrefix(u.Query().Get("connection_id"), "con_") {
		t.Fatalf("returned to %q", r.location())
	}
	if strings.Contains(r.location(), "code=") || strings.Contains(r.location(), "token") {
		t.Fatalf("return URL carries a code or token: %q", r.location())
	}
}

func TestReconnectKeepsIDAndHistory(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-42", "")
	f.fake.RevokeRefreshTokens()
	r := f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("refresh = %d", r.status)
	}
	got, _ := f.store.ConnectionByID(t.Context(), conn.ID)
	if got.Status != models.StatusNeedsReconnect {
		t.Fatalf("after invalid_grant status = %q, want needs_reconnect", got.Status)
	}
	page := f.op.get("/connections/" + conn.ID)
	mustContain(t, page.body, "badge-needs_reconnect", "customer must reconnect", `data-testid="status-banner"`, `data-testid="make-reconnect"`)

	if r := f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/reconnect", nil); r.status != http.StatusSeeOther {
		t.Fatalf("make reconnect link = %d", r.status)
	}
	page = f.op.get("/connections/" + conn.ID)
	m := regexp.MustCompile(`id="reconnect-url" type="text" readonly value="([^"]+)"`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no reconnect link on the page")
	}
	customer := f.browser()
	connectPage := customer.get(strings.TrimPrefix(m[1], f.srv.URL))
	mustContain(t, connectPage.body, "Reconnect your GetResponse account", "Acme Templates")
	state := f.startFlow(customer, m[1])
	redirect, _ := f.fake.Approve(f.clientID, state, "")
	if r := f.callback(customer, redirect); r.status != http.StatusOK || !strings.Contains(r.body, "Reconnected") {
		t.Fatalf("reconnect callback = %d", r.status)
	}
	var n int64
	f.store.DB().Model(&models.Connection{}).Count(&n)
	got, _ = f.store.ConnectionByID(t.Context(), conn.ID)
	if n != 1 || got.Status != models.StatusActive || got.CustomerRef != "customer-42" || got.LastError != "" {
		t.Fatalf("after reconnect: %d connections, %+v", n, got)
	}
	var types []string
	f.store.DB().Model(&models.Event{}).Where("connection_id = ?", conn.ID).Order("id").Pluck("type", &types)
	want := []string{"connection.created", "connection.needs_reconnect", "reconnect_link.created", "connection.reconnected"}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Fatalf("timeline = %v, want %v", types, want)
	}
	// A reconnect that signs in to another account is refused and changes nothing.
	other := f.fake.AddAccount(getresponsetest.Account{AccountID: "Other1", Email: "other@example.com", FirstName: "O"})
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/reconnect", nil)
	page = f.op.get("/connections/" + conn.ID)
	m = regexp.MustCompile(`id="reconnect-url" type="text" readonly value="([^"]+)"`).FindStringSubmatch(page.body)
	customer = f.browser()
	state = f.startFlow(customer, m[1])
	redirect, _ = f.fake.Approve(f.clientID, state, other)
	r = f.callback(customer, redirect)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "different GetResponse account") {
		t.Fatalf("mismatched reconnect = %d", r.status)
	}
	f.store.DB().Model(&models.Connection{}).Count(&n)
	if n != 1 {
		t.Fatalf("mismatched reconnect created a connection")
	}
}

func TestDenyShowsFriendlyPage(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	customer := f.browser()
	link := f.makeLink("customer-7", "https://app.example.com/back")
	state := f.startFlow(customer, link)
	redirect, err := f.fake.Deny(f.clientID, state)
	if err != nil {
		t.Fatal(err)
	}
	r := f.callback(customer, redirect)
	if r.status != http.StatusBadRequest {
		t.Fatalf("deny = %d", r.status)
	}
	mustContain(t, r.body, "Access was not granted", "declined", `data-testid="try-again"`, `href="`+link+`"`, "status=error", "Back to Acme Templates")
	var n int64
	f.store.DB().Model(&models.Connection{}).Count(&n)
	if n != 0 {
		t.Fatalf("deny created %d connections", n)
	}
	// A redirect with neither code nor error is handled the same friendly way.
	state = f.startFlow(customer, link)
	r = customer.get("/oauth/callback?state=" + url.QueryEscape(state))
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "without an authorization") {
		t.Fatalf("no code = %d\n%s", r.status, r.body)
	}
	// The link still works after a denial.
	state = f.startFlow(customer, link)
	redirect, _ = f.fake.Approve(f.clientID, state, "")
	if r := f.callback(customer, redirect); r.status != http.StatusSeeOther {
		t.Fatalf("approve after deny = %d", r.status)
	}
}

func TestBadStatesAreRefused(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	count := func() int64 {
		var n int64
		f.store.DB().Model(&models.Connection{}).Count(&n)
		return n
	}
	customer := f.browser()
	link := f.makeLink("customer-9", "")

	t.Run("forged", func(t *testing.T) {
		r := customer.get("/oauth/callback?code=abc&state=forged-state-value-0123456789")
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `data-kind="state_unknown"`) {
			t.Fatalf("forged state = %d", r.status)
		}
		if r := customer.get("/oauth/callback?code=abc"); r.status != http.StatusBadRequest {
			t.Fatalf("missing state = %d", r.status)
		}
	})
	t.Run("foreign browser", func(t *testing.T) {
		state := f.startFlow(customer, link)
		redirect, _ := f.fake.Approve(f.clientID, state, "")
		r := f.callback(f.browser(), redirect) // another browser, without the cookie
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "another browser") {
			t.Fatalf("foreign browser = %d", r.status)
		}
	})
	t.Run("replayed", func(t *testing.T) {
		state := f.startFlow(customer, link)
		redirect, _ := f.fake.Approve(f.clientID, state, "")
		other := f.makeLink("customer-10", "")
		// Complete it once (consumes the state and the link)…
		if r := f.callback(customer, redirect); r.status != http.StatusOK {
			t.Fatalf("first callback = %d", r.status)
		}
		// …then replay the same redirect.
		r := f.callback(customer, redirect)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `data-kind="state_used"`) {
			t.Fatalf("replayed state = %d", r.status)
		}
		link = other
	})
	before := count()
	t.Run("expired", func(t *testing.T) {
		state := f.startFlow(customer, link)
		redirect, _ := f.fake.Approve(f.clientID, state, "")
		f.store.DB().Model(&models.AuthState{}).Where("used_at IS NULL").Update("expires_at", time.Now().Add(-time.Minute).UTC())
		r := f.callback(customer, redirect)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "expired") {
			t.Fatalf("expired state = %d", r.status)
		}
		mustContain(t, r.body, `data-testid="try-again"`)
	})
	if count() != before {
		t.Fatal("a refused callback created a connection")
	}
	if f.fake.Count(getresponsetest.EndpointTokenCode) != 1 {
		t.Fatalf("refused callbacks exchanged codes: %d exchanges", f.fake.Count(getresponsetest.EndpointTokenCode))
	}
}

func TestLinkPagesForUnknownAndExpiredLinks(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	anon := f.browser()
	for _, path := range []string{"/connect/doesnotexist0000000000000000", "/connect/x", "/connect/" + strings.Repeat("a", 80)} {
		r := anon.get(path)
		if r.status != http.StatusNotFound || !strings.Contains(r.body, "does not exist") {
			t.Errorf("GET %s = %d", path, r.status)
		}
	}
	link := f.makeLink("customer-1", "")
	f.store.DB().Model(&models.ConnectLink{}).Where("1 = 1").Update("expires_at", time.Now().Add(-time.Hour).UTC())
	path := strings.TrimPrefix(link, f.srv.URL)
	r := anon.get(path)
	if r.status != http.StatusGone || !strings.Contains(r.body, "has expired") {
		t.Fatalf("expired link = %d", r.status)
	}
	// Starting an expired link is refused too.
	r = anon.submit("/login", path, nil)
	if r.status != http.StatusGone {
		t.Fatalf("POST expired link = %d", r.status)
	}
	// A TTL out of range is a field error.
	r = f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/links", url.Values{"customer_ref": {"c"}, "ttl_days": {"365"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-ttl_days"`) {
		t.Fatalf("ttl 365 = %d", r.status)
	}
	r = f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/links", url.Values{"customer_ref": {""}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-customer_ref"`) {
		t.Fatalf("empty customer ref = %d", r.status)
	}
}
