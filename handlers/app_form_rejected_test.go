package handlers_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestSavingRejectedCredentialsAsksFirst: an edit whose new client secret
// GetResponse rejects is not saved: the form asks to keep the current credentials
// or save anyway, with everything typed kept except the secret, which is never
// written back and must be typed again. Keeping changes nothing; saving anyway
// stores it and marks the app.
func TestSavingRejectedCredentialsAsksFirst(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	const wrong = "a-mistyped-secret-0123456789"
	f.secrets = append(f.secrets, wrong)
	edit := appForm("Acme Templates Renamed")
	edit.Set("client_id", f.clientID)
	edit.Set("client_secret", wrong)
	edit.Set("support_contact", "help@acme.example")
	checks := f.fake.Count(getresponsetest.EndpointTokenClientCredentials)
	r := f.op.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", edit)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("saving rejected credentials = %d, want the question (422)\n%s", r.status, r.body)
	}
	mustContain(t, r.body, `data-testid="credentials-rejected"`, "GetResponse rejected these credentials — keep the current ones, or save anyway",
		`data-testid="keep-current"`, `href="/apps/`+f.appID+`"`, `data-testid="save-anyway"`, `data-testid="error-client_secret"`, "Type the client secret again",
		`value="Acme Templates Renamed"`, `value="help@acme.example"`, `name="secret_required" value="yes"`)
	mustNotContain(t, r.body, wrong, clientSecret)
	if n := f.fake.Count(getresponsetest.EndpointTokenClientCredentials) - checks; n != 1 {
		t.Fatalf("the question took %d client_credentials calls, want 1", n)
	}
	stored, _ := f.store.AppByID(t.Context(), f.appID)
	if stored.Name != "Acme Templates" || stored.SupportContact != "" || stored.Health != models.AppHealthy {
		t.Fatalf("the question saved something: %q %q %q", stored.Name, stored.SupportContact, stored.Health)
	}
	ga, _ := f.built.Apps.Client(stored, "")
	if ga.ClientSecret != clientSecret {
		t.Fatal("the rejected secret replaced the working one")
	}
	// Keeping the current ones: the app keeps working.
	if r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/refresh", nil); r.status != http.StatusOK {
		t.Fatalf("refresh with the kept credentials = %d", r.status)
	}

	// Save anyway without typing the secret again: asked for it, nothing saved.
	again := url.Values{}
	for k, v := range edit {
		again[k] = v
	}
	again.Set("client_secret", "")
	again.Set("save_anyway", "yes")
	again.Set("secret_required", "yes")
	r = f.op.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", again)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("save anyway without the secret = %d", r.status)
	}
	mustContain(t, r.body, `data-testid="error-client_secret"`, "Type the client secret again")
	if stored, _ := f.store.AppByID(t.Context(), f.appID); stored.Name != "Acme Templates" {
		t.Fatal("save anyway without the secret saved the form")
	}

	// Save anyway with it: stored, and the app marked for the operator.
	again.Set("client_secret", wrong)
	r = f.op.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", again)
	if r.status != http.StatusSeeOther {
		t.Fatalf("save anyway = %d\n%s", r.status, r.body)
	}
	mustContain(t, f.op.get(r.location()).body, "Changes saved", "client ID or secret")
	stored, _ = f.store.AppByID(t.Context(), f.appID)
	if stored.Name != "Acme Templates Renamed" || stored.Health != models.AppCredentialsRejected {
		t.Fatalf("after save anyway: %q, health %q", stored.Name, stored.Health)
	}
	for _, page := range f.pages {
		mustNotContain(t, page, wrong)
	}
}
