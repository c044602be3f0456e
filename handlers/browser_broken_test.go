package handlers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestBrowserBrokenConnection walks a connection's page through its states in
// Chromium, light and dark: the status beside the title, the one action for the
// state in the header and the rest in a menu, what is wrong said once in a
// banner, only the cards and facts that apply; the reconnect link copied from the
// header; a customer's reconnect page naming the account, and so does the error
// when they approve another account; the page much shorter
// than it was (its heights are logged), on a phone with the fix on the first screen.
func TestBrowserBrokenConnection(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	app := newDemoApp(t)
	shots := newScreenshots(t, "broken")
	app.setup(annEmail, annPass)
	op := newSession(t, ctx, app.srv.URL, "operator", shots)
	op.open("/login")
	op.fill("#email", annEmail)
	op.fill("#password", annPass)
	op.click(`[data-testid="login-submit"]`)
	f := &connectFixture{testApp: app, op: app.signIn(annEmail, annPass), appID: demoAppID(t, app)}
	link := f.makeLink("customer-42", "")
	customer := newSession(t, ctx, app.srv.URL, "customer", shots)
	customer.open(link)
	customer.click(`[data-testid="connect-button"]`)
	customer.click(`[data-testid="consent-approve"]`)
	customer.wantText(`[data-testid="connect-success"] h1`, "Connected")
	email := customer.text(`[data-testid="connect-success"] [data-testid="account-email"]`)
	op.open("/connections")
	op.follow("open the connection", chromedp.Click(chromedp.CSS(`[data-testid="connection-row"] a`), chromedp.NodeVisible))
	id := op.text(`[data-testid="connection-id"]`)

	// The status pill is large and beside the title; the one action beside them;
	// the others in a menu that opens without leaving the page.
	beside := evalIn[bool](op, `(() => { const h = document.querySelector("h1").getBoundingClientRect(), b = document.querySelector(".title-row [data-testid=status]").getBoundingClientRect();
		return b.left >= h.right && b.top + b.height / 2 > h.top && b.top + b.height / 2 < h.bottom && b.height >= 26; })()`)
	if !beside {
		op.fatalf("the status pill is not a large pill beside the title")
	}
	op.wantText(`[data-testid="action-bar"] .primary-item`, "Run test call")
	if !evalIn[bool](op, `document.querySelector('[data-testid="action-bar"]').getBoundingClientRect().top < document.querySelector("h1").getBoundingClientRect().bottom`) {
		op.fatalf("the action is not in the header")
	}
	if evalIn[bool](op, `document.querySelector('[data-testid="more-actions"] [data-testid="disconnect"]').checkVisibility()`) {
		op.fatalf("the closed menu shows Disconnect")
	}
	op.do("open the More menu", chromedp.Click(chromedp.CSS(`[data-testid="more-actions"] > summary`), chromedp.NodeVisible))
	op.wantText(`[data-testid="more-actions"]`, "Refresh now", "Make reconnect link", "Disconnect…")
	op.page("connection-menu")
	aboveTimeline := `Math.round(document.getElementById("timeline").getBoundingClientRect().top + window.scrollY)`
	activeHeight, activeAbove := evalIn[int](op, "document.documentElement.scrollHeight"), evalIn[int](op, aboveTimeline)
	// The header's Run test call runs the test card's call.
	op.click(`[data-testid="run-test-top"]`)
	op.wantText(`[data-testid="test-status"]`, "HTTP 200")

	// Transient failures: a warning, the next attempt, and Retry now as the action.
	app.built.Demo.Fake.FailToken(getresponsetest.TokenServerError, 1)
	op.fromMenu(`[data-testid="refresh-now"]`)
	op.wantText(`[data-testid="status-banner"]`, "Refreshing fails for now", "Next automatic attempt")
	op.wantText(`[data-testid="action-bar"] .primary-item [data-testid="refresh-now"]`, "Retry now")
	op.wantText(`[data-testid="flash"]`, "GetResponse still fails")
	if !evalIn[bool](op, `document.querySelector('[data-testid="flash"]').classList.contains("flash-warning")`) {
		op.fatalf("a failure grconnect waits out is not a warning")
	}
	op.wantText(`[data-testid="streak"]`, "the last refresh failed")
	op.page("connection-refresh-failing")
	op.click(`[data-testid="action-bar"] [data-testid="refresh-now"]`)
	if n := op.count(`[data-testid="status-banner"]`); n != 0 {
		op.fatalf("a recovered connection still shows a banner")
	}

	// GetResponse rejects the refresh token: the customer must reconnect.
	app.built.Demo.Fake.RevokeRefreshTokens()
	op.fromMenu(`[data-testid="refresh-now"]`)
	op.wantText(`[data-testid="flash"]`, "Refresh failed")
	op.wantText(`[data-testid="status-banner"] h2`, "The customer must approve access again")
	op.wantText(`[data-testid="banner-cause"]`, "invalid_grant")
	op.wantText(`[data-testid="refresh-token"]`, "rejected by GetResponse")
	op.wantText(`[data-testid="expiry"]`, "unusable")
	// What cannot work is not there: no refresh, no test call, no API, no budget.
	for _, sel := range []string{`[data-testid="refresh-now"]`, `[data-testid="run-test"]`, "#endpoint", `[data-testid="api-card"]`, `[data-testid="budget"]`, `[data-testid="fingerprint"]`} {
		if n := op.count(sel); n != 0 {
			op.fatalf("%s is on a connection that needs a reconnect", sel)
		}
	}
	// What the page shows (innerText: rendered text only), above the timeline.
	main := evalIn[string](op, `document.querySelector("main").innerText.replace(document.querySelector("#timeline").innerText, "")`)
	if n := strings.Count(main, "invalid_grant"); n != 1 {
		op.fatalf("the error shows %d times above the timeline, want once:\n%s", n, main)
	}
	op.click(`[data-testid="action-bar"] [data-testid="make-reconnect"]`)
	reconnect := op.value(`[data-testid="status-banner"] #reconnect-url`)
	op.wantText(`[data-testid="status-banner"]`, "Expires in 7 d", "Open it now")
	op.wantText(`[data-testid="action-bar"] .primary-item`, "Copy reconnect link")
	op.page("connection-needs-reconnect")
	brokenHeight, brokenAbove := evalIn[int](op, "document.documentElement.scrollHeight"), evalIn[int](op, aboveTimeline)
	// On a phone, the fix is on the first screen.
	op.phone(true)
	op.open("/connections/" + id)
	op.fits("phone-connection-needs-reconnect")
	if !evalIn[bool](op, `document.querySelector('[data-testid="action-bar"] [data-copy="reconnect-url"]').getBoundingClientRect().bottom <= window.innerHeight`) {
		op.fatalf("on a phone, Copy reconnect link is below the first screen")
	}
	phoneHeight, phoneAbove := evalIn[int](op, "document.documentElement.scrollHeight"), evalIn[int](op, aboveTimeline)
	op.open("/connections")
	op.fits("phone-connections")
	op.open("/")
	op.fits("phone-overview")
	op.phone(false)
	// The timeline grows with the connection's history; what comes before it is
	// the page's own length.
	t.Logf("the connection page is %d px high (timeline from %d px) active, %d px (timeline from %d px) needing a reconnect at 1280 px, %d px (timeline from %d px) on a phone; before: ≈2,150 and 4,170",
		activeHeight, activeAbove, brokenHeight, brokenAbove, phoneHeight, phoneAbove)
	if activeAbove > 1000 || brokenAbove > 900 || phoneAbove > 2000 {
		t.Errorf("the connection page's timeline starts %d/%d px down at 1280 px and %d px on a phone, want much shorter pages than 2,150 and 4,170", activeAbove, brokenAbove, phoneAbove)
	}

	// The customer reconnects: the page names the account; the connection is active again.
	customer.phone(true)
	customer.open(reconnect)
	customer.wantText(`[data-testid="connect-button"]`, "Reconnect GetResponse")
	customer.wantText(`[data-testid="reconnect-account"]`, email)
	customer.fits("phone-customer-reconnect")
	customer.page("customer-reconnect")
	customer.click(`[data-testid="connect-button"]`)
	// Another account first: the error names the one to sign in as, at both widths.
	customer.do("choose another account", chromedp.Click(chromedp.CSS(`[data-testid="consent-account"]:not(:checked)`), chromedp.NodeVisible))
	customer.click(`[data-testid="consent-approve"]`)
	customer.wantText(`[data-testid="problem-message"]`, "sign in to GetResponse as "+email+" and try again")
	customer.fits("phone-customer-wrong-account")
	customer.page("phone-customer-wrong-account")
	customer.phone(false)
	customer.fits("customer-wrong-account")
	customer.page("customer-wrong-account")
	customer.phone(true)
	customer.click(`[data-testid="try-again"]`) // the reconnect link again
	customer.click(`[data-testid="connect-button"]`)
	customer.click(`[data-testid="consent-approve"]`)
	customer.wantText(`[data-testid="connect-success"] h1`, "Reconnected")
	customer.fits("phone-customer-reconnected")
	op.open("/connections/" + id)
	op.wantText(`[data-testid="status"]`, "Active")
	if n := op.count(`[data-testid="status-banner"]`); n != 0 {
		op.fatalf("a reconnected connection still shows a banner")
	}

	// Disconnected: no test call, nothing to refresh or disconnect; a reconnect link.
	op.fromMenu(`[data-testid="disconnect"]`)
	op.click(`[data-testid="confirm-disconnect"]`)
	op.wantText(`[data-testid="status-banner"] h2`, "Disconnected")
	for _, sel := range []string{`[data-testid="run-test"]`, `[data-testid="refresh-now"]`, `[data-testid="disconnect"]`, `[data-testid="budget"]`} {
		if n := op.count(sel); n != 0 {
			op.fatalf("a disconnected connection offers %s", sel)
		}
	}
	op.wantText(`[data-testid="action-bar"] [data-testid="make-reconnect"]`, "Make reconnect link")
	op.page("connection-disconnected")

	// The empty list says the filter hides it, and shows it on request.
	op.open("/connections")
	op.wantText(`[data-testid="hidden-note"]`, "1 connection is disconnected")
	op.page("connections-hidden")
	op.click(`[data-testid="show-hidden"]`)
	if n := op.count(`[data-testid="connection-row"]`); n != 1 {
		op.fatalf("Show all connections lists %d rows, want 1", n)
	}
}

