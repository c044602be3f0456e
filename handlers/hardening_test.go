package handlers_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/config"
)

// internalService is a server on 127.0.0.2, an address the tests' GetResponse
// settings (127.0.0.1) do not name: it stands for a service inside the network
// grconnect runs in, which no app URL may reach.
func internalService(t *testing.T) (base string, hits *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	hits = &atomic.Int64{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"internal":"secret data"}`))
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, hits
}

// stealSession returns a browser holding only a copy of b's cookies: a stolen
// session, without the operator's password.
func stealSession(b *browser) *browser {
	thief := b.app.browser()
	u := mustURL(b.app.srv.URL)
	thief.client.Jar.SetCookies(u, b.client.Jar.Cookies(u))
	return thief
}

// expireReauth moves every session's last password confirmation back past the
// 10-minute window, as if the operator had confirmed it long ago.
func expireReauth(t *testing.T, a *testApp) {
	t.Helper()
	if err := a.store.DB().Exec("UPDATE operator_sessions SET reauth_at = ?", time.Now().Add(-11*time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
}

// TestAppURLsRefuseInternalAddresses (issue 21, finding 1): the app form refuses
// loopback, private, link-local and metadata API and authorize URLs with a clear
// error, as the webhook form does, and GRCONNECT_GETRESPONSE_ALLOW_PRIVATE lets
// private ones (never metadata) through.
func TestAppURLsRefuseInternalAddresses(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	internal, _ := internalService(t)
	edit := func(field, value string) response {
		form := appForm("Acme Templates")
		form.Set("client_id", f.clientID)
		form.Del("client_secret")
		form.Set(field, value)
		return f.op.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", form)
	}
	for _, u := range []string{internal + "/v3", "http://169.254.169.254/latest", "http://[fd00:ec2::254]/v3",
		"http://metadata.google.internal/v3", "http://10.0.0.5/v3", "http://[::ffff:127.0.0.2]/v3", "http://localhost:9/v3", "http://0.0.0.0:80/v3"} {
		for _, field := range []string{"api_url", "auth_url"} {
			r := edit(field, u)
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-`+field+`"`) ||
				!strings.Contains(r.body, "grconnect") {
				t.Errorf("%s=%s: %d, want 422 naming the problem", field, u, r.status)
			}
		}
	}
	r := edit("api_url", "http://169.254.169.254/latest")
	mustContain(t, r.body, "never calls link-local or cloud metadata addresses")
	r = edit("api_url", internal+"/v3")
	mustContain(t, r.body, "does not call loopback or private-network addresses", "GRCONNECT_GETRESPONSE_ALLOW_PRIVATE=true")
	if stored, _ := f.store.AppByID(t.Context(), f.appID); stored.APIURL != f.fake.APIURL() {
		t.Fatalf("API URL became %s", stored.APIURL)
	}

	// Allowed by the operator's own setting: private addresses, never metadata.
	open := newTestApp(t, func(c *config.Config) { c.GetResponseAllowPrivate = true })
	op := open.setup(annEmail, annPass)
	form := appForm("Lab")
	form.Set("api_url", internal+"/v3")
	createApp(t, op, form)
	form = appForm("Metadata")
	form.Set("api_url", "http://169.254.169.254/latest")
	if r := op.submit("/apps/new", "/apps", form); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("a metadata API URL with private addresses allowed = %d", r.status)
	}
}

