package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/infra/config"
)

const (
	annEmail = "ann@example.com"
	annPass  = "correct horse battery"
)

func TestFreshInstallGoesToSetup(t *testing.T) {
	app := newTestApp(t)
	b := app.browser()
	for _, path := range []string{"/", "/login", "/apps"} {
		if r := b.get(path); r.status != http.StatusSeeOther || r.location() != "/setup" {
			t.Errorf("GET %s on a fresh install = %d → %q, want 303 → /setup", path, r.status, r.location())
		}
	}
	// Without the setup URL's token the page says where to find it, and shows no form.
	r := b.get("/setup")
	if r.status != http.StatusForbidden {
		t.Fatalf("GET /setup without the token = %d, want 403", r.status)
	}
	mustContain(t, r.body, `data-testid="setup-needs-token"`, "grconnect operator create")
	mustNotContain(t, r.body, `<label for="password">`)
	r = b.get(app.setupURL())
	if r.status != http.StatusOK {
		t.Fatalf("GET the setup URL = %d", r.status)
	}
	mustContain(t, r.body, `name="_csrf"`, `name="setup_token"`, `<label for="email">`, `<label for="password">`)
}

func TestSetupValidatesThenSignsIn(t *testing.T) {
	app := newTestApp(t)
	b := app.browser()
	cases := []struct {
		name        string
		form        url.Values
		field, text string
	}{
		{"bad email", url.Values{"email": {"not-an-email"}, "password": {annPass}, "password_confirm": {annPass}}, "email", "valid email"},
		{"short password", url.Values{"email": {annEmail}, "password": {"short"}, "password_confirm": {"short"}}, "password", "at least 10"},
		{"mismatch", url.Values{"email": {annEmail}, "password": {annPass}, "password_confirm": {annPass + "x"}}, "password_confirm", "differ"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("setup_token", app.built.Operators.SetupToken())
			r := b.submit(app.setupURL(), "/setup", tc.form)
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("status = %d, want 422", r.status)
			}
			mustContain(t, r.body, `data-testid="error-`+tc.field+`"`, tc.text, `aria-invalid="true"`)
		})
	}
	if n, _ := app.store.CountOperators(t.Context()); n != 0 {
		t.Fatalf("invalid setups created %d operators", n)
	}
	b = app.setup(annEmail, annPass)
	r := b.get("/")
	if r.status != http.StatusOK {
		t.Fatalf("overview after setup = %d", r.status)
	}
	mustContain(t, r.body, "Register your GetResponse app", annEmail, "Welcome!")
	// Setup is gone once an operator exists, for everyone.
	if r := app.browser().get("/setup"); r.status != http.StatusNotFound {
		t.Fatalf("GET /setup after setup = %d, want 404", r.status)
	}
	if r := b.submit("/", "/setup", url.Values{"email": {"eve@example.com"}, "password": {annPass}, "password_confirm": {annPass}}); r.status != http.StatusNotFound {
		t.Fatalf("POST /setup after setup = %d, want 404", r.status)
	}
}

func TestPostWithoutCSRFIsForbidden(t *testing.T) {
	app := newTestApp(t)
	b := app.setup(annEmail, annPass)
	for _, path := range []string{"/logout", "/apps", "/operators", "/account/password", "/login"} {
		r := b.post(path, url.Values{"email": {"x@example.com"}})
		if r.status != http.StatusForbidden {
			t.Errorf("POST %s without CSRF = %d, want 403", path, r.status)
		}
		r = b.post(path, url.Values{"_csrf": {"forged-token-value-forged-token"}})
		if r.status != http.StatusForbidden {
			t.Errorf("POST %s with a forged CSRF token = %d, want 403", path, r.status)
		}
	}
	// Still signed in: the refused logout did nothing.
	if r := b.get("/"); r.status != http.StatusOK {
		t.Fatalf("after refused POSTs, GET / = %d", r.status)
	}
}

