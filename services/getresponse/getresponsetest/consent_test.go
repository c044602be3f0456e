package getresponsetest

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func consentURL(s *Server) string {
	return s.AuthURL() + "?" + url.Values{"response_type": {"code"}, "client_id": {clientID}, "state": {"st"}}.Encode()
}

// TestConsentPageMarkup: one h1, a label for every control, no inline
// script or style, the stylesheet served under the prefix, a CSP that
// allows nothing else.
func TestConsentPageMarkup(t *testing.T) {
	s := newTestServer(t, Options{Prefix: "/demo-getresponse"})
	a := get(t, s, consentURL(s), nil)
	if a.status != http.StatusOK {
		t.Fatalf("page: %d", a.status)
	}
	if n := strings.Count(a.body, "<h1"); n != 1 {
		t.Errorf("%d h1 elements, want 1", n)
	}
	for _, bad := range []string{"<script", " style=", "<style", "javascript:", "http://", "https://"} {
		if strings.Contains(a.body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if !strings.Contains(a.body, `<meta name="viewport" content="width=device-width, initial-scale=1">`) {
		t.Error("no viewport meta")
	}
	// Every visible control has a label naming its id.
	controls := regexp.MustCompile(`<input type="(radio|text|email)" id="([^"]+)"`).FindAllStringSubmatch(a.body, -1)
	if len(controls) != 3+1+2+3 { // three accounts, "new", name and e-mail, three outcomes
		t.Errorf("%d controls, want 9", len(controls))
	}
	for _, c := range controls {
		if !strings.Contains(a.body, `<label for="`+c[2]+`">`) {
			t.Errorf("control %s has no label", c[2])
		}
	}
	if !strings.Contains(a.body, `<link rel="stylesheet" href="/demo-getresponse/getresponse-fake.css">`) {
		t.Error("the stylesheet is not linked under the prefix")
	}
	csp := a.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP = %q", csp)
	}

	css := get(t, s, s.URL()+"/getresponse-fake.css", nil)
	if css.status != http.StatusOK || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") || !strings.Contains(css.body, "main {") {
		t.Errorf("stylesheet: %d %s", css.status, css.header.Get("Content-Type"))
	}
	if strings.Contains(css.body, "url(") || strings.Contains(css.body, "@import") {
		t.Error("the stylesheet loads something else")
	}
}

// TestConsentOutcomes drives the page's choices through its form.
func TestConsentOutcomes(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	s := newTestServer(t, Options{Now: clk.Now, OutageLength: 3 * time.Minute})
	decide := func(form url.Values) answer {
		t.Helper()
		base := url.Values{"response_type": {"code"}, "client_id": {clientID}, "state": {"st"}, "domain": {""}}
		for k, v := range form {
			base[k] = v
		}
		return postForm(t, s, s.AuthURL(), base, nil)
	}
	connectWith := func(form url.Values) (access, refresh string) {
		t.Helper()
		a := decide(form)
		if a.status != http.StatusFound {
			t.Fatalf("decision %v: %d %s", form, a.status, a.body)
		}
		m := exchange(t, s, codeFrom(t, a.header.Get("Location"))).json(t)
		return m["access_token"].(string), m["refresh_token"].(string)
	}

	t.Run("an account picked from the list", func(t *testing.T) {
		access, _ := connectWith(url.Values{"account_id": {"Qm7Kp"}, "decision": {"approve"}, "outcome": {"approve"}})
		if a := get(t, s, s.APIURL()+"/accounts", bearer(access)); a.json(t)["email"] != "maria.kowalska@example.com" {
			t.Errorf("account = %s", a.body)
		}
	})

	t.Run("a new account typed in", func(t *testing.T) {
		before := len(s.Accounts())
		access, _ := connectWith(url.Values{"account_id": {"new"}, "new_name": {"Zoe Quinn Park"}, "new_email": {"zoe@example.net"}, "decision": {"approve"}})
		a := get(t, s, s.APIURL()+"/accounts", bearer(access)).json(t)
		if a["firstName"] != "Zoe" || a["lastName"] != "Quinn Park" || a["email"] != "zoe@example.net" || len(s.Accounts()) != before+1 {
			t.Errorf("new account = %v", a)
		}
		if ff := get(t, s, s.APIURL()+"/from-fields", bearer(access)); !strings.Contains(ff.body, `"email":"zoe@example.net"`) {
			t.Errorf("from-fields = %s", ff.body)
		}
		// The page offers it next time.
		if !strings.Contains(get(t, s, consentURL(s), nil).body, "Zoe Quinn Park (zoe@example.net)") {
			t.Error("the new account is not offered afterwards")
		}
	})

	t.Run("a new account without an address", func(t *testing.T) {
		before := len(s.Accounts())
		a := decide(url.Values{"account_id": {"new"}, "new_name": {`<b>Zed</b>`}, "new_email": {"not an address"}, "decision": {"approve"}})
		if a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `role="alert"`) ||
			!strings.Contains(a.body, `value="&lt;b&gt;Zed&lt;/b&gt;"`) || !strings.Contains(a.body, `value="new" data-testid="consent-account-new" checked`) ||
			!strings.Contains(a.body, `aria-describedby="consent-error"`) {
			t.Errorf("invalid new account: %d\n%s", a.status, a.body)
		}
		if len(s.Accounts()) != before {
			t.Error("an invalid account was added")
		}
	})

	t.Run("deny", func(t *testing.T) {
		a := decide(url.Values{"account_id": {"VfEy1"}, "decision": {"deny"}, "outcome": {"approve_outage"}})
		if loc := a.header.Get("Location"); a.status != http.StatusFound || !strings.Contains(loc, "error=access_denied") || strings.Contains(loc, "code=") {
			t.Errorf("deny: %d %s", a.status, loc)
		}
		if _, ok := s.Outage(DefaultAccountID); ok {
			t.Error("a denial armed an outage")
		}
	})

	t.Run("the refresh token is rejected later", func(t *testing.T) {
		access, refresh := connectWith(url.Values{"account_id": {"Zr2Tx"}, "decision": {"approve"}, "outcome": {"approve_reject_refresh"}})
		if a := get(t, s, s.APIURL()+"/accounts", bearer(access)); a.status != http.StatusOK {
			t.Errorf("API call before the refresh: %d", a.status)
		}
		for i := range 2 {
			if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusBadRequest || a.json(t)["error"] != "invalid_grant" {
				t.Errorf("refresh %d: %d %s", i, a.status, a.body)
			}
		}
		// Another connection of the same account is not affected.
		_, other := connectWith(url.Values{"account_id": {"Zr2Tx"}, "decision": {"approve"}})
		if a := tokenCall(t, s, refreshForm(other), nil); a.status != http.StatusOK {
			t.Errorf("a normal connection of the account: %d", a.status)
		}
	})

	t.Run("GetResponse fails for a while", func(t *testing.T) {
		access, refresh := connectWith(url.Values{"account_id": {"VfEy1"}, "decision": {"approve"}, "outcome": {"approve_outage"}})
		if until, ok := s.Outage(DefaultAccountID); !ok || !until.IsZero() {
			t.Fatalf("Outage = %v, %v; want armed", until, ok)
		}
		// The app's "who am I" call works, then the outage starts.
		if a := get(t, s, s.APIURL()+"/accounts", bearer(access)); a.status != http.StatusOK {
			t.Fatalf("first API call: %d", a.status)
		}
		if until, ok := s.Outage(DefaultAccountID); !ok || !until.Equal(clk.Now().Add(3*time.Minute)) {
			t.Fatalf("Outage = %v, %v; want until now + 3 minutes", until, ok)
		}
		clk.Add(time.Minute)
		a := get(t, s, s.APIURL()+"/from-fields", bearer(access))
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "120" {
			t.Errorf("API call in the outage: %d %v", a.status, a.header)
		}
		if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusServiceUnavailable {
			t.Errorf("refresh in the outage: %d", a.status)
		}
		clk.Add(2 * time.Minute)
		if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusOK {
			t.Errorf("refresh after the outage: %d %s", a.status, a.body)
		}
		if _, ok := s.Outage(DefaultAccountID); ok {
			t.Error("the outage did not end")
		}
	})
}