// TestBrowserFormsAndCharts: the app form shows the default MAX domain for MAX
// editions only, the redirect URL with its localhost warning and GetResponse's
// applications page; a form with errors starts with a summary that takes the
// focus and leads to each field, and keeps the typed secret; chart labels are
// readable at both widths.
func TestBrowserFormsAndCharts(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	app := newDemoApp(t)
	shots := newScreenshots(t, "forms")
	app.setup(annEmail, annPass)
	op := newSession(t, ctx, app.srv.URL, "operator", shots)
	op.open("/login")
	op.fill("#email", annEmail)
	op.fill("#password", annPass)
	op.click(`[data-testid="login-submit"]`)

	op.open("/apps/new")
	// The MAX domain is a field of MAX editions only; the script shows it as the
	// edition changes.
	shown := `document.getElementById("max_domain").checkVisibility()`
	if evalIn[bool](op, shown) {
		op.fatalf("standard edition: the MAX domain field shows")
	}
	op.do("choose MAX", chromedp.SetValue(chromedp.CSS("#edition"), "max_us"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("edition").dispatchEvent(new Event("change", {bubbles: true}))`))
	if !evalIn[bool](op, shown) || evalIn[bool](op, `document.getElementById("max_domain").required`) {
		op.fatalf("MAX edition: the MAX domain field is hidden or required")
	}
	// The redirect URL stands where it is copied, with the localhost warning and
	// GetResponse's settings page.
	op.wantText(`[data-testid="redirect-help"]`, "GetResponse refuses localhost redirect URLs")
	if !strings.HasSuffix(evalIn[string](op, `document.querySelector('[data-testid="settings-link"]').href`), "/authorizations") {
		op.fatalf("no link to GetResponse's applications page")
	}
	op.fill("#client_id", "cid")
	op.fill("#client_secret", "typed-secret-0123456789")
	op.fill("#max_domain", "not a domain!")
	op.wantStatus(op.click(`[data-testid="app-submit"]`), 422, "an app without a name, with a bad domain")
	// The summary takes the focus and leads to each field.
	op.waitFocus(`[data-testid="error-summary"]`)
	// (The typed secret is one: it is never written back, so it must be typed again.)
	op.wantText(`[data-testid="error-summary"]`, "Fix 3 problems", "Name:", "Client secret:", "Default MAX domain:")
	op.wantText(`[data-testid="error-name"]`, "name")
	op.wantText(`[data-testid="error-max_domain"]`, "domain")
	// The secret is never written back into the page: the form asks for it again.
	if v := op.value("#client_secret"); v != "" {
		op.fatalf("the client secret field holds %q after the errors", v)
	}
	op.wantText(`[data-testid="error-client_secret"]`, "again")
	op.page("app-form-errors")
	op.do("follow the summary's link", chromedp.Click(chromedp.CSS(`[data-testid="error-summary"] a[href="#max_domain"]`), chromedp.NodeVisible))
	op.waitFocus("#max_domain")
	op.phone(true)
	op.fits("phone-app-form-errors")
	op.phone(false)

	// Charts: axis labels at a readable size, on a wide screen and on a phone.
	f := &connectFixture{testApp: app, op: app.signIn(annEmail, annPass), appID: demoAppID(t, app)}
	link := f.makeLink("customer-1", "")
	customer := newSession(t, ctx, app.srv.URL, "customer", nil)
	customer.open(link)
	customer.click(`[data-testid="connect-button"]`)
	customer.click(`[data-testid="consent-approve"]`)
	sizes := `Array.from(document.querySelectorAll(".x-axis span, .y-axis span, .time-axis span")).filter(s => s.textContent.trim() !== "" && s.checkVisibility({visibilityProperty: true})).map(s => parseFloat(getComputedStyle(s).fontSize) * (window.visualViewport ? window.visualViewport.scale : 1))`
	for _, phone := range []bool{false, true} {
		op.phone(phone)
		op.open("/")
		got := evalIn[[]float64](op, sizes)
		if len(got) < 6 {
			op.fatalf("only %d axis labels on the overview", len(got))
		}
		for _, px := range got {
			if px < 11.5 {
				op.fatalf("an axis label renders at %.1f px (phone %v), want at least 12", px, phone)
			}
		}
		// Labels do not run into each other.
		if evalIn[bool](op, `(() => { const r = Array.from(document.querySelectorAll(".x-axis span")).filter(s => s.textContent.trim() && s.checkVisibility({visibilityProperty: true})).map(s => { const range = document.createRange(); range.selectNodeContents(s); return range.getBoundingClientRect(); });
			return r.some((a, i) => i > 0 && r[i-1].top === a.top && r[i-1].right > a.left - 2); })()`) {
			op.fatalf("x-axis labels overlap (phone %v)", phone)
		}
	}
	op.phone(false)
	// The connection's history strip has a time axis.
	op.open("/connections")
	op.follow("open the connection", chromedp.Click(chromedp.CSS(`[data-testid="connection-row"] a`), chromedp.NodeVisible))
	op.fromMenu(`[data-testid="refresh-now"]`)
	if n := op.count(`[data-testid="history-axis"] span`); n != 3 {
		op.fatalf("the history strip's time axis has %d labels, want 3", n)
	}
	op.page("connection-history")
}

// TestBrowserAccountPages checks the newer operator pages for accessibility (light
// and dark): the account page, a password reset from link to new password, a new
// API key, a bulk refresh's progress.
func TestBrowserAccountPages(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	app := newDemoApp(t)
	shots := newScreenshots(t, "account")
	ann := app.setup(annEmail, annPass)
	app.setupSecondOperator(ann, "bob@example.com", "bob password 1")
	var bobID string
	app.store.DB().Table("operators").Where("email = ?", "bob@example.com").Pluck("id", &bobID)

	op := newSession(t, ctx, app.srv.URL, "operator", shots)
	op.timeZone("Europe/Warsaw")
	op.open("/login")
	op.fill("#email", annEmail)
	op.fill("#password", annPass)
	op.click(`[data-testid="login-submit"]`)
	// The first page reports the browser's zone in the background; wait for it to
	// land before the account page is drawn from what is stored.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var zone string
		app.store.DB().Table("operators").Where("email = ?", annEmail).Pluck("time_zone", &zone)
		if zone == "Europe/Warsaw" {
			break
		}
		if time.Now().After(deadline) {
			op.fatalf("the first page after sign-in did not report the browser's zone (stored %q)", zone)
		}
	}
	op.open("/account")
	op.wantText("h1", "Your account")
	// The browser's zone was reported by the first page; the button offers it too.
	if z := op.value("#time_zone"); z != "Europe/Warsaw" {
		op.fatalf("the time zone is %q, want the browser's Europe/Warsaw", z)
	}
	op.wantText("[data-tz-use-browser]", "Europe/Warsaw")
	op.wantText(`[data-testid="tz-now"]`, "CET")
	op.page("account")

	op.open("/operators")
	op.click(`[data-testid="reset-operator"]`)
	op.wantText("h1", "Reset the password of bob@example.com?")
	op.page("operator-reset-confirm")
	op.fill("#current_password", annPass) // a reset link needs the operator's own password
	op.click(`[data-testid="confirm-reset"]`)
	resetURL := op.value("#reset-url")
	op.wantText(`[data-testid="show-once"]`, "cannot show it again")
	op.page("operator-reset-link")

	bob := newSession(t, ctx, app.srv.URL, "bob", shots)
	bob.open(resetURL)
	bob.page("reset-password")
	bob.fill("#password", "bob new password")
	bob.fill("#password_confirm", "bob new password")
	bob.click(`[data-testid="reset-submit"]`)
	if p := bob.path(); p != "/" {
		bob.fatalf("the reset led to %s, want the overview", p)
	}
	bob.wantText(`[data-testid="flash"]`, "new password is saved")
	bob.wantStatus(bob.open(resetURL), 410, "a used reset link")
	bob.page("reset-link-used")

	op.open("/api-keys")
	op.fill("#name", "billing backend")
	op.click(`[data-testid="create-apikey"]`)
	// The Try-it box shows the whole command.
	if !evalIn[bool](op, `(() => { const a = document.getElementById("api-key-example"); return a.scrollHeight <= a.clientHeight + 1; })()`) {
		op.fatalf("the Try it box cuts its command")
	}
	op.page("api-key-created")
	op.open("/api-keys")
	op.page("api-keys")
}
