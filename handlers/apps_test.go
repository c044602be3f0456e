package handlers_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services/infra/config"
)

const clientSecret = "s3cr3t-9f8e7d6c5b4a3f2a"

func appForm(name string) url.Values {
	return url.Values{
		"name": {name}, "client_id": {"client-abc"}, "client_secret": {clientSecret}, "edition": {"standard"},
		"return_origins": {"https://app.example.com\nhttps://app.example.com/"},
	}
}

var appIDRe = regexp.MustCompile(`^/apps/(app_[a-z0-9]+)$`)

// createApp registers an app through the form and returns its ID.
func createApp(t testing.TB, b *browser, form url.Values) string {
	t.Helper()
	r := b.submit("/apps/new", "/apps", form)
	m := appIDRe.FindStringSubmatch(r.location())
	if r.status != http.StatusSeeOther || m == nil {
		t.Fatalf("create app = %d → %q\n%s", r.status, r.location(), r.body)
	}
	return m[1]
}

func TestAppValidation(t *testing.T) {
	app := newTestApp(t)
	b := app.setup(annEmail, annPass)
	cases := []struct {
		name   string
		change func(url.Values)
		field  string
	}{
		{"no name", func(f url.Values) { f.Set("name", " ") }, "name"},
		{"no client id", func(f url.Values) { f.Del("client_id") }, "client_id"},
		{"no secret", func(f url.Values) { f.Del("client_secret") }, "client_secret"},
		{"unknown edition", func(f url.Values) { f.Set("edition", "gold") }, "edition"},
		{"MAX with a bad default domain", func(f url.Values) { f.Set("edition", "max_us"); f.Set("max_domain", "not a domain") }, "max_domain"},
		{"bad logo url", func(f url.Values) { f.Set("logo_url", "http://cdn.example.com/logo.png") }, "logo_url"},
		{"bad support contact", func(f url.Values) { f.Set("support_contact", "call us") }, "support_contact"},
		{"domain on standard", func(f url.Values) { f.Set("max_domain", "example.com") }, "max_domain"},
		{"bad auth url", func(f url.Values) { f.Set("auth_url", "javascript:alert(1)") }, "auth_url"},
		{"bad api url", func(f url.Values) { f.Set("api_url", "ftp://x") }, "api_url"},
		{"origin with path", func(f url.Values) { f.Set("return_origins", "https://app.example.com/cb") }, "return_origins"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := appForm("Acme")
			tc.change(form)
			r := b.submit("/apps/new", "/apps", form)
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("status = %d, want 422", r.status)
			}
			mustContain(t, r.body, `data-testid="error-`+tc.field+`"`)
			// The secret typed into this post never comes back (issue 21, finding 7):
			// the form asks for it again.
			mustNotContain(t, r.body, clientSecret)
			if tc.field != "client_secret" {
				mustContain(t, r.body, `data-testid="error-client_secret"`, "Type the client secret again")
			}
		})
	}
	if apps, _ := app.store.ListApps(t.Context()); len(apps) != 0 {
		t.Fatalf("invalid forms created %d apps", len(apps))
	}
	createApp(t, b, appForm("Acme"))
	r := b.submit("/apps/new", "/apps", appForm("Acme"))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "already has this name") {
		t.Fatalf("duplicate name = %d", r.status)
	}
}

// realDefaults gives a test app GetResponse's real default URLs and the default base URL.
func realDefaults(c *config.Config) {
	c.BaseURL = "http://localhost:8080"
	c.GetResponseAuthURL = "https://app.getresponse.com/oauth2_authorize.html"
	c.GetResponseAPIURL = "https://api.getresponse.com/v3"
}

