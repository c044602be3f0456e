package handlers_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/grconnect/grconnect/models"
)

// These tests drive grconnect in demo mode (a simulated GetResponse served by
// grconnect itself) through a real headless Chromium: see browser_helpers_test.go.

// TestBrowserWholeStory walks the product's story as the operator and a customer,
// in two browser contexts, checking every page for accessibility and taking a
// screenshot of each step.
func TestBrowserWholeStory(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	app := newDemoApp(t)
	shots := newScreenshots(t, "story")
	op := newSession(t, ctx, app.srv.URL, "operator", shots)

	// First run: /login sends a fresh install to /setup.
	op.open("/login")
	if p := op.path(); p != "/setup" {
		op.fatalf("a fresh install shows %s, want /setup", p)
	}
	op.wantText("h1", "Welcome to grconnect")
	// Without the setup URL from the log, the page says where to find it.
	op.wantText(`[data-testid="setup-needs-token"]`, "setup link")
	op.page("setup-needs-token")
	op.open(app.setupURL())
	op.wantText("h1", "Welcome to grconnect")
	op.page("setup")
	op.fill("#email", annEmail)
	op.fill("#password", annPass)
	op.fill("#password_confirm", annPass+" typo")
	op.wantStatus(op.click(`[data-testid="setup-submit"]`), 422, "setup with mismatched passwords")
	op.wantText("#password_confirm-error", "The two passwords differ.")
	op.page("setup-error")
	op.fill("#password", annPass)
	op.fill("#password_confirm", annPass)
	op.click(`[data-testid="setup-submit"]`)
	if p := op.path(); p != "/" {
		op.fatalf("setup led to %s, want the overview", p)
	}
	// No welcome flash: the first-run checklist says what comes next.
	op.wantText(`[data-testid="setup-checklist"]`, "Get started", "Register your GetResponse app", "Create an API key")
	op.wantText(`.who`, annEmail)

	// Sign out, and back in through /login from a page that needs it.
	op.click(`[data-testid="logout"]`)
	if p := op.path(); p != "/login" {
		op.fatalf("signing out led to %s, want /login", p)
	}
	op.wantText(`[data-testid="login-notice"]`, "You are signed out.")
	op.open("/apps")
	if p := op.path(); p != "/login" {
		op.fatalf("signed out, /apps shows %s, want /login", p)
	}
	op.page("login")
	op.fill("#email", annEmail)
	op.fill("#password", annPass)
	op.click(`[data-testid="login-submit"]`)
	if p := op.path(); p != "/apps" {
		op.fatalf("signing in led to %s, want back to /apps", p)
	}
	op.wantText(`[data-testid="apps-table"]`, "Demo app")
	op.wantText(`[data-testid="demo-banner"]`, "Demo")
	op.page("apps")

	// Register an app through the form (the flow below uses the demo app).
	op.click(`[data-testid="new-app"]`)
	op.wantText("h1", "Register a GetResponse app")
	if v := op.value("#redirect-url"); v != app.srv.URL+"/oauth/callback" {
		op.fatalf("redirect URL box shows %q", v)
	}
	op.page("app-new")
	op.fill("#name", "MyTemplateMaker")
	op.fill("#client_id", "mtm-client-id")
	op.fill("#client_secret", "mtm-client-secret-0123456789")
	op.wantStatus(op.click(`[data-testid="app-submit"]`), 200, "register an app")
	op.wantText(`[data-testid="app-name"]`, "MyTemplateMaker")
	op.wantText(`[data-testid="flash"]`, "App registered")
	op.wantText(`[data-testid="client-id"]`, "mtm-client-id")
	if body := evalIn[string](op, "document.body.innerText"); strings.Contains(body, "mtm-client-secret-0123456789") {
		op.fatalf("the app page shows the client secret")
	}
	op.page("app-created")

	// Open the demo app and make a connect link for a customer.
	op.open("/apps")
	if n := op.count(`[data-testid="apps-table"] tbody tr`); n != 2 {
		op.fatalf("apps table has %d rows, want the demo app and MyTemplateMaker", n)
	}
	op.follow("open the demo app", chromedp.Click(chromedp.Search(`//table[@data-testid="apps-table"]//a[normalize-space()="Demo app"]`), chromedp.NodeVisible))
	op.wantText(`[data-testid="app-name"]`, "Demo app")
	op.page("app-demo")
	op.fill("#customer_ref", "customer-42")
	op.click(`[data-testid="create-link"]`)
	op.wantText(`[data-testid="flash"]`, "Connect link created for customer-42")
	op.wantText("h1", "Connect link for customer-42")
	link := op.value("#link-url")
	if !strings.HasPrefix(link, app.srv.URL+"/connect/") {
		op.fatalf("connect link = %q", link)
	}
	if snippet := op.value("#link-snippet"); !strings.Contains(snippet, link) {
		op.fatalf("the button snippet %q lacks the link", snippet)
	}
	op.page("link")

	// The customer, in a browser of their own, connects their account.
	customer := newSession(t, ctx, app.srv.URL, "customer", shots)
	customer.wantStatus(customer.open(link), 200, "the connect link")
	customer.wantText("h1", "Connect your GetResponse account")
	if name := evalIn[string](customer, `document.querySelector(".eyebrow").textContent`); name != "Demo app" {
		customer.fatalf("the connect page names the app %q, want Demo app", name)
	}
	if n := customer.count(".topbar nav"); n != 0 {
		customer.fatalf("the customer's page shows the operator navigation")
	}
	customer.page("customer-connect")
	customer.click(`[data-testid="connect-button"]`)
	if p := customer.path(); p != "/demo-getresponse/oauth2_authorize.html" {
		customer.fatalf("Connect GetResponse led to %s, want the simulated consent page", p)
	}
	customer.wantText(`[data-testid="consent-client"]`, "asks for access")
	customer.page("consent")
	customer.wantStatus(customer.click(`[data-testid="consent-approve"]`), 200, "approving access")
	if p := customer.path(); p != "/oauth/callback" {
		customer.fatalf("approving led to %s, want /oauth/callback", p)
	}
	customer.wantText(`[data-testid="connect-success"] h1`, "Connected")
	accountEmail := customer.text(`[data-testid="connect-success"] [data-testid="account-email"]`)
	if !strings.Contains(accountEmail, "@") {
		customer.fatalf("success page names account %q", accountEmail)
	}
	customer.page("customer-connected")

	// The operator sees the connection, with its expiry, on the overview and in the list.
	op.open("/")
	op.wantText(`[data-testid="count-active"]`, "1")
	op.wantText(`[data-testid="expiring"]`, accountEmail, "customer-42")
	op.page("overview")
	op.open("/connections")
	if n := op.count(`[data-testid="connection-row"]`); n != 1 {
		op.fatalf("%d connection rows, want 1", n)
	}
	row := op.wantText(`[data-testid="connection-row"]`, accountEmail, "customer-42", "Active")
	expiry := evalIn[string](op, `document.querySelector('[data-testid="connection-row"] time[data-relative="expiry"]').getAttribute("datetime")`)
	at, err := time.Parse(time.RFC3339, expiry)
	if err != nil || time.Until(at) < 50*time.Minute || time.Until(at) > 61*time.Minute {
		op.fatalf("the row's expiry is %q (%v), want about an hour from now; row: %s", expiry, err, row)
	}
	if !regexp.MustCompile(`\bin (1 h|[56]\d min)\b`).MatchString(row) {
		op.fatalf("the row %q does not say when the token expires", row)
	}
	op.page("connections")

	// Its page: refresh now, then a test call.
	op.follow("open the connection", chromedp.Click(chromedp.CSS(`[data-testid="connection-row"] a`), chromedp.NodeVisible))
	op.wantText(`[data-testid="connection-title"]`, accountEmail)
	op.wantText(`[data-testid="status"]`, "Active")
	connID := op.text(`[data-testid="connection-id"]`)
	fingerprint := op.text(`[data-testid="fingerprint"]`)
	op.page("connection")
	op.fromMenu(`[data-testid="refresh-now"]`)
	op.wantText(`[data-testid="flash"]`, "Refreshed.", "valid until")
	if fp := op.text(`[data-testid="fingerprint"]`); fp == fingerprint {
		op.fatalf("the access token fingerprint %s did not change on refresh", fp)
	}
	op.wantText(`[data-testid="timeline"]`, "refresh")
	op.page("connection-refreshed")
	op.do("choose /from-fields", chromedp.SetValue(chromedp.CSS("#endpoint"), "/from-fields"))
	op.click(`[data-testid="run-test"]`)
	op.wantText(`[data-testid="test-status"]`, "HTTP 200")
	if n := op.count(`[data-testid="from-fields"] tbody tr`); n < 1 {
		op.fatalf("the from-fields table has %d rows", n)
	}
	if head := evalIn[string](op, `Array.from(document.querySelectorAll('[data-testid="from-fields"] th')).map(th => th.textContent).join(",")`); head != "Name,Email,Default,Active" {
		op.fatalf("the from-fields table's columns are %q", head)
	}
	op.wantText(`[data-testid="from-fields"] tbody`, "@")
	op.page("connection-test-call")

	// Reconnect: a reconnect link, completed by the customer, renews the same connection.
	op.fromMenu(`[data-testid="make-reconnect"]`)
	op.wantText(`[data-testid="flash"]`, "Reconnect link created")
	reconnect := op.value("#reconnect-url")
	if !strings.HasPrefix(reconnect, app.srv.URL+"/connect/") || reconnect == link {
		op.fatalf("reconnect link = %q", reconnect)
	}
	op.page("connection-reconnect-link")
	customer.open(reconnect)
	customer.wantText("h1", "Reconnect your GetResponse account")
	customer.wantText(`[data-testid="reconnect-account"]`, "Sign in to GetResponse as "+accountEmail)
	customer.page("customer-reconnect")
	customer.click(`[data-testid="connect-button"]`)
	customer.wantText(`[data-testid="consent-client"]`, "asks for access")
	customer.click(`[data-testid="consent-approve"]`)
	customer.wantText(`[data-testid="connect-success"] h1`, "Reconnected")
	customer.page("customer-reconnected")
	op.open("/connections/" + connID)
	op.wantText(`[data-testid="timeline"]`, "connection.reconnected")
	op.wantText(`[data-testid="status"]`, "Active")
	op.open("/connections")
	if n := op.count(`[data-testid="connection-row"]`); n != 1 {
		op.fatalf("%d connection rows after the reconnect, want still 1", n)
	}

	// Disconnect, confirmed on its own page.
	op.open("/connections/" + connID)
	op.fromMenu(`[data-testid="disconnect"]`)
	op.wantText("h1", "Disconnect", accountEmail)
	op.page("disconnect-confirm")
	op.click(`[data-testid="confirm-disconnect"]`)
	if p := op.path(); p != "/connections/"+connID {
		op.fatalf("disconnecting led to %s", p)
	}
	op.wantText(`[data-testid="flash"]`, "Disconnected.")
	op.wantText(`.page-head [data-testid="status"]`, "Disconnected")
	if n := op.count(`[data-testid="refresh-now"]`); n != 0 {
		op.fatalf("a disconnected connection still offers Refresh now")
	}
	op.page("connection-disconnected")

	// The operator's other pages, and an error page.
	demoID := demoAppID(t, app)
	for _, p := range []struct{ path, heading, step string }{
		{"/operators", "Operators", "operators"},
		{"/account/password", "Change your password", "password"},
		{"/apps/" + demoID + "/edit", "Edit Demo app", "app-edit"},
		{"/apps/" + demoID + "/delete", "Delete Demo app?", "app-delete"},
		{"/connections?status=disconnected", "Connections", "connections-disconnected"},
	} {
		op.wantStatus(op.open(p.path), 200, p.path)
		op.wantText("h1", p.heading)
		op.page(p.step)
	}
	op.wantStatus(op.open("/connections/con_doesnotexist"), 404, "an unknown connection")
	op.wantText(`[data-testid="error-page"]`, "404")
	op.page("not-found")

	// Every page of the story passed the accessibility check.
	for _, p := range []string{"/setup", "/login", "/", "/apps", "/apps/new", "/connections", "/connections/" + connID, "/operators"} {
		if !op.checked[p] {
			t.Errorf("the walk never checked %s", p)
		}
	}
	for _, p := range []string{"/demo-getresponse/oauth2_authorize.html", "/oauth/callback", strings.TrimPrefix(link, app.srv.URL)} {
		if !customer.checked[p] {
			t.Errorf("the walk never checked the customer's %s", p)
		}
	}
}

