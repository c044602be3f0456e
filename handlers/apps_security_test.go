package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/models"
)

// TestMovingAnAppNeedsThePassword: pointing an app's API or authorize URL at
// another host (where the refresher would send the client secret and every refresh
// token) needs the signed-in operator's own password on the same form — the app's
// client secret no longer confirms anything (issue 21, finding 3: a secret of the
// attacker's choosing could be set first); the edit is recorded as an app event
// naming who changed what.
func TestMovingAnAppNeedsThePassword(t *testing.T) {
	app := newTestApp(t)
	b := app.setup(annEmail, annPass)
	form := appForm("Acme")
	form.Set("api_url", "https://api.getresponse.com/v3")
	form.Set("auth_url", "https://app.getresponse.com/oauth2_authorize.html")
	id := createApp(t, b, form)
	expireReauth(t, app)
	thief := stealSession(b)

	for _, tc := range []struct{ name, field, url, secret string }{
		{"API URL, no secret", "api_url", "https://evil.example/v3", ""},
		{"API URL, the app's own secret", "api_url", "https://evil.example/v3", clientSecret},
		{"API URL, another port", "api_url", "https://api.getresponse.com:8443/v3", ""},
		{"API URL, http downgrade", "api_url", "http://api.getresponse.com/v3", ""},
		{"authorize URL", "auth_url", "https://evil.example/authorize", ""},
		{"a new secret, no move", "client_secret", "attacker-chosen-secret", "attacker-chosen-secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edit := appForm("Acme")
			edit.Set("api_url", "https://api.getresponse.com/v3")
			edit.Set("auth_url", "https://app.getresponse.com/oauth2_authorize.html")
			edit.Set(tc.field, tc.url)
			edit.Set("client_secret", tc.secret)
			r := thief.submit("/apps/"+id+"/edit", "/apps/"+id+"/edit", edit)
			if r.status != http.StatusForbidden {
				t.Fatalf("status = %d, want 403", r.status)
			}
			mustContain(t, r.body, `data-testid="error-current_password"`, "Enter your password")
			stored, _ := app.store.AppByID(t.Context(), id)
			if stored.APIURL != "https://api.getresponse.com/v3" || stored.AuthURL != "https://app.getresponse.com/oauth2_authorize.html" {
				t.Fatalf("the app moved: %q %q", stored.APIURL, stored.AuthURL)
			}
			if ga, _ := app.built.Apps.Client(stored, ""); ga.ClientSecret != clientSecret {
				t.Fatal("the client secret was replaced")
			}
		})
	}
	// Same host, another path, the same secret typed again: no password needed.
	edit := appForm("Acme")
	edit.Set("api_url", "https://api.getresponse.com/v3/")
	edit.Set("auth_url", "https://app.getresponse.com/oauth2_authorize.html")
	before, _ := app.store.AppByID(t.Context(), id)
	if r := thief.submit("/apps/"+id+"/edit", "/apps/"+id+"/edit", edit); r.status != http.StatusSeeOther {
		t.Fatalf("same-host edit = %d\n%s", r.status, r.body)
	}
	// With the operator's password the move is allowed, and recorded.
	edit.Set("api_url", "https://gr-proxy.example.com/v3")
	if r := b.submit("/apps/"+id+"/edit", "/apps/"+id+"/edit", edit); r.status != http.StatusSeeOther {
		t.Fatalf("move with the password = %d\n%s", r.status, r.body)
	}
	var events []models.Event
	if err := app.store.DB().Where("app_id = ? AND type = ?", id, models.EventAppUpdated).Order("id").Find(&events).Error; err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("%d app.updated events, want 2 (one per saved edit)", len(events))
	}
	last := events[1]
	if last.ConnectionID != nil || last.Actor != annEmail || !strings.Contains(last.Message, "gr-proxy.example.com") ||
		!strings.Contains(last.Message, "another host, confirmed with the operator's password") {
		t.Fatalf("event = %+v", last)
	}
	for _, e := range events {
		if strings.Contains(e.Message, clientSecret) {
			t.Fatal("an event shows the client secret")
		}
	}
	// The same secret typed again replaced nothing: the audit log says an edit, not
	// a new secret, and the sealed secret is the one it was.
	var actions []string
	app.store.DB().Table("audit_log").Where("target_id = ?", id).Order("id").Pluck("action", &actions)
	if n := len(actions); n == 0 || actions[n-1] != string(models.AuditAppUpdated) {
		t.Fatalf("audit actions for the app = %v; the move must end in %s", actions, models.AuditAppUpdated)
	}
	if stored, _ := app.store.AppByID(t.Context(), id); stored.ClientSecretEnc != before.ClientSecretEnc {
		t.Fatal("typing the current secret again re-sealed it")
	}
}

// TestAppURLsRefuseQueryFragmentAndCredentials: an app URL with "?", "#",
// credentials or another scheme is refused (a "#" at the end of the API URL would
// cut off the path of every call and send the bearer token to the bare host).
func TestAppURLsRefuseQueryFragmentAndCredentials(t *testing.T) {
	app := newTestApp(t)
	b := app.setup(annEmail, annPass)
	for _, bad := range []string{
		"https://api.getresponse.com/v3#", "https://evil.example/steal#", "https://api.getresponse.com/v3?x=1",
		"https://user:pw@api.getresponse.com/v3", "https://api.getresponse.com@evil.example/v3", "ftp://api.getresponse.com/v3",
		"javascript:alert(1)", "https://api.getresponse.com/v3\\evil", "https://api.getresponse.com/v 3",
	} {
		for _, field := range []string{"api_url", "auth_url"} {
			form := appForm("Acme")
			form.Set(field, bad)
			r := b.submit("/apps/new", "/apps", form)
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-`+field+`"`) {
				t.Errorf("%s=%q: status %d, want 422 with the field's error", field, bad, r.status)
			}
		}
	}
	if apps, _ := app.store.ListApps(t.Context()); len(apps) != 0 {
		t.Fatalf("%d apps created with bad URLs", len(apps))
	}
}
