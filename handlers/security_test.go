package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/config"
)

// TestNextNeverLeavesTheSite: a next parameter with a tab, NUL, vertical tab,
// backslash or a second slash is not followed, signed in or signing in.
func TestNextNeverLeavesTheSite(t *testing.T) {
	app := newTestApp(t)
	signedIn := app.setup(annEmail, annPass)
	bad := []string{
		"/\t/evil.example", "/\x00/evil.example", "/\v/evil.example", "/\n/evil.example", "/ /evil.example",
		"/\x7f/evil.example", "/\\evil.example", "//evil.example", "https://evil.example/", "evil.example",
	}
	// A NUL is refused with the whole request (400), before any redirect.
	stays := func(r response, next string) bool {
		return r.status == http.StatusSeeOther && r.location() == "/" || strings.Contains(next, "\x00") && r.status == http.StatusBadRequest
	}
	for _, next := range bad {
		// Already signed in: /login?next=… redirects straight away.
		r := signedIn.get("/login?next=" + url.QueryEscape(next))
		if !stays(r, next) {
			t.Errorf("signed in, next=%q → %d %q, want 303 /", next, r.status, r.location())
		}
		// Signing in.
		r = app.browser().submit("/login", "/login", url.Values{"email": {annEmail}, "password": {annPass}, "next": {next}})
		if !stays(r, next) {
			t.Errorf("signing in, next=%q → %d %q, want 303 /", next, r.status, r.location())
		}
	}
	// The raw request the review sent: /login?next=/%09/evil.example.
	if r := signedIn.get("/login?next=/%09/evil.example"); r.location() != "/" {
		t.Errorf("GET /login?next=/%%09/evil.example → %q, want /", r.location())
	}
	// A local path with a query still works.
	if r := signedIn.get("/login?next=" + url.QueryEscape("/connections?status=active")); r.location() != "/connections?status=active" {
		t.Errorf("a local next was not kept: %q", r.location())
	}
}

// TestSecurityHeaders: a Permissions-Policy and form-action 'self' everywhere, and
// HSTS only when the base URL is https.
func TestSecurityHeaders(t *testing.T) {
	plain := newTestApp(t)
	r := plain.browser().get("/login")
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "form-action 'self'") {
		t.Errorf("CSP lacks form-action 'self': %q", csp)
	}
	if pp := r.header.Get("Permissions-Policy"); !strings.Contains(pp, "camera=()") || !strings.Contains(pp, "geolocation=()") {
		t.Errorf("Permissions-Policy = %q", pp)
	}
	if h := r.header.Get("Strict-Transport-Security"); h != "" {
		t.Errorf("HSTS on an http base URL: %q", h)
	}
	secure := newTestApp(t, func(c *config.Config) { c.BaseURL = "https://connect.example.com" })
	if h := secure.browser().get("/healthz").header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
		t.Errorf("no HSTS on an https base URL: %q", h)
	}
}

// TestRequestLogShowsRoutesNotTokens: the request log names the route pattern, so a
// connect link's token never reaches the log.
func TestRequestLogShowsRoutesNotTokens(t *testing.T) {
	app := newTestApp(t)
	const token = "sEcReTlInKtOkEn0123456789abcdefghij"
	app.browser().get("/connect/" + token)
	app.browser().get("/oauth/callback?state=" + token + "&code=" + token)
	logs := app.logs.String()
	if strings.Contains(logs, token) {
		t.Errorf("the log shows a token:\n%s", logs)
	}
	if !strings.Contains(logs, "route=/connect/:token") {
		t.Errorf("the log lacks the route pattern:\n%s", logs)
	}
}

// TestMetricsToken: with GRCONNECT_METRICS_TOKEN set, /metrics needs it as a bearer token.
func TestMetricsToken(t *testing.T) {
	const token = "scrape-token-0123456789"
	app := newTestApp(t, func(c *config.Config) { c.MetricsToken = token })
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + token, token} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		app.srv.Config.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "grconnect_") {
			t.Errorf("Authorization %q: /metrics = %d", auth, rec.Code)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	app.srv.Config.Handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "grconnect_connections") {
		t.Fatalf("with the token: /metrics = %d", rec.Code)
	}
	// Without the setting /metrics stays open (the default).
	scrape(t, newTestApp(t))
}

// TestConnectPageFormActionAllowsTheAuthorizeOrigin: the connect page's form
// redirects to the app's authorize URL, so its form-action names that origin too.
func TestConnectPageFormActionAllowsTheAuthorizeOrigin(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	link := f.makeLink("customer-1", "")
	r := f.browser().get(strings.TrimPrefix(link, f.srv.URL))
	au := mustURL(f.fake.AuthURL())
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+au.Scheme+"://"+au.Host) {
		t.Errorf("connect page CSP = %q, want form-action 'self' %s://%s", csp, au.Scheme, au.Host)
	}
}