func TestAppCreateShowEditNeverRevealsSecret(t *testing.T) {
	app := newTestApp(t, realDefaults)
	b := app.setup(annEmail, annPass)
	mustContain(t, b.get("/apps").body, "Register your GetResponse app")
	id := createApp(t, b, appForm("Acme Templates"))

	r := b.get("/apps/" + id)
	mustContain(t, r.body, "Acme Templates", "client-abc", "Set, ends in …3f2a",
		`value="http://localhost:8080/oauth/callback"`, `data-testid="localhost-warning"`,
		"https://app.getresponse.com/oauth2_authorize.html", "https://api.getresponse.com/v3/token", "https://app.example.com", "App registered")
	if strings.Count(r.body, `<code class="block">https://app.example.com</code>`) != 1 {
		t.Error("duplicate return origin was not folded")
	}
	mustContain(t, b.get("/apps").body, "Acme Templates")

	// Editing without a secret keeps it; the form never echoes it.
	r = b.get("/apps/" + id + "/edit")
	mustContain(t, r.body, "Set, ends in …3f2a", `value="client-abc"`)
	form := appForm("Acme Renamed")
	form.Del("client_secret")
	if r := b.submit("/apps/"+id+"/edit", "/apps/"+id+"/edit", form); r.status != http.StatusSeeOther {
		t.Fatalf("edit = %d\n%s", r.status, r.body)
	}
	stored, _ := app.store.AppByID(t.Context(), id)
	apps := app.built.Apps
	ga, err := apps.Client(stored, "")
	if err != nil || ga.ClientSecret != clientSecret || stored.Name != "Acme Renamed" {
		t.Fatalf("after edit: name %q, secret kept %v (%v)", stored.Name, ga.ClientSecret == clientSecret, err)
	}
	// A failed edit shows errors and asks for the newly typed secret again: no
	// secret, stored or just typed, is ever in a page.
	form.Set("client_secret", "brand-new-secret-0000")
	form.Set("name", "")
	r = b.submit("/apps/"+id+"/edit", "/apps/"+id+"/edit", form)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid edit = %d", r.status)
	}
	mustContain(t, r.body, "Type the client secret again")
	// Replacing the secret updates the hint.
	form.Set("name", "Acme Renamed")
	b.submit("/apps/"+id+"/edit", "/apps/"+id+"/edit", form)
	mustContain(t, b.get("/apps/"+id).body, "Set, ends in …0000")

	for _, page := range app.pages {
		mustNotContain(t, page, clientSecret, "brand-new-secret")
	}
	if logs := app.logs.String(); strings.Contains(logs, clientSecret) || strings.Contains(logs, "brand-new-secret") {
		t.Error("a client secret reached the log")
	}
	assertNotInDatabaseFiles(t, app, clientSecret, "brand-new-secret-0000")
}

// assertNotInDatabaseFiles greps everything stored: the raw SQLite files (main, WAL
// and shared memory), or every row of every table on PostgreSQL.
func assertNotInDatabaseFiles(t *testing.T, app *testApp, secrets ...string) {
	t.Helper()
	contents := modelstest.Contents(t, app.store, app.dbPath)
	if len(contents) == 0 {
		t.Fatal("no database files found")
	}
	for name, data := range contents {
		for _, s := range secrets {
			if strings.Contains(data, s) {
				t.Errorf("%s holds %q in plaintext", name, s)
			}
		}
	}
}

