package handlers_test

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSessionsPageOnAPhone: the "Your sessions" page at 390 px wide has no
// horizontal scroll, passes the accessibility check, and "Sign out everywhere"
// ends this browser's session and the other one's.
func TestBrowserSessionsPageOnAPhone(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	app := newTestApp(t)
	app.setup(annEmail, annPass)
	other := app.signIn(annEmail, annPass) // a second session, in another "browser"
	phone := newSession(t, ctx, app.srv.URL, "operator on a phone", newScreenshots(t, "sessions"))
	phone.do("a 390 px wide screen", chromedp.EmulateViewport(390, 844))

	phone.open("/login")
	phone.fill("#email", annEmail)
	phone.fill("#password", annPass)
	phone.click(`[data-testid="login-submit"]`)
	phone.wantStatus(phone.open("/account/sessions"), 200, "the sessions page")
	phone.wantText("h1", "Your sessions")
	phone.wantText(`[data-testid="this-session"]`, "this browser")
	if n := phone.count(`[data-testid="session"]`); n != 3 {
		phone.fatalf("%d sessions listed, want 3 (setup, the other browser, this one)", n)
	}
	if over := evalIn[float64](phone, `document.documentElement.scrollWidth - window.innerWidth`); over > 0 {
		phone.fatalf("the page is %v px wider than a 390 px screen", over)
	}
	phone.page("sessions-390px")
	phone.click(`[data-testid="end-all-sessions"]`)
	if p := phone.path(); p != "/login" {
		phone.fatalf("sign out everywhere led to %s, want /login", p)
	}
	if r := other.get("/"); r.status != 303 {
		t.Fatalf("the other browser is still signed in: %d", r.status)
	}
}
