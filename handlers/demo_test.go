package handlers_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/demo"
)

// newDemoApp wires grconnect as `serve --demo` does.
func newDemoApp(t *testing.T) *testApp {
	t.Helper()
	app := startTestApp(t, func(cfg *config.Config) { cfg.Demo = true }, nil)
	// A second start finds the same demo app instead of making another.
	again, err := demo.Setup(t.Context(), app.store, app.built.Apps, app.box, app.cfg.BaseURL, nil)
	if err != nil || again.App.ID != app.built.Demo.App.ID {
		t.Fatalf("second demo.Setup: %v, %v", again.App.ID, err)
	}
	t.Cleanup(again.Close)
	return app
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

func TestDemoModeWholeFlow(t *testing.T) {
	t.Parallel()
	app := newDemoApp(t)
	op := app.setup(annEmail, annPass)
	apps := op.get("/apps")
	mustContain(t, apps.body, "Demo app", `data-testid="demo-banner"`)
	demoID := regexp.MustCompile(`href="/apps/(app_[a-z0-9]+)"`).FindStringSubmatch(apps.body)[1]
	mustNotContain(t, op.get("/apps/"+demoID).body, "localhost-warning")
	f := &connectFixture{testApp: app, op: op, appID: demoID}
	link := f.makeLink("demo-customer", "")

	// The customer presses the button and lands on the simulated consent page, served by grconnect itself.
	customer := app.browser()
	path := strings.TrimPrefix(link, app.srv.URL)
	r := customer.submit(path, path, nil)
	if !strings.HasPrefix(r.location(), app.srv.URL+"/demo-getresponse/oauth2_authorize.html?") {
		t.Fatalf("start redirected to %q", r.location())
	}
	consent := customer.get(strings.TrimPrefix(r.location(), app.srv.URL))
	mustContain(t, consent.body, "Approve", "Deny")
	form := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(consent.body, -1) {
		form.Set(m[1], m[2])
	}
	form.Set("decision", "approve")
	r = customer.post("/demo-getresponse/oauth2_authorize.html", form)
	if r.status != http.StatusFound || !strings.Contains(r.location(), "/oauth/callback?code=") {
		t.Fatalf("approve = %d → %q", r.status, r.location())
	}
	r = customer.get(strings.TrimPrefix(r.location(), app.srv.URL))
	if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="connect-success"`) {
		t.Fatalf("callback = %d\n%s", r.status, r.body)
	}
	list := op.get("/connections")
	m := rowLinkRe.FindStringSubmatch(list.body)
	if m == nil {
		t.Fatal("the demo connection is not listed")
	}
	id := m[1]
	if r := op.submit("/connections/"+id, "/connections/"+id+"/refresh", nil); r.status != http.StatusSeeOther {
		t.Fatalf("refresh = %d", r.status)
	}
	mustContain(t, op.get("/connections/"+id).body, "Refreshed.")
	r = op.submit("/connections/"+id, "/connections/"+id+"/test", url.Values{"endpoint": {"/from-fields"}})
	mustContain(t, r.body, `data-testid="test-status">HTTP 200`, `data-testid="from-fields"`)
}