// TestProxyCannotReachInternalAddresses (issue 21, finding 1, end to end): an app
// whose API URL leads inside the network (saved before this check existed, or a
// name resolving there) gets nothing through the proxy, the token route or the
// dashboard — the dial is refused — and no answer carries the address or port.
func TestProxyCannotReachInternalAddresses(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("cust-1", "")
	internal, hits := internalService(t)
	port := internal[strings.LastIndex(internal, ":")+1:]
	for _, apiURL := range []string{internal + "/v3", "http://localhost:" + port + "/v3"} {
		if err := f.store.DB().Exec("UPDATE apps SET api_url = ? WHERE id = ?", apiURL, f.appID).Error; err != nil {
			t.Fatal(err)
		}
		f.age(conn.ID, time.Hour) // out of the API's refresh cooldown
		for _, call := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/connections/" + conn.ID + "/proxy/accounts"},
			{http.MethodPost, "/api/v1/connections/" + conn.ID + "/refresh"},
		} {
			r := f.call(call.method, call.path, nil)
			if r.status != http.StatusServiceUnavailable {
				t.Errorf("%s %s via %s = %d, want 503\n%s", call.method, call.path, apiURL, r.status, r.body)
			}
			mustNotContain(t, r.body, port, "127.0.0.2", "dial", "connect: connection refused", "secret data")
		}
		page := f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
		mustNotContain(t, f.op.get(page.location()).body, port, "127.0.0.2", "secret data")
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the internal service received %d requests", n)
	}
	// The log keeps what was refused, for the operator.
	mustContain(t, f.logs.String(), "refused to connect to 127.0.0.2")
}

// TestProxyErrorsCarryNoDialDetails (issue 21, finding 1): a closed port on an
// allowed host answers 503 without the address, the port or the system's words,
// so the proxy is no port scanner; the log keeps them.
func TestProxyErrorsCarryNoDialDetails(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("cust-1", "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	port := closed[strings.LastIndex(closed, ":")+1:]
	if err := f.store.DB().Exec("UPDATE apps SET api_url = ? WHERE id = ?", "http://"+closed+"/v3", f.appID).Error; err != nil {
		t.Fatal(err)
	}
	r := f.call(http.MethodGet, "/api/v1/connections/"+conn.ID+"/proxy/accounts", nil)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("proxy to a closed port = %d\n%s", r.status, r.body)
	}
	mustContain(t, r.body, `"code":"getresponse_unavailable"`, "GetResponse did not answer")
	mustNotContain(t, r.body, port, "127.0.0.1", "dial", "refused")
	mustContain(t, f.logs.String(), closed)
}