// TestBrowserConsentDenied: denying access on GetResponse gives a friendly page
// whose Try again leads back to the (still valid) connect link; the operator's
// lists then read the link "declined" (it still works), at 1280 and 390 px.
func TestBrowserConsentDenied(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	app := newDemoApp(t)
	op := app.setup(annEmail, annPass)
	f := &connectFixture{testApp: app, op: op, appID: demoAppID(t, app)}
	link := f.makeLink("customer-7", "")

	customer := newSession(t, ctx, app.srv.URL, "customer", newScreenshots(t, "denied"))
	customer.open(link)
	customer.click(`[data-testid="connect-button"]`)
	customer.click(`[data-testid="consent-deny"]`)
	customer.wantText("h1", "Access was not granted")
	if kind := evalIn[string](customer, `document.querySelector('[data-testid="connect-problem"]').dataset.kind`); kind != "access_denied" {
		customer.fatalf("problem kind = %q", kind)
	}
	customer.wantText(`[data-testid="try-again"]`, "Try again")
	customer.page("denied")
	if n := customer.count(`[data-testid="connect-success"]`); n != 0 {
		customer.fatalf("a denied consent shows the success page")
	}
	customer.wantStatus(customer.click(`[data-testid="try-again"]`), 200, "Try again")
	if got := app.srv.URL + customer.path(); got != link {
		customer.fatalf("Try again led to %s, want the connect link %s", got, link)
	}
	customer.wantText("h1", "Connect your GetResponse account")

	var n int64
	if err := app.store.DB().Model(&models.Connection{}).Count(&n).Error; err != nil || n != 0 {
		t.Fatalf("%d connections after a denial (%v), want none", n, err)
	}

	// The operator sees the link as declined, not as valid, at both widths.
	operator := newSession(t, ctx, app.srv.URL, "operator", newScreenshots(t, "denied-operator"))
	operator.open("/login")
	operator.fill("#email", annEmail)
	operator.fill("#password", annPass)
	operator.click(`[data-testid="login-submit"]`)
	operator.open("/apps/" + f.appID)
	operator.wantText(`[data-testid="links-table"] [data-testid="link-state"]`, "declined")
	operator.wantText(`[data-testid="links-table"] [data-testid="link-when"]`, "declined", "still valid")
	operator.page("app-link-declined")
	operator.phone(true)
	operator.fits("phone-app-link-declined")
	operator.follow("open the link", chromedp.Click(chromedp.CSS(`[data-testid="links-table"] a`), chromedp.NodeVisible))
	operator.wantText(`[data-testid="link-denied"]`, "The customer declined access on GetResponse", "still works")
	operator.fits("phone-link-declined")
	operator.page("phone-link-declined")
}

