package handlers_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/grconnect/grconnect/models"
)

// TestBrowserLeastPrivilegePages drives the new pages in Chromium as people use
// them: an admin makes an API key with two scopes for one app and rolls it,
// invites a viewer who joins through the invitation page, opens a role change;
// the viewer sees the reasons instead of the actions; the audit log is a compact
// table, one line per entry at 1280 px. Each page passes the accessibility check
// and the fits-width check at 1280 px and at 390 px, light and dark.
func TestBrowserLeastPrivilegePages(t *testing.T) {
	ctx := browserTest(t)
	app := newTestApp(t)
	shots := newScreenshots(t, "roles")
	ann := app.setup(annEmail, annPass)
	createApp(t, ann, appForm("Acme Templates with a long name for narrow screens"))
	for i := range 60 { // more than one screen of the audit log
		if err := app.store.RecordAudit(t.Context(), models.AuditEntry{Actor: "cli", IP: "2001:db8:85a3::7334",
			Action: models.AuditBackupCreated, TargetType: "install", Details: "Backup " + strings.Repeat("x", 3*i) + " made"}); err != nil {
			t.Fatal(err)
		}
	}

	op := newSession(t, ctx, app.srv.URL, "admin", shots)
	op.open("/login")
	op.fill("#email", annEmail)
	op.fill("#password", annPass)
	op.click(`[data-testid="login-submit"]`)

	// both checks a page at 1280 px and at 390 px (fits checks light and dark; page
	// also runs the accessibility check in both), then goes back to the desktop.
	both := func(s *session, step string) {
		t.Helper()
		s.page(step + "-1280")
		s.fits(step + "-1280")
		s.phone(true)
		s.fits(step + "-390")
		s.page(step + "-390")
		s.phone(false)
	}

	// An API key with two scopes, for one app, until a date.
	op.open("/api-keys")
	op.fill("#name", "token service")
	op.do("tick two scopes", chromedp.Click(chromedp.CSS(`#scope-tokens\:read`), chromedp.NodeVisible), chromedp.Click(chromedp.CSS(`#scope-proxy`), chromedp.NodeVisible))
	appValue := evalIn[string](op, `document.querySelector('#app_id option:nth-child(2)').value`)
	op.do("choose the app and the expiry", chromedp.SetValue(chromedp.CSS("#app_id"), appValue), chromedp.SetValue(chromedp.CSS("#expires"), "90d"))
	op.fill("#current_password", annPass)
	op.wantStatus(op.click(`[data-testid="create-apikey"]`), 200, "create the key")
	op.wantText(`[data-testid="new-key-facts"]`, "tokens:read", "proxy", "Acme Templates")
	both(op, "api-key-created")
	op.open("/api-keys")
	op.wantText(`[data-testid="apikey-scopes"]`, "tokens:read")
	both(op, "api-keys")
	op.click(`[data-testid="roll-apikey"]`)
	op.wantText("h1", "Roll “token service”?")
	if v := op.value("#overlap"); v != "24h" {
		op.fatalf("the roll offers %q, want 24 hours", v)
	}
	both(op, "api-key-roll")
	op.click(`[data-testid="confirm-roll"]`)
	op.wantText(`[data-testid="rolled-note"]`, "The old secret keeps working until")
	both(op, "api-key-rolled")

	// An invitation, shown once, and the page it opens.
	op.open("/operators")
	op.fill("#email", "vera@example.com")
	op.do("choose viewer", chromedp.SetValue(chromedp.CSS("#role"), "viewer"))
	op.click(`[data-testid="add-operator"]`)
	link := op.value("#invitation-url")
	op.wantText(`[data-testid="show-once"]`, "Whoever opens it joins as Viewer")
	both(op, "operator-invited")
	op.open("/operators")
	op.wantText(`[data-testid="invitation-row"]`, "vera@example.com", "Viewer")
	both(op, "operators-with-invitation")

	vera := newSession(t, ctx, app.srv.URL, "viewer", shots)
	vera.open(link)
	vera.wantText("h1", "Join grconnect")
	both(vera, "invitation")
	vera.fill("#password", "vera's own password")
	vera.fill("#password_confirm", "vera's own password")
	vera.click(`[data-testid="invite-submit"]`)
	if p := vera.path(); p != "/" {
		vera.fatalf("joining led to %s", p)
	}
	vera.wantText(`[data-testid="flash"]`, "You joined as Viewer")
	vera.wantStatus(vera.open(link), 410, "the used invitation")

	// The viewer: the reasons where the actions are.
	vera.open("/operators")
	vera.wantText(`[data-testid="viewer-note"]`, "Viewers cannot")
	if n := vera.count(`[data-testid="add-operator"], [data-testid="change-role"], [data-testid="revoke-invitation"]`); n != 0 {
		vera.fatalf("the viewer's operators page offers %d actions", n)
	}
	both(vera, "operators-as-viewer")
	vera.open("/api-keys")
	if n := vera.count(`[data-testid="create-apikey"], [data-testid="roll-apikey"], [data-testid="revoke-apikey"]`); n != 0 {
		vera.fatalf("the viewer's API keys page offers %d actions", n)
	}
	both(vera, "api-keys-as-viewer")
	vera.open("/account")
	vera.wantText(`[data-testid="account-role"]`, "Viewer", "ask an admin")
	both(vera, "account-as-viewer")

	// The admin changes Vera's role.
	op.open("/operators")
	op.click(`[data-testid="operator-row"][data-email^="vera"] [data-testid="change-role"]`)
	op.wantText("h1", "Role of vera")
	both(op, "operator-role")
	op.do("choose admin", chromedp.Click(chromedp.CSS(`#role-admin`), chromedp.NodeVisible))
	op.click(`[data-testid="save-role"]`)
	op.wantText(`[data-testid="flash"]`, "is now Admin")

	// The audit log: a compact table, one line per entry at 1280 px, 50 a screen;
	// what changed opens below its action.
	op.open("/audit")
	if n := op.count(`[data-testid="audit-entry"]`); n != 50 {
		op.fatalf("%d entries on the first screen, want 50", n)
	}
	heights := evalIn[[]float64](op, `Array.from(document.querySelectorAll('[data-testid="audit-entry"]')).map(r => r.getBoundingClientRect().height)`)
	line := evalIn[float64](op, `parseFloat(getComputedStyle(document.querySelector('.audit-table td')).lineHeight)`)
	for i, h := range heights {
		if h > line+12 { // a line and the cell's padding
			op.fatalf("entry %d is %.0f px tall (a line is %.0f px): not one line at 1280 px", i+1, h, line)
		}
	}
	// Nothing spills into the next column.
	if spill := evalIn[[]string](op, `Array.from(document.querySelectorAll('[data-testid="audit-entry"] td > *')).filter(el => {
			const c = el.closest("td").getBoundingClientRect(), r = el.getBoundingClientRect(); return r.right > c.right + 1;
		}).map(el => el.textContent.trim().slice(0, 40))`); len(spill) > 0 {
		op.fatalf("audit cells spill into the next column: %q", spill)
	}
	op.wantText(`[data-testid="audit-target"]`, "operator", "vera@example.com")
	op.do("open an entry's details", chromedp.Click(chromedp.CSS(`[data-testid="audit-entry"] details summary`), chromedp.NodeVisible))
	op.wantText(`[data-testid="audit-details"]`, "Role of vera")
	both(op, "audit")
	op.do("filter on role changes", chromedp.SetValue(chromedp.CSS("#action"), "operator.role_changed"))
	op.click(`[data-testid="audit-filter"]`)
	if n := op.count(`[data-testid="audit-entry"]`); n != 1 {
		op.fatalf("%d role changes listed, want 1", n)
	}
	op.wantText(`[data-testid="audit-action"]`, "Changed a role")
	both(op, "audit-filtered")
	// The export link carries the filter.
	href := evalIn[string](op, `document.querySelector('[data-testid="audit-export-csv"]').getAttribute("href")`)
	if !strings.Contains(href, "action=operator.role_changed") || !strings.Contains(href, "format=csv") {
		op.fatalf("the CSV export link is %q", href)
	}
	if r := ann.get(href); r.status != 200 || strings.Count(r.body, "\n") != 2 {
		t.Fatalf("the filtered CSV export = %d:\n%s", r.status, r.body)
	}
}