// TestStolenSessionCannotRedirectRefreshTokens (issue 21, finding 3, end to end): a
// stolen session cookie without the operator's password can neither set a client
// secret of its choosing nor move the API URL, so "Refresh now" sends nothing to
// another host; with the password (asked once on the same form, good for ten
// minutes) the operator can.
func TestStolenSessionCannotRedirectRefreshTokens(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("cust-1", "")
	// Another host, on an address the guard allows (so that only re-authentication
	// stands in the way), that would take the refresh token.
	var otherHits atomic.Int64
	otherSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(otherSrv.Close)
	otherAPI := otherSrv.URL + "/v3"
	expireReauth(t, f.testApp)
	thief := stealSession(f.op)
	edit := func(b *browser, set map[string]string) response {
		form := appForm("Acme Templates")
		form.Set("client_id", f.clientID)
		form.Set("return_origins", "https://app.example.com")
		form.Del("client_secret")
		for k, v := range set {
			form.Set(k, v)
		}
		return b.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", form)
	}
	before, _ := f.store.AppByID(t.Context(), f.appID)
	// 1. A client secret of the thief's choosing: refused, before anything typed is
	// shown to GetResponse (the check of new credentials waits for the password).
	f.fake.ResetCounts()
	r := edit(thief, map[string]string{"client_secret": "attacker-chosen-secret"})
	if r.status != http.StatusForbidden {
		t.Fatalf("new secret without the password = %d, want 403", r.status)
	}
	if n := f.fake.Count(getresponsetest.EndpointToken); n != 0 {
		t.Fatalf("a secret typed without the password reached GetResponse's token endpoint %d times", n)
	}
	mustContain(t, r.body, `data-testid="error-current_password"`, "Enter your password")
	mustNotContain(t, r.body, "attacker-chosen-secret")
	// 2. Moving the API URL, "confirmed" with that secret: refused.
	r = edit(thief, map[string]string{"api_url": otherAPI, "client_secret": "attacker-chosen-secret"})
	if r.status != http.StatusForbidden {
		t.Fatalf("move without the password = %d, want 403", r.status)
	}
	// …and with a guessed password.
	r = edit(thief, map[string]string{"api_url": otherAPI, "current_password": "guess-guess-guess"})
	if r.status != http.StatusForbidden {
		t.Fatalf("move with a wrong password = %d, want 403", r.status)
	}
	mustContain(t, r.body, "This is not your password.")
	after, _ := f.store.AppByID(t.Context(), f.appID)
	if after.APIURL != before.APIURL || after.ClientSecretEnc != before.ClientSecretEnc {
		t.Fatalf("the app changed: %s", after.APIURL)
	}
	// 3. Refresh now: GetResponse itself is asked, the other host never.
	if r := thief.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil); r.status != http.StatusSeeOther {
		t.Fatalf("refresh now = %d", r.status)
	}
	if n := otherHits.Load(); n != 0 {
		t.Fatalf("the other host received %d requests", n)
	}
	var failed int64
	f.store.DB().Model(&models.AuditEntry{}).Where("action = ?", models.AuditReauthFailed).Count(&failed)
	if failed != 1 {
		t.Errorf("%d failed re-authentications audited, want 1", failed)
	}

	// The operator, with their password, moves the app; the next sensitive edit
	// within ten minutes needs no password again.
	r = edit(f.op, map[string]string{"api_url": otherAPI})
	if r.status != http.StatusSeeOther {
		t.Fatalf("move with the password = %d\n%s", r.status, r.body)
	}
	page := f.op.get("/apps/" + f.appID + "/edit").body
	mustContain(t, page, `data-testid="reauth-fresh"`)
	mustNotContain(t, page, `name="current_password"`)
	f.op.password = "" // no longer typed
	if r := edit(f.op, map[string]string{"api_url": f.fake.APIURL()}); r.status != http.StatusSeeOther {
		t.Fatalf("a second move within the window = %d", r.status)
	}
	var ev models.Event
	f.store.DB().Where("app_id = ? AND type = ?", f.appID, models.EventAppUpdated).Order("id DESC").First(&ev)
	mustContain(t, ev.Message, "confirmed with the operator's password")
	// Past the window, it is asked again.
	expireReauth(t, f.testApp)
	if r := edit(f.op, map[string]string{"api_url": otherAPI}); r.status != http.StatusForbidden {
		t.Fatalf("a move after the window = %d, want 403", r.status)
	}
}

// TestSensitiveActionsNeedThePassword (issue 21): a stolen session cannot mint API
// keys or add, remove or reset operators; each form asks for the password, and
// the check is throttled like a sign-in.
func TestSensitiveActionsNeedThePassword(t *testing.T) {
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	app.setupSecondOperator(ann, "bob@example.com", "bob password 1")
	bob, err := app.store.OperatorByEmail(t.Context(), "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	expireReauth(t, app)
	thief := stealSession(ann)
	for _, tc := range []struct{ page, action string }{
		{"/api-keys", "/api-keys"},
		{"/operators", "/operators"},
		{"/operators/" + bob.ID + "/remove", "/operators/" + bob.ID + "/remove"},
		{"/operators/" + bob.ID + "/reset-password", "/operators/" + bob.ID + "/reset-password"},
	} {
		mustContain(t, thief.get(tc.page).body, `name="current_password"`)
		r := thief.submit(tc.page, tc.action, url.Values{"name": {"thief"}, "email": {"eve@example.com"}, "password": {"eve password 1"}, "password_confirm": {"eve password 1"}})
		if r.status != http.StatusForbidden || !strings.Contains(r.body, `data-testid="error-current_password"`) {
			t.Errorf("POST %s without the password = %d", tc.action, r.status)
		}
		mustNotContain(t, r.body, "grc_", "/reset-password/")
	}
	var keys, resets, ops int64
	app.store.DB().Model(&models.APIKey{}).Count(&keys)
	app.store.DB().Model(&models.PasswordReset{}).Count(&resets)
	app.store.DB().Model(&models.Operator{}).Count(&ops)
	if keys != 0 || resets != 0 || ops != 2 {
		t.Fatalf("keys %d, reset links %d, operators %d: a stolen session changed something", keys, resets, ops)
	}
	// Guessing is throttled: five wrong passwords, then 429 even for the right one.
	for i := range 5 {
		if r := thief.submit("/api-keys", "/api-keys", url.Values{"name": {"k"}, "current_password": {"wrong password " + string(rune('a'+i))}}); r.status != http.StatusForbidden {
			t.Fatalf("guess %d = %d", i, r.status)
		}
	}
	r := thief.submit("/api-keys", "/api-keys", url.Values{"name": {"k"}, "current_password": {annPass}})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("sixth try = %d, want 429 with Retry-After", r.status)
	}
	mustContain(t, r.body, "Too many failed")
}