// TestBrowserExpiredLink: an expired link's page, at 1280 and 390 px, tells the
// customer to ask the app (with its support contact) and offers nothing; the
// operator who opens it gets "Make a new link for ‹customer›", which makes one.
func TestBrowserExpiredLink(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	app := newDemoApp(t)
	op := app.setup(annEmail, annPass)
	f := &connectFixture{testApp: app, op: op, appID: demoAppID(t, app)}
	link := f.makeLink("customer-8", "")
	past := time.Now().Add(-time.Hour)
	if err := app.store.DB().Model(&models.ConnectLink{}).Where("1 = 1").Update("expires_at", past).Error; err != nil {
		t.Fatal(err)
	}

	customer := newSession(t, ctx, app.srv.URL, "customer", newScreenshots(t, "expired"))
	customer.wantStatus(customer.open(link), 410, "an expired link")
	customer.wantText("h1", "has expired")
	customer.wantText(`[data-testid="connect-problem"] p`, "Ask Demo app for a new one")
	if n := customer.count(`[data-testid="connect-button"]`); n != 0 {
		customer.fatalf("an expired link still shows Connect GetResponse")
	}
	customer.wantText(`[data-testid="problem-support"]`, "Demo app")
	if n := customer.count(`[data-testid="renew-link"]`); n != 0 {
		customer.fatalf("the customer is offered to make a link")
	}
	customer.page("expired")
	customer.phone(true)
	customer.fits("phone-expired")
	customer.page("phone-expired")

	// The operator who opens it makes a new one for the customer, from the same page.
	operator := newSession(t, ctx, app.srv.URL, "operator", newScreenshots(t, "expired-operator"))
	operator.open("/login")
	operator.fill("#email", annEmail)
	operator.fill("#password", annPass)
	operator.click(`[data-testid="login-submit"]`)
	operator.wantStatus(operator.open(link), 410, "an expired link, for its operator")
	operator.wantText(`[data-testid="operator-renew"]`, "You are signed in to grconnect")
	operator.wantText(`[data-testid="renew-link"]`, "Make a new link for customer-8")
	operator.page("expired-operator")
	operator.phone(true)
	operator.fits("phone-expired-operator")
	operator.page("phone-expired-operator")
	operator.click(`[data-testid="renew-link"]`)
	operator.wantText("h1", "Connect link for customer-8")
	if fresh := operator.value("#link-url"); fresh == link || !strings.HasPrefix(fresh, app.srv.URL+"/connect/") {
		operator.fatalf("the new link is %q (the expired one %q)", fresh, link)
	}
}

