package handlers_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

var resetLinkRe = regexp.MustCompile(`/reset-password/([a-z2-7]{40,})`)

var shownKeyRe = regexp.MustCompile(`id="api-key" type="text" readonly value="(grc_[a-z0-9]{8}_[a-z0-9]{52})"`)

func TestAPIKeysPageCreatesListsAndRevokes(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	// Without a session, no key page.
	if r := f.browser().get("/api-keys"); r.status != http.StatusSeeOther {
		t.Fatalf("signed out = %d", r.status)
	}
	// A form without its CSRF token is refused.
	if r := f.op.post("/api-keys", url.Values{"name": {"x"}}); r.status != http.StatusForbidden {
		t.Fatalf("no CSRF = %d", r.status)
	}
	if r := f.op.submit("/api-keys", "/api-keys", url.Values{"name": {"  "}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-name"`) {
		t.Fatalf("empty name = %d", r.status)
	}

	// Created: the key is shown once, in the answer to the form.
	r := f.op.submit("/api-keys", "/api-keys", url.Values{"name": {"billing backend"}})
	m := shownKeyRe.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create = %d, key shown: %v", r.status, m != nil)
	}
	key := m[1]
	mustContain(t, r.body, "cannot show it again", "curl -H &#39;Authorization: Bearer "+key)
	list := f.op.get("/api-keys")
	mustContain(t, list.body, "billing backend", key[:12]+"_…", "test backend", `data-testid="apikey-last-used">never<`)
	mustNotContain(t, list.body, key, key[13:])
	mustContain(t, list.body, `aria-current="page">API keys<`)

	// It works, and its last use shows.
	if r := f.send2(http.MethodGet, "/api/v1/connections/"+conn.ID, key); r.status != http.StatusOK {
		t.Fatalf("new key = %d", r.status)
	}
	list = f.op.get("/api-keys")
	if strings.Count(list.body, `data-testid="apikey-last-used">never<`) != 1 {
		t.Fatal("the used key's last use is not shown")
	}

	// Revoked: refused at once, listed as revoked, not revocable again.
	rows := regexp.MustCompile(`href="(/api-keys/(key_[a-z0-9]+)/revoke)"`).FindAllStringSubmatch(list.body, -1)
	var revokePath string
	for _, row := range rows {
		k, _ := f.apiKeys.Get(t.Context(), row[2])
		if k.Prefix == key[:12] {
			revokePath = row[1]
		}
	}
	if revokePath == "" {
		t.Fatal("no revoke link for the new key")
	}
	confirm := f.op.get(revokePath)
	mustContain(t, confirm.body, "Revoke “billing backend”?", key[:12])
	r = f.op.submit(revokePath, revokePath, nil)
	if r.status != http.StatusSeeOther || r.location() != "/api-keys" {
		t.Fatalf("revoke = %d %s", r.status, r.location())
	}
	mustContain(t, f.op.get("/api-keys").body, "revoked", "was revoked")
	wantError(t, f.send2(http.MethodGet, "/api/v1/connections/"+conn.ID, key), http.StatusUnauthorized, "unauthorized")
	if r := f.op.submit("/api-keys", revokePath, nil); r.status != http.StatusSeeOther {
		t.Fatalf("second revoke = %d", r.status)
	}
	if r := f.op.get("/api-keys/key_nope/revoke"); r.status != http.StatusNotFound {
		t.Fatalf("unknown key = %d", r.status)
	}
	// The fixture's own key still works.
	if r := f.call(http.MethodGet, "/api/v1/connections/"+conn.ID, nil); r.status != http.StatusOK {
		t.Fatalf("other key = %d", r.status)
	}
	if strings.Contains(f.logs.String(), key[13:]) {
		t.Fatal("the log contains the new key")
	}
}

// send2 makes an API request with another key.
func (f *apiFixture) send2(method, path, key string) response {
	f.t.Helper()
	r, err := f.send(method, path, key, nil, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func TestConnectionPageShowsAPIUsage(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	page := f.op.get("/connections/" + conn.ID)
	api := f.srv.URL + "/api/v1/connections/" + conn.ID
	mustContain(t, page.body,
		`data-testid="api-token-curl">curl -X POST -H &#34;Authorization: Bearer $GRCONNECT_API_KEY&#34; `+api+`/token</textarea>`,
		`data-testid="api-proxy-curl">curl -H &#34;Authorization: Bearer $GRCONNECT_API_KEY&#34; `+api+`/proxy/from-fields</textarea>`)
	mustNotContain(t, page.body, f.key, "grc_")
	// The commands work as written, once the variable holds a key.
	if r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", nil); r.status != http.StatusOK {
		t.Fatalf("token = %d", r.status)
	}
	if r := f.call(http.MethodGet, "/api/v1/connections/"+conn.ID+"/proxy/from-fields", nil); r.status != http.StatusOK {
		t.Fatalf("proxy = %d", r.status)
	}
	f.call(http.MethodDelete, "/api/v1/connections/"+conn.ID, nil)
	mustNotContain(t, f.op.get("/connections/"+conn.ID).body, "api-token-curl")
}
