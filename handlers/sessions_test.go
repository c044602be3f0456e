package handlers_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services/infra/config"
)

// cookieOf returns the value of the named cookie b holds for the test server.
func (b *browser) cookieOf(name string) string {
	for _, c := range b.client.Jar.Cookies(mustURL(b.app.srv.URL)) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// copyCookie gives a fresh browser the named cookie of b, as a thief would.
func (a *testApp) withCookie(name, value string) *browser {
	thief := a.browser()
	thief.client.Jar.SetCookies(mustURL(a.srv.URL), []*http.Cookie{{Name: name, Value: value, Path: "/"}})
	return thief
}

// TestSignOutEndsACopiedSession: a session cookie copied before sign-out no
// longer works after it (the session lives on the server, not in the cookie).
func TestSignOutEndsACopiedSession(t *testing.T) {
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	stolen := ann.cookieOf("grconnect_session")
	if stolen == "" {
		t.Fatal("no session cookie")
	}
	thief := app.withCookie("grconnect_session", stolen)
	if r := thief.get("/"); r.status != http.StatusOK {
		t.Fatalf("the copied cookie before sign-out = %d, want 200", r.status)
	}
	if r := ann.submit("/", "/logout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("sign out = %d", r.status)
	}
	if r := thief.get("/"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login") {
		t.Fatalf("the copied cookie after sign-out = %d %q, want 303 /login", r.status, r.location())
	}
	// The cookie holds a signed random token only: nothing about the operator.
	raw, err := base64.URLEncoding.DecodeString(stolen)
	if err != nil {
		t.Fatalf("session cookie %q is not gorilla's signed form: %v", stolen, err)
	}
	if me, _ := app.store.OperatorByEmail(t.Context(), annEmail); bytes.Contains(raw, []byte(me.ID)) || bytes.Contains(raw, []byte(annEmail)) || len(stolen) > 200 {
		t.Errorf("session cookie %q carries more than a signed token", stolen)
	}
}

// TestSessionCookieIsSigned: the cookie's token is signed with a key derived from
// the install's key: a cookie altered by one character, or made for another install,
// opens no session, and the browser is told to forget it.
func TestSessionCookieIsSigned(t *testing.T) {
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	good := ann.cookieOf("grconnect_session")
	if r := app.withCookie("grconnect_session", good).get("/"); r.status != http.StatusOK {
		t.Fatalf("the cookie itself = %d, want 200", r.status)
	}
	i, swap := len(good)/2, "A"
	if good[i] == 'A' {
		swap = "B"
	}
	flipped := good[:i] + swap + good[i+1:]
	other := newTestApp(t).setup(annEmail, annPass).cookieOf("grconnect_session")
	for name, value := range map[string]string{"altered": flipped, "another install's": other} {
		thief := app.withCookie("grconnect_session", value)
		r := thief.get("/")
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login") {
			t.Errorf("%s cookie = %d %q, want 303 /login", name, r.status, r.location())
		}
		if thief.cookieOf("grconnect_session") != "" {
			t.Errorf("%s cookie: the browser was not told to forget it", name)
		}
	}
}

// TestSessionLifetimeIsAbsolute: activity (even requests that set a flash) never
// extends a session past 7 days; 12 idle hours end it sooner.
func TestSessionLifetimeIsAbsolute(t *testing.T) {
	app := newTestApp(t)
	clock := modelstest.NewClock(time.Now().UTC())
	app.built.Sessions.Now = clock.Now
	ann := app.setup(annEmail, annPass)
	me, _ := app.store.OperatorByEmail(t.Context(), annEmail)
	// Busy every 6 hours for a week, with requests that set a flash message.
	for elapsed := time.Duration(0); elapsed < 7*24*time.Hour-6*time.Hour; elapsed += 6 * time.Hour {
		clock.Advance(6 * time.Hour)
		if r := ann.submit("/operators", "/operators/"+me.ID+"/remove", nil); r.status != http.StatusSeeOther || r.location() != "/operators" {
			t.Fatalf("after %v of activity: %d %q", elapsed+6*time.Hour, r.status, r.location())
		}
		mustContain(t, ann.get("/operators").body, "cannot remove yourself")
	}
	clock.Advance(7 * time.Hour) // now past 7 days since sign-in
	if r := ann.get("/"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login") {
		t.Fatalf("a session older than 7 days = %d %q, want 303 /login", r.status, r.location())
	}
	// Idle: 12 hours without a request end a session.
	bob := app.signIn(annEmail, annPass)
	clock.Advance(11 * time.Hour)
	if r := bob.get("/"); r.status != http.StatusOK {
		t.Fatalf("after 11 idle hours = %d", r.status)
	}
	clock.Advance(12*time.Hour + time.Minute)
	if r := bob.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("after 12 idle hours = %d, want 303", r.status)
	}
}