// TestOutageStartsAtTheFirstRefresh: without an API call first, an armed
// outage starts with the account's first refresh, which fails.
func TestOutageStartsAtTheFirstRefresh(t *testing.T) {
	s := newTestServer(t, Options{})
	redirect, err := s.Decide(Consent{ClientID: clientID, State: "s", Outcome: OutcomeApproveOutage})
	if err != nil {
		t.Fatal(err)
	}
	a := exchange(t, s, codeFrom(t, redirect))
	if a.status != http.StatusOK {
		t.Fatalf("the exchange must work: %d", a.status)
	}
	if a := tokenCall(t, s, refreshForm(a.json(t)["refresh_token"].(string)), nil); a.status != http.StatusServiceUnavailable {
		t.Errorf("first refresh: %d", a.status)
	}
	if err := s.SetOutage(DefaultAccountID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Outage(DefaultAccountID); ok {
		t.Error("SetOutage(zero) did not end it")
	}
	if err := s.SetOutage("nobody", time.Now()); err != ErrUnknownAccount {
		t.Errorf("SetOutage(unknown) = %v", err)
	}
}

func TestDemoAccounts(t *testing.T) {
	accts := New(Options{}).Accounts()
	if len(accts) < 3 || accts[0].AccountID != DefaultAccountID || accts[0].FirstName != "John" {
		t.Fatalf("accounts = %+v", accts)
	}
	seen := map[string]bool{}
	for _, a := range accts {
		if seen[a.AccountID] || a.Email == "" || len(a.FromFields) == 0 || len(a.Campaigns) == 0 {
			t.Errorf("account %+v", a)
		}
		seen[a.AccountID] = true
	}
}