func TestMaxAppGetsEditionURLs(t *testing.T) {
	app := newTestApp(t, realDefaults)
	b := app.setup(annEmail, annPass)
	form := appForm("Max PL")
	form.Set("edition", "max_pl")
	form.Set("max_domain", "https://www.Example.PL/")
	// The form arrived pre-filled with the standard defaults; switching edition replaces them.
	form.Set("auth_url", "https://app.getresponse.com/oauth2_authorize.html")
	form.Set("api_url", "https://api.getresponse.com/v3")
	id := createApp(t, b, form)
	stored, _ := app.store.AppByID(t.Context(), id)
	if stored.MaxDomain != "example.pl" || stored.AuthURL != "https://example.pl/oauth2_authorize.html" || stored.APIURL != "https://api3.getresponse360.pl/v3" {
		t.Fatalf("MAX app stored as %q %q %q", stored.MaxDomain, stored.AuthURL, stored.APIURL)
	}
	// A custom URL is kept as typed.
	form.Set("name", "Custom")
	form.Set("api_url", "https://gr-proxy.internal.example/v3/")
	id = createApp(t, b, form)
	stored, _ = app.store.AppByID(t.Context(), id)
	if stored.APIURL != "https://gr-proxy.internal.example/v3" {
		t.Fatalf("custom API URL stored as %q", stored.APIURL)
	}
	// Without a default domain each MAX customer authorizes on their own.
	form = appForm("Max per customer")
	form.Set("edition", "max_us")
	form.Set("auth_url", "https://app.getresponse.com/oauth2_authorize.html")
	form.Set("api_url", "https://api.getresponse.com/v3")
	id = createApp(t, b, form)
	stored, _ = app.store.AppByID(t.Context(), id)
	if stored.MaxDomain != "" || stored.AuthURL != "https://{domain}/oauth2_authorize.html" || stored.APIURL != "https://api3.getresponse360.com/v3" {
		t.Fatalf("MAX app without a default domain stored as %q %q %q", stored.MaxDomain, stored.AuthURL, stored.APIURL)
	}
	page := b.get("/apps/" + id)
	mustContain(t, page.body, "GetResponse MAX (Enterprise), .com", `name="max_domain"`, `name="allow_transfer"`)
	// Editing it keeps the placeholder (the form shows it as it is).
	edit := b.get("/apps/" + id + "/edit")
	mustContain(t, edit.body, `value="https://{domain}/oauth2_authorize.html"`)
}

func TestNoLocalhostWarningOnPublicBaseURL(t *testing.T) {
	app := newTestApp(t, func(c *config.Config) { c.BaseURL = "https://connect.example.com" })
	b := app.setup(annEmail, annPass)
	id := createApp(t, b, appForm("Acme"))
	r := b.get("/apps/" + id)
	mustContain(t, r.body, `value="https://connect.example.com/oauth/callback"`)
	mustNotContain(t, r.body, "localhost-warning")
}

func TestDeleteAppWithConnectionsNeedsConfirmation(t *testing.T) {
	app := newTestApp(t)
	b := app.setup(annEmail, annPass)
	id := createApp(t, b, appForm("Acme"))
	now := models.Now()
	conn := &models.Connection{ID: models.NewID("con"), AppID: id, AccountID: "VfEy1", Status: models.StatusActive,
		AccessTokenEnc: "v1.x.y", RefreshTokenEnc: "v1.x.z", ConnectedAt: now}
	if err := app.store.DB().Create(conn).Error; err != nil {
		t.Fatal(err)
	}
	r := b.get("/apps/" + id + "/delete")
	mustContain(t, r.body, "1 live connection</strong> uses this app", "Yes, disconnect this connection", `name="disconnect"`)
	mustNotContain(t, r.body, "(s)")
	if r := b.submit("/apps/"+id+"/delete", "/apps/"+id+"/delete", nil); r.status != http.StatusConflict {
		t.Fatalf("unconfirmed delete = %d, want 409", r.status)
	}
	if _, err := app.store.AppByID(t.Context(), id); err != nil {
		t.Fatal("unconfirmed delete removed the app")
	}
	r = b.submit("/apps/"+id+"/delete", "/apps/"+id+"/delete", url.Values{"disconnect": {"yes"}})
	if r.status != http.StatusSeeOther || r.location() != "/apps" {
		t.Fatalf("confirmed delete = %d → %q", r.status, r.location())
	}
	if _, err := app.store.AppByID(t.Context(), id); err == nil {
		t.Fatal("deleted app still listed")
	}
	got, _ := app.store.ConnectionByID(t.Context(), conn.ID)
	if got.Status != models.StatusDisconnected || got.AccessTokenEnc != "" || got.RefreshTokenEnc != "" || got.DisconnectedAt == nil {
		t.Fatalf("connection after app delete: %+v", got)
	}
	var events []models.Event
	app.store.DB().Where("connection_id = ?", conn.ID).Find(&events)
	if len(events) != 1 || events[0].Type != "connection.disconnected" || events[0].Actor != annEmail {
		t.Fatalf("events = %+v", events)
	}
	if r := b.get("/apps/" + id); r.status != http.StatusNotFound {
		t.Fatalf("deleted app page = %d", r.status)
	}
	// Its name is free again.
	createApp(t, b, appForm("Acme"))
}