// makeResetLink has b make a reset link for operator id and returns its path.
func makeResetLink(t *testing.T, b *browser, id string) string {
	t.Helper()
	r := b.submit("/operators/"+id+"/reset-password", "/operators/"+id+"/reset-password", nil)
	m := resetLinkRe.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("make a reset link = %d", r.status)
	}
	return "/reset-password/" + m[1]
}

// TestResetLinksDieWithAccessChanges (issue 21, finding 2, end to end): a reset link
// made with a stolen session is in the audit log (who, for whom, from where), and
// stops working when its operator changes their password, signs out everywhere or
// is removed, and when the operator who made it signs out everywhere or changes
// their password; its use is audited too; it lives at most an hour.
func TestResetLinksDieWithAccessChanges(t *testing.T) {
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	const bobPass, carolPass = "bob password 1", "carol password 1"
	app.setupSecondOperator(ann, "bob@example.com", bobPass)
	app.setupSecondOperator(ann, "carol@example.com", carolPass)
	bob, _ := app.store.OperatorByEmail(t.Context(), "bob@example.com")
	carol, _ := app.store.OperatorByEmail(t.Context(), "carol@example.com")
	gone := func(path, after string) {
		t.Helper()
		if r := app.browser().get(path); r.status != http.StatusGone {
			t.Errorf("after %s the link answers %d, want 410", after, r.status)
		}
	}

	// The finding: a thief with Ann's (freshly confirmed) session makes a link for
	// Bob; Ann signs out everywhere; the link is dead — and its making is on record.
	thief := stealSession(ann)
	path := makeResetLink(t, thief, bob.ID)
	var made models.AuditEntry
	if err := app.store.DB().Where("action = ?", models.AuditResetLinkCreated).Last(&made).Error; err != nil {
		t.Fatal("the link's making is not in the audit log")
	}
	if made.Actor != annEmail || made.TargetID != bob.ID || made.IP != "127.0.0.1" || !strings.Contains(made.Details, "bob@example.com") {
		t.Errorf("audit entry = %+v", made)
	}
	var stored models.PasswordReset
	app.store.DB().Last(&stored)
	if life := stored.ExpiresAt.Sub(stored.CreatedAt); life > time.Hour {
		t.Errorf("a reset link lives %s, want at most an hour", life)
	}
	ann.submit("/account/sessions", "/account/sessions/end-all", nil)
	gone(path, "its maker signed out everywhere")
	ann = app.signIn(annEmail, annPass)

	// The victim changes their password: every link for them dies.
	bobBrowser := app.signIn("bob@example.com", bobPass)
	path = makeResetLink(t, ann, bob.ID)
	const bobNew = "bob new password 2"
	if r := bobBrowser.submit("/account/password", "/account/password", url.Values{"current": {bobPass}, "password": {bobNew}, "password_confirm": {bobNew}}); r.status != http.StatusSeeOther {
		t.Fatalf("bob's password change = %d", r.status)
	}
	gone(path, "its operator changed their password")

	// The victim signs out everywhere.
	path = makeResetLink(t, ann, bob.ID)
	bobBrowser.submit("/account/sessions", "/account/sessions/end-all", nil)
	gone(path, "its operator signed out everywhere")

	// The maker changes their password.
	path = makeResetLink(t, ann, carol.ID)
	const annNew = "ann new password 22"
	if r := ann.submit("/account/password", "/account/password", url.Values{"current": {annPass}, "password": {annNew}, "password_confirm": {annNew}}); r.status != http.StatusSeeOther {
		t.Fatalf("ann's password change = %d", r.status)
	}
	gone(path, "its maker changed their password")

	// Its operator is removed.
	path = makeResetLink(t, ann, carol.ID)
	if r := ann.submit("/operators/"+carol.ID+"/remove", "/operators/"+carol.ID+"/remove", nil); r.status != http.StatusSeeOther {
		t.Fatalf("remove carol = %d", r.status)
	}
	gone(path, "its operator was removed")

	// Used once: audited as its operator's, from the holder's address.
	path = makeResetLink(t, ann, bob.ID)
	const bobNewer = "bob newer password 3"
	if r := app.browser().submit(path, path, url.Values{"password": {bobNewer}, "password_confirm": {bobNewer}}); r.status != http.StatusSeeOther {
		t.Fatalf("use = %d", r.status)
	}
	var used models.AuditEntry
	if err := app.store.DB().Where("action = ?", models.AuditResetLinkUsed).Last(&used).Error; err != nil {
		t.Fatal("the link's use is not in the audit log")
	}
	if used.Actor != "bob@example.com" || used.TargetID != bob.ID || used.IP != "127.0.0.1" {
		t.Errorf("audit entry = %+v", used)
	}
	gone(path, "it was used")

	// Past its hour, a link is dead.
	path = makeResetLink(t, ann, bob.ID)
	app.store.DB().Exec("UPDATE password_resets SET expires_at = ? WHERE used_at IS NULL", time.Now().Add(-time.Second))
	gone(path, "its hour passed")
}

