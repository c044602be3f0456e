package handlers_test

import (
	"net/http"
	"net/url"
	"testing"
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
	for _, next := range bad {
		// Already signed in: /login?next=… redirects straight away.
		r := signedIn.get("/login?next=" + url.QueryEscape(next))
		if r.status != http.StatusSeeOther || r.location() != "/" {
			t.Errorf("signed in, next=%q → %d %q, want 303 /", next, r.status, r.location())
		}
		// Signing in.
		r = app.browser().submit("/login", "/login", url.Values{"email": {annEmail}, "password": {annPass}, "next": {next}})
		if r.status != http.StatusSeeOther || r.location() != "/" {
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