func TestOperatorPagesNeedASession(t *testing.T) {
	app := newTestApp(t)
	app.setup(annEmail, annPass)
	anon := app.browser()
	for _, path := range []string{"/", "/apps", "/apps/new", "/apps/app_x", "/apps/app_x/edit", "/apps/app_x/delete", "/operators", "/operators/op_x/remove", "/account/password", "/no-such-page"} {
		r := anon.get(path)
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login") {
			t.Errorf("anonymous GET %s = %d → %q, want 303 → /login", path, r.status, r.location())
		}
	}
	// POSTs without a session are refused too (CSRF first, then the session).
	r := anon.submit("/login", "/apps", url.Values{"name": {"x"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login") {
		t.Errorf("anonymous POST /apps = %d → %q", r.status, r.location())
	}
	// A tampered session cookie is no session.
	u, _ := url.Parse(app.srv.URL)
	anon.client.Jar.SetCookies(u, []*http.Cookie{{Name: "grconnect_session", Value: "MTcwMDAwMDAwMHxmb3JnZWQ="}})
	if r := anon.get("/"); r.status != http.StatusSeeOther {
		t.Errorf("forged session cookie: GET / = %d", r.status)
	}
}

func TestLoginLogoutAndNext(t *testing.T) {
	app := newTestApp(t)
	app.setup(annEmail, annPass)
	b := app.browser()
	r := b.get("/operators")
	if r.location() != "/login?next=%2Foperators" {
		t.Fatalf("redirect = %q", r.location())
	}
	r = b.submit("/login?next=%2Foperators", "/login", url.Values{"email": {"ANN@example.com"}, "password": {"wrong password!"}, "next": {"/operators"}})
	if r.status != http.StatusUnauthorized {
		t.Fatalf("wrong password = %d, want 401", r.status)
	}
	mustContain(t, r.body, "Wrong email or password", `value="ANN@example.com"`)
	mustNotContain(t, r.body, "wrong password!")
	r = b.submit("/login", "/login", url.Values{"email": {"ANN@example.com"}, "password": {annPass}, "next": {"/operators"}})
	if r.status != http.StatusSeeOther || r.location() != "/operators" {
		t.Fatalf("sign-in = %d → %q", r.status, r.location())
	}
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "grconnect_session=") && (!strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax")) {
			t.Errorf("session cookie lacks HttpOnly or SameSite=Lax: %s", c)
		}
		if strings.HasPrefix(c, "grconnect_session=") && strings.Contains(c, "Secure") {
			t.Errorf("session cookie is Secure on an http base URL: %s", c)
		}
	}
	if r := b.get("/operators"); r.status != http.StatusOK {
		t.Fatalf("signed-in GET /operators = %d", r.status)
	}
	if r := b.submit("/", "/logout", nil); r.status != http.StatusSeeOther || r.location() != "/login?signed_out=1" {
		t.Fatalf("logout = %d → %q", r.status, r.location())
	}
	mustContain(t, b.get("/login?signed_out=1").body, `data-testid="login-notice">You are signed out.<`)
	mustNotContain(t, b.get("/login").body, "You are signed out.")
	if r := b.get("/operators"); r.status != http.StatusSeeOther {
		t.Fatalf("after logout GET /operators = %d", r.status)
	}
	// next never leaves the site.
	for _, next := range []string{"//evil.example", "https://evil.example/", "/\\evil.example"} {
		r := app.browser().submit("/login", "/login", url.Values{"email": {annEmail}, "password": {annPass}, "next": {next}})
		if r.location() != "/" {
			t.Errorf("next=%q redirected to %q", next, r.location())
		}
	}
}

func TestSecureCookiesOnHTTPS(t *testing.T) {
	app := newTestApp(t, func(c *config.Config) { c.BaseURL = "https://connect.example.com" })
	b := app.browser()
	r := b.get("/setup")
	for _, c := range r.header.Values("Set-Cookie") {
		if !strings.Contains(c, "Secure") {
			t.Errorf("cookie without Secure on an https base URL: %s", c)
		}
	}
}

