package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestRetryLinkOnlyForTheStatesBrowser: the OAuth state alone (seen in a log, a
// Referer, a shared screenshot) does not reveal the connect link: a refused
// callback offers the retry link only to the browser that started it.
func TestRetryLinkOnlyForTheStatesBrowser(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	customer := f.browser()
	link := f.makeLink("customer-1", "")
	token := link[strings.LastIndex(link, "/")+1:]

	state := f.startFlow(customer, link)
	stranger := f.browser()
	// Another browser with the state and a made-up code, an error, or nothing.
	for _, q := range []string{"code=made-up", "error=access_denied", ""} {
		r := stranger.get("/oauth/callback?state=" + url.QueryEscape(state) + "&" + q)
		if r.status != http.StatusForbidden {
			t.Errorf("%q from another browser = %d, want 403", q, r.status)
		}
		mustNotContain(t, r.body, token, `data-testid="try-again"`)
	}
	// Expired: still not for the stranger, still for the customer.
	f.store.DB().Model(&models.AuthState{}).Where("used_at IS NULL").Update("expires_at", time.Now().Add(-time.Minute).UTC())
	r := stranger.get("/oauth/callback?code=x&state=" + url.QueryEscape(state))
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "expired") {
		t.Fatalf("expired, another browser = %d", r.status)
	}
	mustNotContain(t, r.body, token, `data-testid="try-again"`)
	r = customer.get("/oauth/callback?code=x&state=" + url.QueryEscape(state))
	mustContain(t, r.body, `data-testid="try-again"`, token)

	// The owner who declines on GetResponse is offered to try again.
	state = f.startFlow(customer, link)
	redirect, err := f.fake.Deny(f.clientID, state)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, f.callback(customer, redirect).body, `data-testid="try-again"`)
}

// TestPendingAuthorizationsPerLinkAreCapped: one link cannot fill the table with
// pending authorizations; the twenty-first start within their lifetime is refused.
func TestPendingAuthorizationsPerLinkAreCapped(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	link := f.makeLink("customer-1", "")
	path := strings.TrimPrefix(link, f.srv.URL)
	b := f.browser()
	token := csrfRe.FindStringSubmatch(b.get(path).body)[1]
	for i := range 20 {
		if r := b.post(path, url.Values{"_csrf": {token}}); r.status != http.StatusSeeOther {
			t.Fatalf("start %d = %d", i+1, r.status)
		}
	}
	r := b.post(path, url.Values{"_csrf": {token}})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("the 21st start = %d, want 429 with Retry-After", r.status)
	}
	var n int64
	f.store.DB().Model(&models.AuthState{}).Count(&n)
	if n != 20 {
		t.Fatalf("%d pending authorizations stored, want 20", n)
	}
	// Once they expire the link works again.
	f.store.DB().Model(&models.AuthState{}).Where("1 = 1").Update("expires_at", time.Now().Add(-time.Minute).UTC())
	if r := b.post(path, url.Values{"_csrf": {token}}); r.status != http.StatusSeeOther {
		t.Fatalf("after expiry = %d", r.status)
	}
}