// TestSessionsPage lists the operator's own sessions and signs out one of them,
// or all of them.
func TestSessionsPage(t *testing.T) {
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	laptop := app.signIn(annEmail, annPass)
	app.setupSecondOperator(ann, "bob@example.com", "bob password 1")
	bob := app.signIn("bob@example.com", "bob password 1")

	r := ann.get("/account/sessions")
	if r.status != http.StatusOK {
		t.Fatalf("GET /account/sessions = %d", r.status)
	}
	if n := strings.Count(r.body, `data-testid="session"`); n != 2 {
		t.Fatalf("%d sessions listed, want ann's 2 (not bob's)", n)
	}
	mustContain(t, r.body, `data-testid="this-session"`, `name="_csrf"`, "Sign out everywhere", "Go-http-client")
	if strings.Count(r.body, `data-testid="end-session"`) != 1 {
		t.Error("want one 'sign out this session' button: the other browser's")
	}
	// Sign out the laptop from here.
	m := regexpMust(`action="/account/sessions/(ses_[a-z2-7]+)/end"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatal("no end-session form")
	}
	if r := ann.submit("/account/sessions", "/account/sessions/"+m[1]+"/end", nil); r.status != http.StatusSeeOther {
		t.Fatalf("end session = %d", r.status)
	}
	if r := laptop.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("the ended session still works: %d", r.status)
	}
	mustContain(t, ann.get("/account/sessions").body, "That session was signed out")
	// Bob cannot end Ann's session.
	annSession := regexpMust(`id="session-(ses_[a-z2-7]+)"`).FindStringSubmatch(ann.get("/account/sessions").body)
	bob.submit("/account/sessions", "/account/sessions/"+annSession[1]+"/end", nil)
	if r := ann.get("/"); r.status != http.StatusOK {
		t.Fatalf("another operator ended ann's session: %d", r.status)
	}
	// Sign out everywhere.
	phone := app.signIn(annEmail, annPass)
	if r := ann.submit("/account/sessions", "/account/sessions/end-all", nil); r.status != http.StatusSeeOther || r.location() != "/login" {
		t.Fatalf("sign out everywhere = %d %q", r.status, r.location())
	}
	for name, b := range map[string]*browser{"this browser": ann, "the phone": phone} {
		if r := b.get("/"); r.status != http.StatusSeeOther {
			t.Errorf("%s still signed in after 'sign out everywhere': %d", name, r.status)
		}
	}
	if r := bob.get("/"); r.status != http.StatusOK {
		t.Errorf("bob was signed out by ann's 'sign out everywhere': %d", r.status)
	}
	// Without a session the page is not there.
	if r := app.browser().get("/account/sessions"); r.status != http.StatusSeeOther {
		t.Errorf("anonymous GET /account/sessions = %d", r.status)
	}
}

// setupSecondOperator adds an admin: by invites them on the operators page and
// they accept the invitation with password.
func (a *testApp) setupSecondOperator(by *browser, email, password string) {
	a.t.Helper()
	a.addOperator(by, email, password, models.RoleAdmin)
}

// TestCSRFTokenIsTiedToTheSession: a CSRF cookie planted by a sibling site (with a
// form carrying the same value), or another session's token, is refused.
func TestCSRFTokenIsTiedToTheSession(t *testing.T) {
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	// A sibling subdomain plants its own CSRF cookie and posts a matching token.
	const planted = "planted-csrf-token-planted-csrf-token"
	ann.client.Jar.SetCookies(mustURL(app.srv.URL), []*http.Cookie{{Name: "grconnect_csrf", Value: planted, Path: "/"}})
	if r := ann.post("/api-keys", url.Values{"_csrf": {planted}, "name": {"evil"}}); r.status != http.StatusForbidden {
		t.Fatalf("a planted CSRF cookie and token = %d, want 403", r.status)
	}
	// Another browser's session token does not work in this one.
	other := app.signIn(annEmail, annPass)
	m := csrfRe.FindStringSubmatch(other.get("/api-keys").body)
	if r := ann.post("/api-keys", url.Values{"_csrf": {m[1]}, "name": {"evil"}}); r.status != http.StatusForbidden {
		t.Fatalf("another session's CSRF token = %d, want 403", r.status)
	}
	// Its own works, and changes with a new sign-in.
	before := csrfRe.FindStringSubmatch(ann.get("/api-keys").body)[1]
	if r := ann.submit("/api-keys", "/api-keys", url.Values{"name": {"fine"}}); r.status != http.StatusOK && r.status != http.StatusSeeOther {
		t.Fatalf("own token = %d", r.status)
	}
	again := app.signIn(annEmail, annPass)
	if after := csrfRe.FindStringSubmatch(again.get("/api-keys").body)[1]; after == before {
		t.Error("two sessions share a CSRF token")
	}
}

// TestSameSiteRequestsAreRefused: a state-changing request the browser marks as
// coming from another site, even a sibling subdomain, is refused whatever its token.
func TestSameSiteRequestsAreRefused(t *testing.T) {
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	for _, site := range []string{"same-site", "cross-site"} {
		token := csrfRe.FindStringSubmatch(ann.get("/api-keys").body)[1]
		req, _ := http.NewRequest(http.MethodPost, app.srv.URL+"/api-keys", strings.NewReader(url.Values{"_csrf": {token}, "name": {"x"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", site)
		if r := ann.do(req); r.status != http.StatusForbidden {
			t.Errorf("Sec-Fetch-Site: %s = %d, want 403", site, r.status)
		}
	}
	token := csrfRe.FindStringSubmatch(ann.get("/api-keys").body)[1]
	req, _ := http.NewRequest(http.MethodPost, app.srv.URL+"/api-keys", strings.NewReader(url.Values{"_csrf": {token}, "name": {"x"}, "current_password": {annPass}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if r := ann.do(req); r.status == http.StatusForbidden {
		t.Errorf("Sec-Fetch-Site: same-origin = 403")
	}
}

// TestHostPrefixedCookiesOnHTTPS: on an https base URL grconnect's cookies carry
// the __Host- prefix (Secure, path /, no Domain), which a sibling subdomain cannot set.
func TestHostPrefixedCookiesOnHTTPS(t *testing.T) {
	app := newTestApp(t, func(c *config.Config) { c.BaseURL = "https://connect.example.com" })
	r := app.browser().get(app.setupURL())
	var names []string
	for _, c := range r.header.Values("Set-Cookie") {
		name, _, _ := strings.Cut(c, "=")
		names = append(names, name)
		if !strings.HasPrefix(name, "__Host-") || !strings.Contains(c, "Path=/") || !strings.Contains(c, "Secure") || strings.Contains(c, "Domain=") {
			t.Errorf("cookie is not a __Host- cookie: %s", c)
		}
	}
	if len(names) == 0 {
		t.Fatal("no cookie set")
	}
	// Plain http keeps the plain names (browsers refuse __Host- without https).
	plain := newTestApp(t)
	for _, c := range plain.browser().get(plain.setupURL()).header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "__Host-") {
			t.Errorf("a __Host- cookie on http: %s", c)
		}
	}
}

func regexpMust(expr string) *regexp.Regexp { return regexp.MustCompile(expr) }
