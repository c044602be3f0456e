package handlers_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/grconnect/grconnect/services/infra/config"
)

// TestBrowserOpsPagesOnAPhone: the audit log and the backups page at 390 px wide
// have no horizontal scroll and pass the accessibility check (light and dark);
// the audit filter works without JavaScript's help, and "Back up now" makes a
// backup the page then shows.
func TestBrowserOpsPagesOnAPhone(t *testing.T) {
	ctx := browserTest(t)
	dir := filepath.Join(t.TempDir(), "backups")
	app := newTestApp(t, func(c *config.Config) {
		c.BackupDir, c.BackupEvery, c.BackupKeep, c.AuditRetention = dir, 24*time.Hour, 7, 365*24*time.Hour
	})
	op := app.setup(annEmail, annPass)
	form := appForm("A rather long application name for a narrow screen")
	createApp(t, op, form)
	phone := newSession(t, ctx, app.srv.URL, "operator on a phone", newScreenshots(t, "ops"))
	phone.do("a 390 px wide screen", chromedp.EmulateViewport(390, 844))
	phone.open("/login")
	phone.fill("#email", annEmail)
	phone.fill("#password", annPass)
	phone.click(`[data-testid="login-submit"]`)

	noScroll := func(what string) {
		if over := evalIn[float64](phone, `document.documentElement.scrollWidth - window.innerWidth`); over > 0 {
			phone.fatalf("%s is %v px wider than a 390 px screen", what, over)
		}
	}
	phone.wantStatus(phone.open("/audit"), 200, "the audit log")
	phone.wantText("h1", "Audit log")
	if n := phone.count(`[data-testid="audit-entry"]`); n != 3 {
		phone.fatalf("%d audit entries, want 3 (setup, app, sign-in)", n)
	}
	noScroll("the audit log")
	phone.page("audit-390px")
	phone.do("choose an action", chromedp.SetValue(chromedp.CSS(`#action`), "app.created"))
	phone.click(`[data-testid="audit-filter"]`)
	if n := phone.count(`[data-testid="audit-entry"]`); n != 1 {
		phone.fatalf("%d entries after filtering on app.created, want 1", n)
	}
	phone.wantText(`[data-testid="audit-actor"]`, annEmail)

	phone.wantStatus(phone.open("/backups"), 200, "the backups page")
	phone.wantText(`[data-testid="backup-latest"]`, "none yet")
	noScroll("the backups page")
	phone.page("backups-390px")
	phone.click(`[data-testid="backup-now"]`)
	phone.wantText(`[data-testid="flash"]`, "Backup grconnect-manual-")
	// Listed apart from the scheduled ones, which it never prunes.
	phone.wantText(`[data-testid="backup-manual-file"]`, "KiB")
	if n := phone.count(`[data-testid="backup-manual-file"]`); n != 1 {
		phone.fatalf("%d backups by hand listed, want 1", n)
	}
	noScroll("the backups page with a backup")
	phone.page("backups-after-390px")
}
