package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/mailer/mailertest"
)

var stepRe = regexp.MustCompile(`data-testid="step-([a-z-]+)" data-done="(yes|no)"`)

// steps reads the overview's first-run checklist: step → done.
func steps(t *testing.T, body string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range stepRe.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2] == "yes"
	}
	return out
}

// TestSetupChecklistTicksFromRealState: the overview's first-run checklist ticks
// each step from the install's real state — an app, an API key, a connect link,
// a public base URL, backups, a mail server — unfolded while the first three are
// to do, and gone once everything is done.
func TestSetupChecklistTicksFromRealState(t *testing.T) {
	t.Parallel()
	smtp := mailertest.NewServer()
	t.Cleanup(smtp.Close)
	f := newConnectFixture(t, getresponsetest.Options{}, func(cfg *config.Config) { cfg.SMTPURL = smtp.URL("", "") })
	body := f.op.get("/").body
	got := steps(t, body)
	// On PostgreSQL the database's own backups keep the data: that step is done.
	pg := f.store.IsPostgres()
	done := func(n int) string {
		if pg {
			n++
		}
		return fmt.Sprintf("Get started: %d of 6 done", n)
	}
	want := map[string]bool{"app": true, "api-key": false, "link": false, "base-url": false, "backups": pg, "mail": true}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("step %s done = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	mustContain(t, body, `<details class="card setup" open data-testid="setup-checklist">`, done(2), `href="/api-keys"`,
		"GetResponse refuses localhost redirect URLs")
	f.makeLink("customer-1", "")
	if _, _, err := f.apiKeys.Create(context.Background(), services.APIKeyInput{Name: "backend", CreatedBy: annEmail}); err != nil {
		t.Fatal(err)
	}
	body = f.op.get("/").body
	got = steps(t, body)
	if !got["link"] || !got["api-key"] {
		t.Fatalf("after a link and a key: %v", got)
	}
	// The first steps done, the rest folds away.
	mustContain(t, body, `<details class="card setup" data-testid="setup-checklist">`, done(4))
	// A revoked key does not count.
	var key models.APIKey
	f.store.DB().First(&key)
	f.store.RevokeAPIKey(context.Background(), key.ID, annEmail)
	if steps(t, f.op.get("/").body)["api-key"] {
		t.Error("a revoked key still ticks the API key step")
	}
	// Nor does one that expired: a key that still works does.
	short, _, err := f.apiKeys.Create(context.Background(), services.APIKeyInput{Name: "short-lived", CreatedBy: annEmail, ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !steps(t, f.op.get("/").body)["api-key"] {
		t.Error("a key that works for another hour does not tick the API key step")
	}
	f.store.DB().Model(&models.APIKey{}).Where("id = ?", short.ID).Update("expires_at", models.Now().Add(-time.Minute))
	if steps(t, f.op.get("/").body)["api-key"] {
		t.Error("an expired key still ticks the API key step")
	}
}

// TestSetupChecklistGoesWhenAllIsDone: with a public address, backups, a mail
// server, an app, a key and a link, the overview shows no checklist.
func TestSetupChecklistGoesWhenAllIsDone(t *testing.T) {
	t.Parallel()
	smtp := mailertest.NewServer()
	t.Cleanup(smtp.Close)
	f := newConnectFixture(t, getresponsetest.Options{}, func(cfg *config.Config) {
		cfg.SMTPURL = smtp.URL("", "")
		cfg.BaseURL = "https://connect.example.com"
		cfg.BackupDir = t.TempDir()
	})
	mustContain(t, f.op.get("/").body, `data-testid="setup-checklist"`)
	f.makeLink("customer-1", "")
	f.apiKeys.Create(context.Background(), services.APIKeyInput{Name: "backend", CreatedBy: annEmail})
	mustNotContain(t, f.op.get("/").body, `data-testid="setup-checklist"`)
}

// TestAppFormSummarizesItsErrors: a form with errors starts with a summary that
// takes the focus, each error a link to its field; the redirect URL stands where
// it is copied, with GetResponse's settings page and the localhost warning.
func TestAppFormSummarizesItsErrors(t *testing.T) {
	t.Parallel()
	app := newTestApp(t)
	b := app.setup(annEmail, annPass)
	page := b.get("/apps/new").body
	mustContain(t, page, `data-testid="redirect-help"`, `id="redirect-url"`, `data-testid="localhost-warning"`,
		`href="`+strings.TrimSuffix(app.fake.AuthURL(), "/oauth2_authorize.html")+`/authorizations" target="_blank" rel="noopener" data-testid="settings-link"`)
	mustNotContain(t, page, `data-testid="error-summary"`)
	// The standard GetResponse's own page, for an install pointed at it.
	std := newTestApp(t, func(cfg *config.Config) {
		cfg.GetResponseAuthURL, cfg.GetResponseAPIURL = "https://app.getresponse.com/oauth2_authorize.html", "https://api.getresponse.com/v3"
	})
	mustContain(t, std.setup(annEmail, annPass).get("/apps/new").body, `href="https://app.getresponse.com/authorizations"`)

	r := b.submit("/apps/new", "/apps", url.Values{"name": {""}, "client_id": {""}, "client_secret": {""}, "edition": {"standard"},
		"return_origins": {"not-a-url"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d", r.status)
	}
	i := strings.Index(r.body, `data-testid="error-summary"`)
	if i < 0 || i > strings.Index(r.body, `data-testid="app-form"`) {
		t.Fatal("no error summary above the form")
	}
	summary := r.body[strings.LastIndex(r.body[:i], "<div"):]
	summary = summary[:strings.Index(summary, "</div>")]
	mustContain(t, summary, `tabindex="-1" autofocus data-error-summary`, `role="alert"`, "Fix 4 problems to go on",
		`<a href="#name">Name:`, `<a href="#client_id">Client ID:`, `<a href="#client_secret">Client secret:`, `<a href="#return_origins">Return origins:`)
	// In the fields' order.
	if strings.Index(summary, "#name") > strings.Index(summary, "#client_id") || strings.Index(summary, "#client_secret") > strings.Index(summary, "#return_origins") {
		t.Errorf("the summary is not in the fields' order: %s", summary)
	}
}

// TestAppsListShowsHealth: the apps list says each app's health in words and colour.
func TestAppsListShowsHealth(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	body := f.op.get("/apps").body
	mustContain(t, body, `<th scope="col">Health</th>`, `health-ok">Healthy<`)
	f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Updates(map[string]any{"health": models.AppCredentialsRejected,
		"health_reason": "invalid_client", "health_since": models.Now()})
	f.store.AppsWritten()
	body = f.op.get("/apps").body
	mustContain(t, body, `health-operator">Credentials rejected<`, "GetResponse answered invalid_client")
	f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Updates(map[string]any{"health": models.AppRefused, "health_reason": "HTTP 503"})
	f.store.AppsWritten()
	mustContain(t, f.op.get("/apps").body, `health-wait">Refused for now<`)
}