// TestBadBytesNeverReachAQuery (issue 21, finding 5; run on SQLite and PostgreSQL):
// a NUL byte or invalid UTF-8 in an API key, a sign-in e-mail, a filter, a path, a
// header or a JSON value is refused with 400 before any query — never a 500, never
// an ERROR line — and names refuse control and format characters.
func TestBadBytesNeverReachAQuery(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	raw := func(method, path, contentType, body string, header map[string]string) response {
		t.Helper()
		req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range header {
			req.Header[k] = []string{v}
		}
		r, err := f.roundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	bearer := map[string]string{"Authorization": "Bearer " + f.key}
	login := csrfRe.FindStringSubmatch(f.op.get("/").body)[1]
	for _, tc := range []struct {
		name string
		send func() response
	}{
		{"API key with invalid UTF-8", func() response {
			return raw(http.MethodGet, "/api/v1/connections", "", "", map[string]string{"Authorization": "Bearer grc_\xff\xfe\xfd_x"})
		}},
		{"connection ID with NUL in the path", func() response {
			return raw(http.MethodGet, "/api/v1/connections/con_%00x", "", "", bearer)
		}},
		{"customer_ref filter with NUL", func() response {
			return raw(http.MethodGet, "/api/v1/connections?customer_ref=a%00b", "", "", bearer)
		}},
		{"customer_ref filter with invalid UTF-8", func() response {
			return raw(http.MethodGet, "/api/v1/connections?customer_ref=%ff%fe", "", "", bearer)
		}},
		{"JSON value with NUL", func() response {
			return raw(http.MethodPost, "/api/v1/connect-sessions", "application/json", `{"app_id":"`+f.appID+`","customer_ref":"a\u0000b"}`, bearer)
		}},
		{"JSON key with NUL", func() response {
			return raw(http.MethodPost, "/api/v1/connect-sessions", "application/json", `{"app_id\u0000":"`+f.appID+`"}`, bearer)
		}},
		{"JSON with invalid UTF-8", func() response {
			return raw(http.MethodPost, "/api/v1/connect-sessions", "", "{\"app_id\":\""+f.appID+"\",\"customer_ref\":\"\xff\"}", bearer)
		}},
		{"sign-in e-mail with NUL", func() response {
			return f.browser().submit("/login", "/login", url.Values{"email": {"ann\x00@example.com"}, "password": {"whatever password"}})
		}},
		{"sign-in e-mail with invalid UTF-8", func() response {
			return f.browser().submit("/login", "/login", url.Values{"email": {"ann\xff@example.com"}, "password": {"whatever password"}})
		}},
		{"sign-in with a User-Agent of invalid UTF-8", func() response {
			return raw(http.MethodPost, "/login", "application/x-www-form-urlencoded", url.Values{"email": {annEmail}, "password": {annPass}, "_csrf": {login}}.Encode(),
				map[string]string{"User-Agent": "Mozilla \xff"})
		}},
		{"dashboard path with NUL", func() response { return f.op.get("/connections/con_%00") }},
		{"dashboard query with invalid UTF-8", func() response { return f.op.get("/connections?q=%ff") }},
	} {
		r := tc.send()
		if r.status != http.StatusBadRequest {
			t.Errorf("%s = %d, want 400\n%s", tc.name, r.status, r.body)
		}
	}
	if strings.Contains(f.logs.String(), "level=ERROR") {
		t.Errorf("bad input logged errors:\n%s", f.logs.String())
	}

	// Names: no control, zero-width or direction-changing characters.
	for _, name := range []string{"Acme\u200bTemplates", "Acme\u202eTemplates", "Acme\tTemplates", "Acme\u2028Templates"} {
		form := appForm(name)
		if r := f.op.submit("/apps/new", "/apps", form); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-name"`) {
			t.Errorf("app name %q = %d", name, r.status)
		}
		if r := f.op.submit("/api-keys", "/api-keys", url.Values{"name": {name}}); r.status != http.StatusUnprocessableEntity {
			t.Errorf("API key name %q = %d", name, r.status)
		}
		if r := f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": f.appID, "customer_ref": name}); r.status != http.StatusBadRequest ||
			!strings.Contains(r.body, `"customer_ref"`) {
			t.Errorf("customer ref %q = %d %s", name, r.status, r.body)
		}
		if r := f.op.submit("/operators", "/operators", url.Values{"email": {"e" + name[4:] + "@example.com"}, "role": {"viewer"}}); r.status != http.StatusUnprocessableEntity {
			t.Errorf("operator e-mail with %q = %d", name, r.status)
		}
	}
	// Ordinary names in other scripts still pass.
	if r := f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": f.appID, "customer_ref": "Zoë Łukasiewicz 山田"}); r.status != http.StatusCreated {
		t.Errorf("a customer ref in other scripts = %d %s", r.status, r.body)
	}
}

