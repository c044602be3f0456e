package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/mailer/mailertest"
)

// TestCustomerIsNeverAskedToRetryAnOperatorProblem: when GetResponse refuses the
// operator's app in the code exchange (invalid_client, a MAX domain it does not
// know), the customer's page says the integration is unavailable for now and
// that the operator has been told, with the app's support contact and no Try
// again; the app is marked and the alert e-mail goes out. From then on the
// connect page says so before anyone goes to GetResponse, and its button is
// gone. Causes that are the customer's (declining access) or nobody's
// (GetResponse failing for now) keep their retry.
func TestCustomerIsNeverAskedToRetryAnOperatorProblem(t *testing.T) {
	for _, tc := range []struct {
		name    string
		failure getresponsetest.TokenFailure
		health  models.AppHealth
	}{
		{"invalid_client", getresponsetest.TokenInvalidClient, models.AppCredentialsRejected},
		{"domain not found", getresponsetest.TokenDomainNotFound, models.AppMisconfigured},
	} {
		t.Run(tc.name, func(t *testing.T) {
			smtp := mailertest.NewServer()
			t.Cleanup(smtp.Close)
			f := newConnectFixture(t, getresponsetest.Options{}, func(cfg *config.Config) { cfg.SMTPURL = smtp.URL("", "") })
			f.op.submit("/operators", "/account/alerts", url.Values{"alerts": {"on"}})
			if err := f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Update("support_contact", "help@acme.example").Error; err != nil {
				t.Fatal(err)
			}
			customer := f.browser()
			link := f.makeLink("customer-1", "https://app.example.com/back")

			// The customer's own cause keeps its retry; so does GetResponse failing for now.
			redirect, _ := f.fake.Deny(f.clientID, f.startFlow(customer, link))
			mustContain(t, f.callback(customer, redirect).body, `data-testid="try-again"`)
			redirect, _ = f.fake.Approve(f.clientID, f.startFlow(customer, link), "")
			f.fake.FailToken(getresponsetest.TokenServerError, 1)
			if r := f.callback(customer, redirect); r.status != http.StatusBadGateway || !strings.Contains(r.body, `data-testid="try-again"`) {
				t.Fatalf("a 500 in the exchange = %d, want 502 with Try again", r.status)
			}

			// A second customer has the connect page open.
			other := f.browser()
			otherPath := strings.TrimPrefix(f.makeLink("customer-2", ""), f.srv.URL)
			page := other.get(otherPath)
			csrf := csrfRe.FindStringSubmatch(page.body)
			if csrf == nil {
				t.Fatal("no CSRF field on the connect page")
			}

			// GetResponse refuses the app in the exchange.
			redirect, _ = f.fake.Approve(f.clientID, f.startFlow(customer, link), "")
			f.fake.FailToken(tc.failure, 1)
			r := f.callback(customer, redirect)
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("exchange refused for the app = %d, want 503\n%s", r.status, r.body)
			}
			mustContain(t, r.body, `data-kind="app_unavailable"`, "unavailable for now", "has been told", `data-testid="problem-support"`,
				"mailto:help@acme.example", "error=app_unavailable", "Back to Acme Templates")
			mustNotContain(t, r.body, `data-testid="try-again"`, "Please try again", "try again whenever")
			app, _ := f.store.AppByID(t.Context(), f.appID)
			if app.Health != tc.health {
				t.Fatalf("app health after the exchange = %q, want %q", app.Health, tc.health)
			}
			if sent, err := f.built.Alerts.RunOnce(t.Context()); err != nil || sent == 0 {
				t.Fatalf("alerts: %d sent, %v", sent, err)
			}
			msgs := smtp.Messages()
			if len(msgs) != 1 || !strings.Contains(msgs[0].Data, "Acme Templates") || msgs[0].To[0] != annEmail {
				t.Fatalf("alert e-mails: %+v", msgs)
			}

			// A connect page opened now says so instead of offering GetResponse.
			fresh := f.browser()
			freshPath := strings.TrimPrefix(f.makeLink("customer-3", ""), f.srv.URL)
			page = fresh.get(freshPath)
			if page.status != http.StatusServiceUnavailable {
				t.Fatalf("connect page of a refused app = %d", page.status)
			}
			mustContain(t, page.body, "This integration is unavailable for now", "has been told", "mailto:help@acme.example")
			mustNotContain(t, page.body, `data-testid="connect-button"`, `data-testid="try-again"`, `action="/connect/`)
			// The page loaded before: its button leads nowhere near GetResponse now.
			posted := other.post(otherPath, url.Values{"_csrf": {csrf[1]}})
			if posted.status != http.StatusServiceUnavailable || posted.location() != "" || !strings.Contains(posted.body, "unavailable for now") {
				t.Fatalf("pressing Connect on a refused app = %d → %q", posted.status, posted.location())
			}
		})
	}
}

// TestATypedMaxAddressIsTheCustomersToCorrect: when the GetResponse MAX address a
// customer typed themselves is refused in the code exchange, the customer is told
// to check it and may try again, and the app is not marked: the address was not
// the operator's configuration.
func TestATypedMaxAddressIsTheCustomersToCorrect(t *testing.T) {
	app := newTestAppWith(t, getresponsetest.Options{})
	op := app.setup(annEmail, annPass)
	form := appForm("Max Templates")
	form.Set("client_id", "max-client")
	form.Set("edition", "max_us")
	app.fake.AddClient("max-client", clientSecret, app.cfg.RedirectURL())
	id := createApp(t, op, form)
	if err := app.store.DB().Exec("UPDATE apps SET auth_url = ?, api_url = ? WHERE id = ?", app.fake.AuthURL()+"?domain={domain}", app.fake.APIURL(), id).Error; err != nil {
		t.Fatal(err)
	}
	f := &connectFixture{testApp: app, op: op, appID: id, clientID: "max-client"}
	alpha := f.addAccount("alphaAcct", "alpha.example.com")
	path := strings.TrimPrefix(f.makeLink("customer-alpha", ""), f.srv.URL)
	customer := f.browser()
	r := customer.submit(path, path, url.Values{"max_domain": {"alpha.example.com"}})
	auth, err := url.Parse(r.location())
	if r.status != http.StatusSeeOther || err != nil {
		t.Fatalf("start = %d %q", r.status, r.location())
	}
	redirect, err := f.fake.Decide(getresponsetest.Consent{ClientID: f.clientID, State: auth.Query().Get("state"), Domain: "alpha.example.com", AccountID: alpha})
	if err != nil {
		t.Fatal(err)
	}
	f.fake.FailToken(getresponsetest.TokenDomainNotFound, 1)
	r = f.callback(customer, redirect)
	if r.status != http.StatusBadGateway {
		t.Fatalf("a refused typed address = %d\n%s", r.status, r.body)
	}
	mustContain(t, r.body, `data-kind="exchange_failed"`, "alpha.example.com", "Check the address", `data-testid="try-again"`)
	if stored, _ := f.store.AppByID(t.Context(), id); stored.Health != models.AppHealthy {
		t.Fatalf("a customer's typed address marked the app %q", stored.Health)
	}
}