// TestBrowserSignInFailures: wrong credentials get one message that reveals
// nothing, keep the email, and too many failures block sign-in for a while.
func TestBrowserSignInFailures(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	app := newDemoApp(t)
	app.setup(annEmail, annPass)

	b := newSession(t, ctx, app.srv.URL, "visitor", newScreenshots(t, "signin"))
	attempts := []struct{ email, password string }{
		{annEmail, "wrong password!"},
		{"nobody@example.com", annPass},
		{annEmail, ""},
		{annEmail, "still wrong"},
		{annEmail, "wrong again"},
		{annEmail, "and wrong once more"},
	}
	for i, a := range attempts {
		b.open("/login")
		b.fill("#email", a.email)
		if a.password != "" {
			b.fill("#password", a.password)
		}
		b.wantStatus(b.click(`[data-testid="login-submit"]`), 401, "a wrong sign-in")
		b.wantText(`[data-testid="login-error"]`, "Wrong email or password.")
		if v := b.value("#email"); v != a.email {
			b.fatalf("attempt %d: the email field holds %q, want %q kept", i+1, v, a.email)
		}
		if v := b.value("#password"); v != "" {
			b.fatalf("attempt %d: the password field was sent back filled", i+1)
		}
		if n := b.count(`[data-testid="logout"]`); n != 0 {
			b.fatalf("attempt %d signed in", i+1)
		}
		if i == 0 {
			b.page("signin-wrong-password")
		}
	}
	// The account's sixth try from this (new) browser is refused even with the right password.
	b.open("/login")
	b.fill("#email", annEmail)
	b.fill("#password", annPass)
	b.wantStatus(b.click(`[data-testid="login-submit"]`), 429, "a throttled sign-in")
	b.wantText(`[data-testid="login-error"]`, "Too many failed sign-ins")
	b.page("signin-throttled")
	b.open("/")
	if p := b.path(); p != "/login" {
		b.fatalf("after failed sign-ins / shows %s, want /login", p)
	}
}

