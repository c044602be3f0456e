package handlers_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestAppFormKeepsInputAndShowsEveryError: a form with several problems says all of
// them at once and comes back with everything typed, the client secret too.
func TestAppFormKeepsInputAndShowsEveryError(t *testing.T) {
	app := newTestApp(t)
	b := app.setup(annEmail, annPass)
	form := url.Values{
		"name": {""}, "client_id": {"has spaces in it"}, "client_secret": {"typed-secret-1234567890"}, "edition": {"max_us"},
		"max_domain": {"not a domain!"}, "auth_url": {"javascript:alert(1)"}, "api_url": {"ftp://x"},
		"return_origins": {"https://ok.example.com\nhttps://bad.example.com/path\nnot-a-url\nhttp://also.example.com?q=1"},
	}
	r := b.submit("/apps/new", "/apps", form)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, want 422", r.status)
	}
	for _, field := range []string{"name", "client_id", "max_domain", "auth_url", "api_url", "return_origins"} {
		mustContain(t, r.body, `data-testid="error-`+field+`"`)
	}
	mustContain(t, r.body, `value="has spaces in it"`, `<option value="max_us" selected>`, "Type the client secret again")
	// Never the secret typed (issue 21, finding 7): the page's HTML would hold it.
	mustNotContain(t, r.body, "typed-secret-1234567890")
	// The return-origins error names every bad line, not only the first.
	m := regexp.MustCompile(`data-testid="error-return_origins">([^<]*)<`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatal("no return-origins error")
	}
	for _, bad := range []string{"https://bad.example.com/path", "not-a-url", "http://also.example.com?q=1"} {
		if !strings.Contains(m[1], bad) {
			t.Errorf("the return-origins error %q does not name %q", m[1], bad)
		}
	}
	if strings.Contains(m[1], "ok.example.com") {
		t.Errorf("the return-origins error %q names a good line", m[1])
	}
}

// TestMaxDomainMarkedByEdition: the default MAX domain is marked "MAX only" for the
// standard edition and "optional" for a MAX edition (each MAX customer may be asked
// for their own); it is never required.
func TestMaxDomainMarkedByEdition(t *testing.T) {
	app := newTestApp(t)
	b := app.setup(annEmail, annPass)
	label := regexp.MustCompile(`(?s)<label for="max_domain">(.*?)</label>`)
	input := regexp.MustCompile(`<input[^>]*id="max_domain"[^>]*>`)

	page := b.get("/apps/new").body
	if l := label.FindStringSubmatch(page)[1]; !strings.Contains(l, ">MAX only<") || strings.Contains(l, ">optional<") {
		t.Errorf("standard edition: the MAX domain label reads %q", l)
	}
	if in := input.FindString(page); strings.Contains(in, " required") || !strings.Contains(in, `data-edition-notes=`) {
		t.Errorf("standard edition: %s", in)
	}
	// A MAX edition, re-rendered after another field's error.
	r := b.submit("/apps/new", "/apps", url.Values{"name": {""}, "client_id": {"c"}, "client_secret": {"s3cr3t-9f8e7d6c5b4a3f2a"}, "edition": {"max_pl"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, want 422", r.status)
	}
	if l := label.FindStringSubmatch(r.body)[1]; !strings.Contains(l, ">optional<") || strings.Contains(l, "MAX only") {
		t.Errorf("MAX edition: the MAX domain label reads %q", l)
	}
	if in := input.FindString(r.body); strings.Contains(in, " required") {
		t.Errorf("MAX edition: the MAX domain is required: %s", in)
	}
}

// TestLinkFormShowsEveryError: a bad validity no longer hides the other fields' problems.
func TestLinkFormShowsEveryError(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/links", url.Values{
		"customer_ref": {""}, "return_url": {"https://elsewhere.example.com/x"}, "ttl_days": {"500"},
	})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, want 422", r.status)
	}
	mustContain(t, r.body, `data-testid="error-customer_ref"`, `data-testid="error-return_url"`, `data-testid="error-ttl_days"`,
		"from 0.01 to 90", `value="https://elsewhere.example.com/x"`, `value="500"`)
	var n int64
	f.store.DB().Table("connect_links").Count(&n)
	if n != 0 {
		t.Fatalf("an invalid form made %d links", n)
	}
	// A validity too short for the service is reported on the same field.
	r = f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/links", url.Values{"customer_ref": {"c-1"}, "ttl_days": {"0.001"}})
	mustContain(t, r.body, `data-testid="error-ttl_days"`, "between 10 minutes and 90 days")
}
