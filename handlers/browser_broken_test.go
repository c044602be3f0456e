package handlers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestBrowserBrokenConnection walks a connection through its broken states in
// Chromium: what the operator sees first is what is wrong and the one action that
// fixes it; actions that cannot work are disabled with the reason.
func TestBrowserBrokenConnection(t *testing.T) {
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
	op.open("/connections")
	op.follow("open the connection", chromedp.Click(chromedp.CSS(`[data-testid="connection-row"] a`), chromedp.NodeVisible))
	id := op.text(`[data-testid="connection-id"]`)

	// The status pill is large and beside the title; Disconnect is apart from Refresh.
	beside := evalIn[bool](op, `(() => { const h = document.querySelector("h1").getBoundingClientRect(), b = document.querySelector(".title-row [data-testid=status]").getBoundingClientRect();
		return b.left >= h.right && b.top + b.height / 2 > h.top && b.top + b.height / 2 < h.bottom && b.height >= 26; })()`)
	if !beside {
		op.fatalf("the status pill is not a large pill beside the title")
	}
	if evalIn[bool](op, `document.querySelector('[data-testid="refresh-now"]').closest("section") === document.querySelector('[data-testid="disconnect"]').closest("section")`) {
		op.fatalf("Disconnect sits in the same card as Refresh now")
	}

	// Transient failures: a warning, the next attempt, and Retry now.
	app.built.Demo.Fake.FailToken(getresponsetest.TokenServerError, 1)
	op.click(`[data-testid="refresh-now"]`)
	op.wantText(`[data-testid="status-banner"]`, "Refreshing fails for now", "Next automatic attempt")
	op.wantText(`[data-testid="status-banner"] [data-testid="refresh-now"]`, "Retry now")
	op.page("connection-refresh-failing")
	op.click(`[data-testid="status-banner"] [data-testid="refresh-now"]`)
	if n := op.count(`[data-testid="status-banner"]`); n != 0 {
		op.fatalf("a recovered connection still shows a banner")
	}

	// GetResponse rejects the refresh token: the customer must reconnect.
	app.built.Demo.Fake.RevokeRefreshTokens()
	op.click(`[data-testid="refresh-now"]`)
	op.wantText(`[data-testid="flash"]`, "Refresh failed")
	op.wantText(`[data-testid="status-banner"] h2`, "The customer must approve access again")
	op.wantText(`[data-testid="banner-cause"]`, "invalid_grant")
	// The fix is the first thing after the title; nothing that cannot work is live.
	if !evalIn[bool](op, `document.querySelector('[data-testid="status-banner"]').getBoundingClientRect().top < document.querySelector("#tok-title").getBoundingClientRect().top`) {
		op.fatalf("the banner is not above the cards")
	}
	for _, sel := range []string{`[data-testid="refresh-now"]`, `[data-testid="run-test"]`, "#endpoint"} {
		if !evalIn[bool](op, `document.querySelector('`+sel+`').disabled`) {
			op.fatalf("%s is live on a connection that needs a reconnect", sel)
		}
	}
	op.wantText(`[data-testid="refresh-blocked"]`, "only the customer")
	op.wantText(`[data-testid="test-blocked"]`, "reconnect first")
	op.wantText(`[data-testid="expiry"]`, "unusable")
	// What the page shows (innerText: rendered text only), above the timeline.
	main := evalIn[string](op, `document.querySelector("main").innerText.replace(document.querySelector("#timeline").innerText, "")`)
	if n := strings.Count(main, "invalid_grant"); n != 1 {
		op.fatalf("the error shows %d times above the timeline, want once:\n%s", n, main)
	}
	op.click(`[data-testid="make-reconnect"]`)
	reconnect := op.value(`[data-testid="status-banner"] #reconnect-url`)
	op.wantText(`[data-testid="status-banner"]`, "Expires in 7 d", "Open it now")
	op.page("connection-needs-reconnect")
	// On a phone, the fix is on the first screen.
	op.phone(true)
	op.open("/connections/" + id)
	op.fits("phone-connection-needs-reconnect")
	if !evalIn[bool](op, `document.querySelector('[data-testid="status-banner"] [data-copy="reconnect-url"]').getBoundingClientRect().bottom <= window.innerHeight`) {
		op.fatalf("on a phone, the reconnect link's Copy button is below the first screen")
	}
	op.open("/connections")
	op.fits("phone-connections")
	op.open("/")
	op.fits("phone-overview")
	op.phone(false)
	op.open("/connections/" + id)

	// The customer reconnects: the button says so; the connection is active again.
	customer.phone(true)
	customer.open(reconnect)
	customer.wantText(`[data-testid="connect-button"]`, "Reconnect GetResponse")
	customer.fits("phone-customer-reconnect")
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
	op.click(`[data-testid="disconnect"]`)
	op.click(`[data-testid="confirm-disconnect"]`)
	op.wantText(`[data-testid="status-banner"] h2`, "Disconnected")
	for _, sel := range []string{`[data-testid="run-test"]`, `[data-testid="refresh-now"]`, `[data-testid="disconnect"]`} {
		if n := op.count(sel); n != 0 {
			op.fatalf("a disconnected connection offers %s", sel)
		}
	}
	op.wantText(`[data-testid="status-banner"] [data-testid="make-reconnect"]`, "Create a reconnect link")
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

// TestBrowserFormsAndCharts: the default MAX domain's marker follows the chosen
// edition ("MAX only", "optional"); a
// form with errors keeps the typed secret; chart labels are readable at both widths.
func TestBrowserFormsAndCharts(t *testing.T) {
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
	marker := `(() => { const n = document.querySelector('label[for="max_domain"] [data-optional-note]'); return n ? n.textContent : ""; })()`
	if m := evalIn[string](op, marker); m != "MAX only" {
		op.fatalf("standard edition: the MAX domain is marked %q", m)
	}
	op.do("choose MAX", chromedp.SetValue(chromedp.CSS("#edition"), "max_us"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("edition").dispatchEvent(new Event("change", {bubbles: true}))`))
	if m := evalIn[string](op, marker); m != "optional" || evalIn[bool](op, `document.getElementById("max_domain").required`) {
		op.fatalf("MAX edition: the MAX domain is marked %q (want optional, never required)", m)
	}
	op.fill("#client_id", "cid")
	op.fill("#client_secret", "typed-secret-0123456789")
	op.fill("#max_domain", "not a domain!")
	op.wantStatus(op.click(`[data-testid="app-submit"]`), 422, "an app without a name, with a bad domain")
	op.wantText(`[data-testid="error-name"]`, "name")
	op.wantText(`[data-testid="error-max_domain"]`, "domain")
	// The secret is never written back into the page: the form asks for it again.
	if v := op.value("#client_secret"); v != "" {
		op.fatalf("the client secret field holds %q after the errors", v)
	}
	op.wantText(`[data-testid="error-client_secret"]`, "again")
	op.page("app-form-errors")

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
	op.click(`[data-testid="refresh-now"]`)
	if n := op.count(`[data-testid="history-axis"] span`); n != 3 {
		op.fatalf("the history strip's time axis has %d labels, want 3", n)
	}
	op.page("connection-history")
}

// TestBrowserAccountPages checks the newer operator pages for accessibility (light
// and dark): the account page, a password reset from link to new password, a new
// API key, a bulk refresh's progress.
func TestBrowserAccountPages(t *testing.T) {
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