// TestBrowserKeyboardOnly signs in and makes a connect link with the keyboard
// alone: Tab moves the focus in order and visibly, Enter follows and submits.
func TestBrowserKeyboardOnly(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	app := newDemoApp(t)
	app.setup(annEmail, annPass)
	k := newSession(t, ctx, app.srv.URL, "keyboard user", newScreenshots(t, "keyboard"))

	// The sign-in form focuses the email field; Tab goes to the password, then the button.
	k.open("/login")
	k.waitFocus("#email")
	k.do("type the email", chromedp.KeyEvent(annEmail))
	if n := k.tabTo("#password", 1); n != 1 {
		k.fatalf("password reached after %d Tabs", n)
	}
	k.do("type the password", chromedp.KeyEvent(annPass))
	k.tabTo(`[data-testid="login-submit"]`, 1)
	k.follow("press Enter on Sign in", chromedp.KeyEvent(kb.Enter))
	if p := k.path(); p != "/" {
		k.fatalf("signing in with the keyboard led to %s, want /", p)
	}
	k.wantText(".who", annEmail)

	// The first Tab reaches the skip link; then on through the navigation to Apps.
	k.tabTo("a.skip", 1)
	k.tabTo(`nav a[href="/apps"]`, 8)
	k.follow("press Enter on Apps", chromedp.KeyEvent(kb.Enter))
	if p := k.path(); p != "/apps" {
		k.fatalf("Enter on Apps led to %s", p)
	}
	demoID := demoAppID(t, app)
	k.tabTo(`[data-testid="apps-table"] a[href="/apps/`+demoID+`"]`, 15)
	k.follow("press Enter on the demo app", chromedp.KeyEvent(kb.Enter))
	k.wantText(`[data-testid="app-name"]`, "Demo app")

	// The skip link moves the focus into <main>: the next Tab stays past the navigation.
	k.tabTo("a.skip", 1)
	k.do("press Enter on the skip link", chromedp.KeyEvent(kb.Enter))
	k.waitFocus("main#main")
	k.do("press Tab", chromedp.KeyEvent(kb.Tab))
	if !evalIn[bool](k, `document.activeElement.closest("main") !== null`) {
		k.fatalf("after the skip link, Tab focused %s, outside <main>", k.focused().Desc)
	}

	// The connect-link form: customer reference, return URL, days, then the button.
	k.tabTo("#customer_ref", 15)
	k.do("type the customer", chromedp.KeyEvent("keyboard-customer"))
	k.tabTo("#return_url", 1)
	k.tabTo("#ttl_days", 1)
	k.do("type the days", chromedp.KeyEvent("3"))
	k.tabTo(`[data-testid="create-link"]`, 2) // past the allow-transfer box
	k.page("keyboard-link-form")
	k.follow("press Enter on Create connect link", chromedp.KeyEvent(kb.Enter))
	k.wantText(`[data-testid="flash"]`, "Connect link created for keyboard-customer")
	link := k.value("#link-url")
	if !strings.HasPrefix(link, app.srv.URL+"/connect/") {
		k.fatalf("link = %q", link)
	}
	var l models.ConnectLink
	if err := app.store.DB().Where("customer_ref = ?", "keyboard-customer").First(&l).Error; err != nil {
		t.Fatal(err)
	}
	if d := time.Until(l.ExpiresAt); d < 71*time.Hour || d > 73*time.Hour {
		t.Errorf("the link typed as valid for 3 days expires in %v", d)
	}
	k.page("keyboard-link")
}

