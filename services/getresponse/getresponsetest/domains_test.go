package getresponsetest

import (
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestMaxDomains: several MAX customers on one fake, each on their own
// domain: each consent page offers its domain's accounts only, and each
// customer's codes and tokens work only with their own X-Domain.
func TestMaxDomains(t *testing.T) {
	s := newTestServer(t, Options{})
	shop := s.AddAccount(Account{AccountID: "Shop1", Domain: "Shop.Example.com", FirstName: "Sam", Email: "sam@shop.example.com"})
	shop2 := s.AddAccount(Account{AccountID: "Shop2", Domain: "shop.example.com", FirstName: "Sue", Email: "sue@shop.example.com"})
	news := s.AddAccount(Account{AccountID: "News1", Domain: "news.example.org", FirstName: "Nia", Email: "nia@news.example.org"})

	page := func(domain string) string {
		t.Helper()
		q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "state": {"s"}}
		a := get(t, s, s.AuthURLFor(domain)+"&"+q.Encode(), nil)
		if a.status != http.StatusOK {
			t.Fatalf("page of %s: %d", domain, a.status)
		}
		return a.body
	}
	offered := func(body string) []string {
		var ids []string
		for _, part := range strings.Split(body, `name="account_id" value="`)[1:] {
			ids = append(ids, part[:strings.IndexByte(part, '"')])
		}
		return ids
	}
	if got := offered(page("SHOP.example.com")); strings.Join(got, ",") != "Shop1,Shop2,new" {
		t.Errorf("shop's page offers %v", got)
	}
	if body := page("shop.example.com"); !strings.Contains(body, `name="domain" value="shop.example.com"`) {
		t.Error("the page does not post its domain back")
	}
	if got := offered(page("news.example.org")); strings.Join(got, ",") != "News1,new" {
		t.Errorf("news's page offers %v", got)
	}
	// The standard page offers the standard accounts only.
	if got := offered(page("")); strings.Join(got, ",") != "VfEy1,Qm7Kp,Zr2Tx,new" {
		t.Errorf("the standard page offers %v", got)
	}
	// The Host selects the domain too, as a real MAX authorize page.
	req, _ := http.NewRequest(http.MethodGet, s.AuthURL()+"?response_type=code&client_id="+url.QueryEscape(clientID), nil)
	req.Host = "news.example.org"
	if got := offered(do(t, s, req).body); strings.Join(got, ",") != "News1,new" {
		t.Errorf("the page for Host news.example.org offers %v", got)
	}

	// A decision for another domain's account is refused.
	form := url.Values{"client_id": {clientID}, "state": {"s"}, "domain": {"news.example.org"}, "account_id": {shop}, "decision": {"approve"}}
	if a := postForm(t, s, s.AuthURL(), form, nil); a.status != http.StatusBadRequest {
		t.Errorf("approving shop's account on news's page: %d", a.status)
	}
	if _, err := s.Decide(Consent{ClientID: clientID, Domain: "news.example.org", AccountID: shop}); err != ErrUnknownAccount {
		t.Errorf("Decide across domains: %v", err)
	}

	// Each customer connects with their own X-Domain.
	type conn struct{ account, domain, access, refresh string }
	var conns []conn
	for _, c := range []struct{ account, domain string }{{shop, "shop.example.com"}, {shop2, "shop.example.com"}, {news, "news.example.org"}} {
		redirect, err := s.Decide(Consent{ClientID: clientID, State: "s", Domain: c.domain, AccountID: c.account})
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {codeFrom(t, redirect)}}
		// Wrong or missing X-Domain first: refused, and the code stays usable.
		for _, wrong := range []string{"", "other.example.com"} {
			if a := tokenCall(t, s, form, map[string]string{"X-Domain": wrong}); a.status != http.StatusUnauthorized ||
				!strings.Contains(a.body, `"authenticationType":"x-domain"`) {
				t.Errorf("%s: exchange with X-Domain %q: %d %s", c.account, wrong, a.status, a.body)
			}
		}
		a := tokenCall(t, s, form, map[string]string{"X-Domain": strings.ToUpper(c.domain)})
		if a.status != http.StatusOK {
			t.Fatalf("%s: exchange: %d %s", c.account, a.status, a.body)
		}
		m := a.json(t)
		conns = append(conns, conn{c.account, c.domain, m["access_token"].(string), m["refresh_token"].(string)})
	}
	for _, c := range conns {
		if a := get(t, s, s.APIURL()+"/accounts", map[string]string{"Authorization": "Bearer " + c.access, "X-Domain": c.domain}); a.status != http.StatusOK ||
			a.json(t)["accountId"] != c.account {
			t.Errorf("%s: API call: %d %s", c.account, a.status, a.body)
		}
		other := "news.example.org"
		if c.domain == other {
			other = "shop.example.com"
		}
		if a := get(t, s, s.APIURL()+"/accounts", map[string]string{"Authorization": "Bearer " + c.access, "X-Domain": other}); a.status != http.StatusUnauthorized {
			t.Errorf("%s: API call with another customer's domain: %d", c.account, a.status)
		}
		if a := tokenCall(t, s, refreshForm(c.refresh), map[string]string{"X-Domain": c.domain}); a.status != http.StatusOK {
			t.Errorf("%s: refresh: %d %s", c.account, a.status, a.body)
		}
	}
	// The standard account ignores X-Domain.
	access, _ := tokens(t, s)
	if a := get(t, s, s.APIURL()+"/accounts", map[string]string{"Authorization": "Bearer " + access, "X-Domain": "shop.example.com"}); a.status != http.StatusOK {
		t.Errorf("standard account with an X-Domain: %d", a.status)
	}

	// Every call is counted under the domain it carried.
	want := map[DomainCall]int{
		{clientID, DefaultAccountID, ""}:                 1, // the standard exchange
		{clientID, DefaultAccountID, "shop.example.com"}: 1,
		{clientID, "Shop1", ""}:                          1,
		{clientID, "Shop1", "other.example.com"}:         1,
		{clientID, "Shop1", "shop.example.com"}:          3,
		{clientID, "Shop1", "news.example.org"}:          1,
		{clientID, "Shop2", ""}:                          1,
		{clientID, "Shop2", "other.example.com"}:         1,
		{clientID, "Shop2", "shop.example.com"}:          3,
		{clientID, "Shop2", "news.example.org"}:          1,
		{clientID, "News1", ""}:                          1,
		{clientID, "News1", "other.example.com"}:         1,
		{clientID, "News1", "news.example.org"}:          3,
		{clientID, "News1", "shop.example.com"}:          1,
	}
	if got := s.DomainCalls(); !maps.Equal(got, want) {
		t.Errorf("DomainCalls =\n%v\nwant\n%v", got, want)
	}
	if got := s.Stat(StatRefusedDomain); got != 9 {
		t.Errorf("StatRefusedDomain = %d, want 9", got)
	}
}

// TestSingleMaxDomainWithOwnDomains: Options.MaxDomain covers the accounts
// without a domain of their own; the others keep theirs.
func TestSingleMaxDomainWithOwnDomains(t *testing.T) {
	s := newTestServer(t, Options{MaxDomain: "Main.Example.com"})
	s.AddAccount(Account{AccountID: "Elsewhere", Domain: "other.example.com"})
	q := "&response_type=code&client_id=" + url.QueryEscape(clientID)
	if body := get(t, s, s.AuthURL()+"?x=1"+q, nil).body; !strings.Contains(body, `value="VfEy1"`) || strings.Contains(body, `value="Elsewhere"`) {
		t.Error("the default page should offer the main domain's accounts only")
	}
	redirect, _ := s.Approve(clientID, "s", "Elsewhere")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {codeFrom(t, redirect)}}
	if a := tokenCall(t, s, form, map[string]string{"X-Domain": "main.example.com"}); a.status != http.StatusUnauthorized {
		t.Errorf("another domain's code with the main domain: %d", a.status)
	}
	if a := tokenCall(t, s, form, map[string]string{"X-Domain": "other.example.com"}); a.status != http.StatusOK {
		t.Errorf("with its own domain: %d %s", a.status, a.body)
	}
}