func TestFailedSignInsAreThrottled(t *testing.T) {
	app := newTestApp(t)
	app.setup(annEmail, annPass)
	b := app.browser()
	for i := range 5 {
		if r := b.submit("/login", "/login", url.Values{"email": {annEmail}, "password": {"nope nope nope"}}); r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d = %d", i+1, r.status)
		}
	}
	// Now even the right password is refused from a new browser until the window passes.
	r := b.submit("/login", "/login", url.Values{"email": {annEmail}, "password": {annPass}})
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("sixth attempt = %d, want 429", r.status)
	}
	mustContain(t, r.body, "Too many failed sign-ins", "a browser you used before")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// The address has its own, larger limit: other emails from it are refused too.
	for i := range 4 {
		if r := b.submit("/login", "/login", url.Values{"email": {"bob@example.com"}, "password": {"whatever12345"}}); r.status != http.StatusUnauthorized {
			t.Fatalf("other email, attempt %d = %d", i+1, r.status)
		}
	}
	r = b.submit("/login", "/login", url.Values{"email": {"carol@example.com"}, "password": {"whatever12345"}})
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("the address's eleventh attempt = %d, want 429", r.status)
	}
}

func TestOperatorsAddRemoveAndPassword(t *testing.T) {
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	// Validation shows next to the field.
	r := ann.submit("/operators", "/operators", url.Values{"email": {annEmail}, "role": {"admin"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("duplicate operator = %d", r.status)
	}
	mustContain(t, r.body, "already exists")
	app.setupSecondOperator(ann, "bob@example.com", "bob password 1")
	mustContain(t, ann.get("/operators").body, "bob@example.com")
	bob := app.signIn("bob@example.com", "bob password 1")
	bobOp, _ := app.store.OperatorByEmail(t.Context(), "bob@example.com")
	annOp, _ := app.store.OperatorByEmail(t.Context(), annEmail)

	// Nobody removes themself.
	r = ann.submit("/operators", "/operators/"+annOp.ID+"/remove", nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("self-remove = %d", r.status)
	}
	mustContain(t, ann.get("/operators").body, "cannot remove yourself")

	// Removing Bob ends his session at once.
	if r := bob.get("/"); r.status != http.StatusOK {
		t.Fatalf("bob before removal = %d", r.status)
	}
	mustContain(t, ann.get("/operators/"+bobOp.ID+"/remove").body, "Remove bob@example.com?")
	if r := ann.submit("/operators/"+bobOp.ID+"/remove", "/operators/"+bobOp.ID+"/remove", nil); r.status != http.StatusSeeOther {
		t.Fatalf("remove bob = %d", r.status)
	}
	if r := bob.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("removed operator's session still works: %d", r.status)
	}
	// The last operator stays.
	if err := app.store.DeleteOperator(t.Context(), annOp.ID); err == nil {
		t.Fatal("the store removed the last operator")
	}

	// A password change ends the operator's other sessions but keeps this one.
	other := app.signIn(annEmail, annPass)
	r = ann.submit("/account/password", "/account/password", url.Values{"current": {"not it at all"}, "password": {"new password 2"}, "password_confirm": {"new password 2"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("wrong current password = %d", r.status)
	}
	mustContain(t, r.body, "not your current password")
	r = ann.submit("/account/password", "/account/password", url.Values{"current": {annPass}, "password": {"new password 2"}, "password_confirm": {"new password 2"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("change password = %d\n%s", r.status, r.body)
	}
	if r := ann.get("/"); r.status != http.StatusOK {
		t.Fatalf("own session after password change = %d", r.status)
	}
	if r := other.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("other session after password change = %d, want 303", r.status)
	}
	app.signIn(annEmail, "new password 2")
	for _, page := range app.pages {
		mustNotContain(t, page, annPass, "bob password 1", "new password 2")
	}
}