// TestUntrustedForwarderLoggedOnce (issue 21, finding 8): X-Forwarded-For from a
// peer not in GRCONNECT_TRUSTED_PROXIES is ignored and said once in the log (per
// peer), naming the setting; from a trusted proxy it is believed and not logged.
func TestUntrustedForwarderLoggedOnce(t *testing.T) {
	send := func(a *testApp) {
		for range 3 {
			req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/login", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			a.browser().do(req)
		}
	}
	app := newTestApp(t)
	send(app)
	logs := app.logs.String()
	if n := strings.Count(logs, "X-Forwarded-For ignored"); n != 1 {
		t.Fatalf("%d log lines about the ignored header, want 1:\n%s", n, logs)
	}
	mustContain(t, logs, "GRCONNECT_TRUSTED_PROXIES", "peer=127.0.0.1")
	if strings.Contains(logs, "ip=203.0.113.9") {
		t.Error("an untrusted peer's X-Forwarded-For was believed")
	}

	trusted := newTestApp(t, func(c *config.Config) {
		_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
		c.TrustedProxies = []*net.IPNet{loopback}
	})
	send(trusted)
	if logs := trusted.logs.String(); strings.Contains(logs, "X-Forwarded-For ignored") || !strings.Contains(logs, "ip=203.0.113.9") {
		t.Errorf("from a trusted proxy:\n%s", logs)
	}
}
