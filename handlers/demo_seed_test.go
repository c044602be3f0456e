package handlers_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/demo"
	"github.com/grconnect/grconnect/services/infra/secrets"
	"github.com/grconnect/grconnect/services/infra/server"
	"github.com/grconnect/grconnect/services/tokens"
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

// demoConnections lists every connection of the demo's database with its app's health.
func demoConnections(t *testing.T, store *models.Store) []models.ConnectionRow {
	t.Helper()
	page, err := store.ListConnections(context.Background(), models.ConnectionFilter{Sort: models.SortExpiry, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return page.Rows
}

// TestDemoSeedsABelievablePastOnceAndSurvivesARestart: the first start of a demo
// seeds, through the real flow and without logging a single warning, a demo app's
// connections in every state and a practice app GetResponse rejects; they look
// lived-in — connected over 30 days, a history and daily counts for each of them,
// tokens expiring at different times, errors in GetResponse's own words — one keeps
// failing, and the practice app is fixed with the secret the simulator shows. A
// restart seeds nothing more, and the connections still refresh and call the API.
func TestDemoSeedsABelievablePastOnceAndSurvivesARestart(t *testing.T) {
	dir, dsn, store, key, _ := newStorage(t)
	store.Close()
	ctx := context.Background()
	now := time.Now()

	first := startDemoRun(t, dir, dsn, key)
	for _, line := range strings.Split(first.logs.String(), "\n") {
		// GORM's "SLOW SQL" is the machine's load (a CI run's parallel packages),
		// not something the seeding chose to say.
		if (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) && !strings.Contains(line, "SLOW SQL") {
			t.Fatalf("the seeding logged a warning: %s\n%s", line, first.logs)
		}
	}
	want := map[models.Status]int64{models.StatusActive: 27, models.StatusPaused: demo.SeedBrokenConnections, models.StatusNeedsReconnect: 4,
		models.StatusRefreshFailing: 2, models.StatusDisconnected: 3}
	if got := first.counts(t); !maps.Equal(got, want) {
		t.Fatalf("seeded %v, want %v", got, want)
	}
	demoApps, err := first.store.DemoApps(ctx)
	if err != nil || len(demoApps) != 2 || demoApps[0].ID != first.built.Demo.App.ID || demoApps[1].Name != demo.BrokenAppName ||
		demoApps[1].Health != models.AppCredentialsRejected || !demoApps[0].Health.Healthy() {
		t.Fatalf("demo apps: %+v %v", demoApps, err)
	}
	broken := demoApps[1]

	// A past: connected over the last 30 days, tokens expiring at different times,
	// every connection with a timeline, the chart with a month of days.
	rows := demoConnections(t, first.store)
	var oldest, newest time.Time
	expiries := map[int]bool{}
	var blocked, outage *models.ConnectionRow
	for i, r := range rows {
		if oldest.IsZero() || r.ConnectedAt.Before(oldest) {
			oldest = r.ConnectedAt
		}
		if r.ConnectedAt.After(newest) {
			newest = r.ConnectedAt
		}
		if r.Status == models.StatusActive && r.AppHealth.Healthy() {
			expiries[int(r.ExpiresAt.Sub(now).Minutes())] = true
			if d := r.ExpiresAt.Sub(now); d < 5*time.Minute || d > time.Hour {
				t.Errorf("%s's token expires in %v, want between 5 minutes and an hour", r.ID, d)
			}
		}
		if r.Status == models.StatusRefreshFailing {
			if strings.Contains(r.LastError, "code 1016") {
				blocked = &rows[i]
			} else {
				outage = &rows[i]
			}
		}
		events, _, err := first.store.ConnectionEvents(ctx, r.ID, 0, 5)
		if err != nil || len(events) < 2 {
			t.Errorf("%s has a timeline of %d events (%v)", r.ID, len(events), err)
		}
	}
	if now.Sub(oldest) < 25*24*time.Hour || now.Sub(oldest) > 31*24*time.Hour || now.Sub(newest) > 3*24*time.Hour {
		t.Errorf("connections made from %v to %v ago, want over about 30 days", now.Sub(oldest), now.Sub(newest))
	}
	if len(expiries) < 15 {
		t.Errorf("the active tokens expire at only %d different minutes, want them spread", len(expiries))
	}
	days, err := first.store.RefreshStats(ctx, now, 30)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range days[:len(days)-1] { // today is under way
		if d.Succeeded < 20 {
			t.Errorf("%s counts %d refreshes, want every day of the month to have its own", d.Day, d.Succeeded)
		}
	}
	if failedDays := countIf(days, func(d models.DailyRefreshStat) bool { return d.Failed > 0 }); failedDays < 3 {
		t.Errorf("only %d days of 30 had a failed refresh", failedDays)
	}

	// One connection keeps failing, in GetResponse's words; one waits out an outage.
	if blocked == nil || outage == nil || !strings.Contains(blocked.LastError, "Your access to the API has been temporarily blocked") ||
		!strings.Contains(outage.LastError, "HTTP 503, code 1") {
		t.Fatalf("the failing connections: %+v %+v", blocked, outage)
	}
	for range 2 {
		if _, err := first.built.Tokens.Refresh(ctx, blocked.ID, "test"); !errors.Is(err, tokens.ErrTransient) || !strings.Contains(err.Error(), "code 1016") {
			t.Fatalf("refreshing the blocked connection: %v, want it to keep failing", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The practice app: its connections pause; the simulator's applications page
	// shows the secret GetResponse holds, and saving it fixes the app.
	resp, err := http.Get(first.srv.URL + demo.Prefix + "/authorizations")
	if err != nil {
		t.Fatal(err)
	}
	apps, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<code data-testid="fake-client-id">` + regexp.QuoteMeta(broken.ClientID) + `</code></dd>\s*<dt>Client secret</dt><dd><code data-testid="fake-client-secret">([^<]+)<`).FindSubmatch(apps)
	if m == nil {
		t.Fatalf("the simulator's applications page lacks %s:\n%s", broken.ClientID, apps)
	}

	// A demo-app connection works.
	var active string
	for _, r := range rows {
		if r.Status == models.StatusActive && r.AppHealth.Healthy() {
			active = r.ID
			break
		}
	}
	if res, err := first.built.Tokens.TestCall(ctx, active, "/accounts", "test"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("test call before the restart: %+v %v", res, err)
	}
	before, err := first.built.Tokens.AccessToken(ctx, active, "test")
	if err != nil {
		t.Fatal(err)
	}
	// The visitor's consent page lists the demo accounts and the seeded ones a
	// visitor may reconnect, not every seeded customer.
	resp, err = http.Get(first.srv.URL + demo.Prefix + "/oauth2_authorize.html?response_type=code&state=s&client_id=" + first.built.Demo.App.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	consent, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := strings.Count(string(consent), `data-testid="consent-account"`); n != 3+7 {
		t.Errorf("the consent page offers %d accounts, want the 3 demo accounts and the 7 seeded ones to reconnect", n)
	}
	first.stop()

	second := startDemoRun(t, dir, dsn, key)
	defer second.stop()
	if got := second.counts(t); !maps.Equal(got, want) {
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
	// The blocked account is still blocked: it does not heal on its own.
	if _, err := second.built.Tokens.Refresh(ctx, blocked.ID, "test"); !errors.Is(err, tokens.ErrTransient) {
		t.Fatalf("the blocked connection after the restart: %v", err)
	}
	// The practice app is still broken, until the secret the simulator shows is saved.
	app, err := second.store.AppByID(ctx, broken.ID)
	if err != nil || app.Health != models.AppCredentialsRejected {
		t.Fatalf("the practice app after the restart: %+v %v", app, err)
	}
	if res, err := second.built.Tokens.CheckApp(ctx, app, "test"); err != nil || res.Verdict != tokens.CheckRejected {
		t.Fatalf("checking the practice app as seeded: %+v %v", res, err)
	}
	in := services.AppInput{Name: app.Name, ClientID: app.ClientID, ClientSecret: string(m[1]), Edition: app.Edition, AuthURL: app.AuthURL, APIURL: app.APIURL, Reauthenticated: true}
	fixed, err := second.built.Apps.Update(ctx, app.ID, "test", in)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := second.built.Tokens.CheckApp(ctx, fixed, "test"); err != nil || res.Verdict != tokens.CheckAccepted {
		t.Fatalf("checking the practice app with the simulator's secret: %+v %v", res, err)
	}
	if got := second.counts(t); got[models.StatusPaused] != 0 || got[models.StatusActive] != 27+demo.SeedBrokenConnections {
		t.Fatalf("after fixing the practice app: %v, want its connections active again", got)
	}
}

func countIf[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
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
	// Registrations go on meanwhile: the two counts agree once they are done.
	n := len(run.built.Demo.Fake.CallbackAccounts())
	for ; n != int(registered) && time.Now().Before(deadline); n = len(run.built.Demo.Fake.CallbackAccounts()) {
		time.Sleep(100 * time.Millisecond)
		run.store.DB().Model(&models.ConnectionCallback{}).Where("want = ? AND state = ?", models.CallbacksRegister, models.CallbacksDone).Count(&registered)
	}
	if n != int(registered) {
		t.Fatalf("the simulator holds callbacks for %d accounts, grconnect registered %d", n, registered)
	}
}
