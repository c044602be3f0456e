package handlers_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/grconnect/grconnect/handlers"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/config"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/static"
)

// newDemoApp wires grconnect as `serve --demo` does.
func newDemoApp(t *testing.T) *testApp {
	t.Helper()
	dir, dbPath, store, key, box := newStorage(t)
	srv := httptest.NewUnstartedServer(nil)
	cfg := &config.Config{BaseURL: "http://" + srv.Listener.Addr().String(), Database: dbPath, DataDir: dir, SecretKey: key,
		GetResponseAuthURL: "https://app.getresponse.com/oauth2_authorize.html", GetResponseAPIURL: "https://api.getresponse.com/v3",
		RefreshMargin: 10 * time.Minute, Demo: true}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ops := services.NewOperators(store)
	ops.Cost = bcrypt.MinCost
	apps := services.NewApps(store, box, services.AppDefaults{AuthURL: cfg.GetResponseAuthURL, APIURL: cfg.GetResponseAPIURL})
	demo, err := services.SetUpDemo(t.Context(), store, apps, box, cfg.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(demo.Fake.Close)
	// A second start finds the same demo app instead of making another.
	again, err := services.SetUpDemo(t.Context(), store, apps, box, cfg.BaseURL)
	if err != nil || again.App.ID != demo.App.ID {
		t.Fatalf("second SetUpDemo: %v, %v", again.App.ID, err)
	}
	gr := getresponse.New(&http.Client{Transport: demo.Transport(http.DefaultTransport), Timeout: 10 * time.Second})
	tokens := services.NewTokens(store, box, apps, gr, cfg.RefreshMargin, cfg.RedirectURL(), log)
	e := handlers.New(handlers.Deps{Config: cfg, Store: store, Box: box, Operators: ops, Apps: apps, Assets: static.New(), Log: log,
		Connect: services.NewConnect(store, box, apps, gr, cfg.BaseURL, log), DemoGetResponse: demo.Fake,
		Tokens:   tokens,
		Webhooks: services.NewWebhooks(store, box, nil, log), Bulk: services.NewBulk(t.Context(), tokens, store, 10, log)})
	srv.Config.Handler = e
	srv.Start()
	t.Cleanup(srv.Close)
	return &testApp{t: t, srv: srv, store: store, box: box, cfg: cfg, logs: logs, dbPath: dbPath}
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

func TestDemoModeWholeFlow(t *testing.T) {
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
