package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/demo"
	"github.com/grconnect/grconnect/services/infra/secrets"
	"github.com/grconnect/grconnect/services/infra/server"
)

// demoRun is one start of `serve --demo` on a database.
type demoRun struct {
	store *models.Store
	built *server.Server
	srv   *httptest.Server
	logs  *syncBuffer
}

// startDemoRun opens the database at dsn and starts demo mode on it, seeding as
// serve does.
func startDemoRun(t *testing.T, dir, dsn string, key []byte) *demoRun {
	t.Helper()
	store := modelstest.NewAt(t, dsn)
	box, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	cfg := &config.Config{
		Addr: ":0", BaseURL: "http://" + srv.Listener.Addr().String(), Database: dsn, DataDir: dir, SecretKey: key,
		GetResponseAuthURL: "https://app.getresponse.com/oauth2_authorize.html", GetResponseAPIURL: "https://api.getresponse.com/v3",
		RefreshMargin: 10 * time.Minute, Keepalive: 24 * time.Hour, RefreshRate: 80, Demo: true,
	}
	logs := &syncBuffer{}
	built, err := server.New(t.Context(), server.Options{
		Config: cfg, Store: store, Box: box, Log: slog.New(slog.NewTextHandler(logs, nil)),
		PasswordCost: bcrypt.MinCost, TokenTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = built.Handler
	srv.Start()
	return &demoRun{store: store, built: built, srv: srv, logs: logs}
}

// stop ends the run as serve does on SIGTERM: the server, the background work (which
// saves the simulator), then the database.
func (r *demoRun) stop() {
	r.srv.Close()
	r.built.Stop()
	r.store.Close()
}

func (r *demoRun) counts(t *testing.T) map[models.Status]int64 {
	t.Helper()
	counts, err := r.store.CountByStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// TestDemoSeedsOnceAndSurvivesARestart: the first start of a demo seeds a few dozen
// connections in every state with the simulator's own tokens; a restart seeds
// nothing more, and the connections made before it still refresh and call the API.
func TestDemoSeedsOnceAndSurvivesARestart(t *testing.T) {
	dir, dsn, store, key, _ := newStorage(t)
	store.Close()
	ctx := context.Background()

	first := startDemoRun(t, dir, dsn, key)
	counts := first.counts(t)
	want := map[models.Status]int64{models.StatusActive: demo.SeedConnections - 12, models.StatusNeedsReconnect: 4,
		models.StatusRefreshFailing: 4, models.StatusDisconnected: 4}
	for st, n := range want {
		if counts[st] != n {
			t.Errorf("seeded %d %s connections, want %d (all: %v)", counts[st], st, n, counts)
		}
	}
	page, _, err := first.store.ListAPIConnections(ctx, models.APIConnectionFilter{Status: models.StatusActive, Limit: 500})
	if err != nil || len(page) == 0 {
		t.Fatalf("active connections: %v %v", page, err)
	}
	active := page[0].ID
	if res, err := first.built.Tokens.TestCall(ctx, active, "/accounts", "test"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("test call before the restart: %+v %v", res, err)
	}
	before, err := first.built.Tokens.AccessToken(ctx, active, "test")
	if err != nil {
		t.Fatal(err)
	}
	// The visitor's consent page lists the demo accounts and the seeded ones a
	// visitor may reconnect, not every seeded customer.
	if n := len(first.built.Demo.Fake.Accounts()); n != demo.SeedConnections+3 {
		t.Errorf("the simulator holds %d accounts, want %d", n, demo.SeedConnections+3)
	}
	resp, err := http.Get(first.srv.URL + demo.Prefix + "/oauth2_authorize.html?response_type=code&state=s&client_id=" + first.built.Demo.App.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	consent, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := strings.Count(string(consent), `data-testid="consent-account"`); n != 3+8 {
		t.Errorf("the consent page offers %d accounts, want the 3 demo accounts and the 8 seeded ones to reconnect", n)
	}
	first.stop()

	second := startDemoRun(t, dir, dsn, key)
	defer second.stop()
	if got := second.counts(t); got[models.StatusActive] != want[models.StatusActive] || got[models.StatusDisconnected] != 4 {
		t.Fatalf("after the restart: %v, want the same connections and no new ones", got)
	}
	// The access token issued before the restart still opens the simulated API…
	if res, err := second.built.Tokens.TestCall(ctx, active, "/from-fields", "test"); err != nil || res.StatusCode != http.StatusOK || len(res.Notes) != 0 {
		t.Fatalf("test call after the restart: %+v %v", res, err)
	}
	// …and the refresh token still refreshes.
	conn, err := second.built.Tokens.Refresh(ctx, active, "test")
	if err != nil || conn.Status != models.StatusActive {
		t.Fatalf("refresh after the restart: %v %v", conn, err)
	}
	after, err := second.built.Tokens.AccessToken(ctx, active, "test")
	if err != nil || after.Token == before.Token {
		t.Fatalf("after the refresh: %v (same token: %v)", err, err == nil && after.Token == before.Token)
	}
	var needsReconnect []models.Connection
	if needsReconnect, _, err = second.store.ListAPIConnections(ctx, models.APIConnectionFilter{Status: models.StatusNeedsReconnect}); err != nil || len(needsReconnect) != 4 {
		t.Fatalf("needs_reconnect: %d %v", len(needsReconnect), err)
	}
}

// TestDemoShowsEventsArriving: a demo's seeded connections register GetResponse
// callbacks at the simulator, which then sends them events now and then (here
// every 50 ms): they arrive at the connections' events URLs and reach their
// timelines, as a visitor of the demo sees.
func TestDemoShowsEventsArriving(t *testing.T) {
	dir, dsn, store, key, _ := newStorage(t)
	store.Close()
	run := startDemoRun(t, dir, dsn, key)
	defer run.stop()
	run.built.Demo.EventEvery = 50 * time.Millisecond
	run.built.Start()
	deadline := time.Now().Add(30 * time.Second)
	var registered, arrived int64
	for time.Now().Before(deadline) {
		run.store.DB().Model(&models.ConnectionCallback{}).Where("want = ? AND state = ?", models.CallbacksRegister, models.CallbacksDone).Count(&registered)
		run.store.DB().Model(&models.Event{}).Where("type = ?", models.EventGetResponse).Count(&arrived)
		if registered >= demo.SeedConnections-12 && arrived >= 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if registered < demo.SeedConnections-12 || arrived < 3 {
		t.Fatalf("%d callback registrations done (want every active seeded connection), %d events arrived", registered, arrived)
	}
	var callbacks int64 // the simulator's callbacks come in as GETs, the panel's webhooks as POSTs: both kinds arrive
	run.store.DB().Model(&models.InboundEvent{}).Where("source = ?", models.InboundCallback).Count(&callbacks)
	if callbacks == 0 {
		t.Fatal("no simulated callback arrived")
	}
	if n := len(run.built.Demo.Fake.CallbackAccounts()); n != int(registered) {
		t.Fatalf("the simulator holds callbacks for %d accounts, grconnect registered %d", n, registered)
	}
}