// TestBrowserAccessibilityCheck proves the accessibility check fails on each
// kind of violation and passes a clean page.
func TestBrowserAccessibilityCheck(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/good":
			fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>Good</title></head><body><main>
<h1>Good</h1><h2>Form</h2><form><label for="q">Search</label><input id="q" name="q"><input type="hidden" name="h" value="1">
<input aria-label="Other" name="o"><select aria-labelledby="sl"><option>a</option></select><span id="sl">Pick</span>
<img src="data:," alt=""><svg aria-hidden="true"></svg><svg role="img"><title>A chart</title></svg>
<button>Go</button><a href="/x"><img src="data:," alt="Home"></a></form><h2>More</h2><h3>Detail</h3>
<p style="color:#767676;background:#fff">Just enough contrast</p></main></body></html>`)
		case "/bad":
			fmt.Fprint(w, `<!doctype html><html><head></head><body>
<h2>Starts low</h2><h1>One</h1><h1>Two</h1><h4>Skips</h4>
<input id="nolabel" name="q"><label for="elsewhere">Orphan</label><input id="orphan">
<label for="empty"> </label><textarea id="empty"></textarea>
<img src="data:,"><svg width="1" height="1"></svg><svg role="img"></svg>
<a href="/x"></a><button></button>
<p style="color:#aaa;background:#fff">Too faint</p>
<div id="dup"></div><div id="dup"></div></body></html>`)
		}
	}))
	t.Cleanup(srv.Close)
	s := newSession(t, ctx, srv.URL, "checker", nil)

	s.open("/good")
	if problems := evalIn[[]string](s, a11yCheckJS); len(problems) != 0 {
		t.Errorf("a clean page fails the check:\n%s", strings.Join(problems, "\n"))
	}

	s.open("/bad")
	problems := strings.Join(evalIn[[]string](s, a11yCheckJS), "\n")
	for _, want := range []string{
		"<html> has no lang",
		"the page has no <title>",
		`form control without a label: <input id="nolabel"`,
		`form control without a label: <input id="orphan"`,
		`form control without a label: <textarea id="empty"`,
		"img without alt",
		`svg neither aria-hidden="true" nor role="img" with a title or label: <svg width="1"`,
		`svg neither aria-hidden="true" nor role="img" with a title or label: <svg role="img"`,
		"want exactly one h1, found 2",
		"the first heading is not an h1: <h2>Starts low</h2>",
		"heading skips from h1 to h4",
		"want exactly one <main> landmark, found 0",
		`id "dup" is used 2 times`,
		`link or button without a name: <a href="/x">`,
		"link or button without a name: <button>",
		"contrast 2.32:1 (needs 4.5:1)",
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("the check missed %q; it said:\n%s", want, problems)
		}
	}
}

// demoAppID is the ID of the app that demo mode registered.
func demoAppID(t *testing.T, app *testApp) string {
	t.Helper()
	a, err := app.store.DemoApp(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}
