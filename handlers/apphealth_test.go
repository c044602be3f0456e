package handlers_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/mailer/mailertest"
)

// TestCheckCredentialsAtRegistration: saving an app asks GetResponse (a
// client_credentials call) whether it accepts the client ID and secret and says so
// at once; a rejected check marks the app before any customer connects; saving the
// right secret, or pressing Check credentials, makes it healthy again.
func TestCheckCredentialsAtRegistration(t *testing.T) {
	app := newTestApp(t)
	op := app.setup(annEmail, annPass)
	app.fake.AddClient("client-abc", "the-right-secret-0123456789", app.cfg.RedirectURL())

	// A wrong secret: saved, but the operator is told at once.
	form := appForm("Acme Templates")
	form.Set("client_secret", "a-wrong-secret-0123456789")
	id := createApp(t, op, form)
	page := op.get("/apps/" + id)
	mustContain(t, page.body, "client ID or secret", "Integrations &amp; API")
	stored, _ := app.store.AppByID(t.Context(), id)
	if stored.Health != models.AppCredentialsRejected {
		t.Fatalf("app health after a rejected check = %q", stored.Health)
	}
	// The right one: accepted, healthy, and it says so.
	edit := appForm("Acme Templates")
	edit.Set("client_secret", "the-right-secret-0123456789")
	if r := op.submit("/apps/"+id+"/edit", "/apps/"+id+"/edit", edit); r.status != http.StatusSeeOther {
		t.Fatalf("edit = %d", r.status)
	}
	mustContain(t, op.get("/apps/"+id).body, "GetResponse accepted the client ID and secret")
	if stored, _ = app.store.AppByID(t.Context(), id); stored.Health != models.AppHealthy {
		t.Fatalf("app health after the right secret = %q", stored.Health)
	}
	// The button asks again: GetResponse now rejects the client (the operator
	// changed the secret there), and the app says so.
	app.fake.AddClient("client-abc", "rotated-at-getresponse-0123", app.cfg.RedirectURL())
	if r := op.submit("/apps/"+id, "/apps/"+id+"/check", url.Values{}); r.status != http.StatusSeeOther {
		t.Fatalf("check = %d", r.status)
	}
	if stored, _ = app.store.AppByID(t.Context(), id); stored.Health != models.AppCredentialsRejected {
		t.Fatalf("app health after Check credentials = %q", stored.Health)
	}
}

// TestAlertOptIn: each operator chooses alert e-mails on the operators page, and
// the page tells the truth when no mail server is set: the choice is kept, but
// nothing is sent until GRCONNECT_SMTP_URL is set.
func TestAlertOptIn(t *testing.T) {
	app := newTestApp(t)
	op := app.setup(annEmail, annPass)
	page := op.get("/operators")
	mustContain(t, page.body, `data-testid="mail-disabled"`, "E-mail me alerts once a mail server is set", `data-testid="operator-alerts">`)
	r := op.submit("/operators", "/account/alerts", url.Values{"alerts": {"on"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("opt in = %d", r.status)
	}
	emails, err := app.store.AlertRecipients(t.Context())
	if err != nil || len(emails) != 1 || emails[0] != annEmail {
		t.Fatalf("recipients = %v, %v", emails, err)
	}
	page = op.get(r.location())
	mustContain(t, page.body, "no alert e-mail is sent yet", "GRCONNECT_SMTP_URL is not set", "none are sent until a mail server is set", "Stop my alert e-mails")
	mustNotContain(t, page.body, "You will get alert e-mails.", "You get alert e-mails.")
	op.submit("/operators", "/account/alerts", url.Values{"alerts": {"off"}})
	if emails, _ = app.store.AlertRecipients(t.Context()); len(emails) != 0 {
		t.Fatalf("recipients after opting out = %v", emails)
	}
	if r := op.submit("/operators", "/account/alerts", url.Values{"alerts": {"maybe"}}); r.status != http.StatusBadRequest {
		t.Fatalf("a bad value = %d", r.status)
	}
}

// TestConnectionPageShowsTheBudget: the account's GetResponse budget, as its last
// answer reported it, is on the connection's page.
func TestConnectionPageShowsTheBudget(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	mustContain(t, f.op.get("/connections/"+conn.ID).body, "not seen yet")
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/test", url.Values{"endpoint": {"/from-fields"}})
	page := f.op.get("/connections/" + conn.ID)
	mustContain(t, page.body, `data-testid="budget"`, "of 30000 calls left in this 10-minute window")
}

// TestAlertOptInWithAMailServer: with GRCONNECT_SMTP_URL set, opting in says so plainly.
func TestAlertOptInWithAMailServer(t *testing.T) {
	smtp := mailertest.NewServer()
	t.Cleanup(smtp.Close)
	app := newTestApp(t, func(cfg *config.Config) { cfg.SMTPURL = smtp.URL("", "") })
	op := app.setup(annEmail, annPass)
	mustNotContain(t, op.get("/operators").body, `data-testid="mail-disabled"`, "once a mail server is set")
	r := op.submit("/operators", "/account/alerts", url.Values{"alerts": {"on"}})
	mustContain(t, op.get(r.location()).body, "You will get alert e-mails.", "You get alert e-mails.")
}
