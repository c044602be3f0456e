package services_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/mailer"
	"github.com/grconnect/grconnect/services/infra/mailer/mailertest"
)

// TestAppFailuresNeverMakeCustomersReconnect: with the token endpoint answering
// invalid_client (the operator's), 1018 or 1016 (GetResponse's: waited out) for a
// while, no connection becomes needs_reconnect; once it answers normally again the
// app's health returns to ok and a refresh works with no reconnect.
func TestAppFailuresNeverMakeCustomersReconnect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		failure getresponsetest.TokenFailure
		health  models.AppHealth
		// wait is how long until the app's next probe.
		wait time.Duration
	}{
		{"invalid_client", getresponsetest.TokenInvalidClient, models.AppCredentialsRejected, 16 * time.Minute},
		{"1018 IP blocked", getresponsetest.TokenIPBlocked, models.AppRefused, 2 * time.Hour},
		{"1016 temporary block", getresponsetest.TokenTemporarilyBlocked, models.AppRefused, 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, getresponsetest.Options{})
			var ids []string
			for range 10 {
				ids = append(ids, e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil).ID)
			}
			e.fake.FailToken(tc.failure, -1)
			r := newRefresher(e.tokens, e.store, &countingLimiter{allow: 1 << 40}, services.RefresherConfig{Concurrency: 1})
			for range 5 {
				r.RunOnce(context.Background())
				e.clock.Advance(2 * time.Minute)
			}
			app, _ := e.store.AppByID(context.Background(), e.app.ID)
			if app.Health != tc.health {
				t.Fatalf("app health = %q, want %q", app.Health, tc.health)
			}
			for _, id := range ids {
				if c := e.get(id); c.Status == models.StatusNeedsReconnect {
					t.Fatalf("%s became needs_reconnect: %s", id, c.LastError)
				}
			}
			if n := e.refreshes(); n > 2*5 {
				t.Fatalf("%d refresh calls while the app was unhealthy: refreshes did not pause", n)
			}
			// A connection whose token expired meanwhile is refused with the app as the
			// cause, without a call to GetResponse.
			before := e.refreshes()
			_, err := e.tokens.AccessToken(context.Background(), ids[9], "api")
			var rerr *services.RefreshError
			if !errors.As(err, &rerr) || rerr.App == nil || !errors.Is(err, services.ErrAppUnhealthy) || errors.Is(err, services.ErrNeedsReconnect) || e.refreshes() != before {
				t.Fatalf("an expired token of the unhealthy app: %v (%d calls)", err, e.refreshes()-before)
			}

			// GetResponse answers normally again: the next probe finds out, the app is
			// healthy, and every connection refreshes with no customer action.
			e.fake.FailToken(getresponsetest.TokenOK, 0)
			e.clock.Advance(tc.wait)
			for range 4 {
				r.RunOnce(context.Background())
			}
			app, _ = e.store.AppByID(context.Background(), e.app.ID)
			if app.Health != models.AppHealthy {
				t.Fatalf("after the fix: app health %q (%s)", app.Health, app.HealthReason)
			}
			for _, id := range ids {
				if c := e.get(id); c.Status != models.StatusActive || c.LastError != "" {
					t.Fatalf("%s after the fix: %s %q", id, c.Status, c.LastError)
				}
			}
			e.clock.Advance(time.Minute)
			if _, err := e.tokens.Refresh(context.Background(), ids[0], "api"); err != nil {
				t.Fatalf("POST …/refresh after the fix: %v", err)
			}
		})
	}
}

// TestOneBrokenAppOneAlert: an app with 1,000 connections whose client secret
// GetResponse rejects produces one app alert — one webhook and one e-mail — not
// one per connection, and none of its connections is told to reconnect.
func TestOneBrokenAppOneAlert(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	rc, hookURL, wh := newReceiver(t, e)
	rc.up.Store(true)
	var err error
	if rc.secret, err = wh.Configure(context.Background(), e.app, services.WebhookInput{URL: hookURL}); err != nil {
		t.Fatal(err)
	}
	smtp := mailertest.NewServer()
	defer smtp.Close()
	alerts := services.NewAlerts(e.store, mailer.New(smtp.URL("", "")), "grconnect@example.com", "https://grconnect.example", slog.New(slog.DiscardHandler))
	op := &models.Operator{Email: "ann@example.com", PasswordHash: "x", AlertEmail: true}
	if err := e.store.CreateOperator(context.Background(), op); err != nil {
		t.Fatal(err)
	}

	const n = 1000
	for range n {
		e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil)
	}
	e.fake.FailToken(getresponsetest.TokenInvalidClient, -1)
	r := newRefresher(e.tokens, e.store, &countingLimiter{allow: 1 << 40}, services.RefresherConfig{Batch: 200, Concurrency: 8})
	for range 10 {
		r.RunOnce(context.Background())
	}
	calls := e.refreshes()
	for range 3 {
		wh.RunOnce(context.Background())
	}
	sent, err := alerts.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := alerts.RunOnce(context.Background())

	var needsReconnect, deliveries int64
	e.store.DB().Model(&models.Connection{}).Where("status = ?", models.StatusNeedsReconnect).Count(&needsReconnect)
	e.store.DB().Model(&models.WebhookDelivery{}).Count(&deliveries)
	mails := smtp.Messages()
	t.Logf("%d connections, %d refresh calls before the pause; %d webhook deliveries (%v); %d alert e-mail(s) covering %d alert(s)",
		n, calls, deliveries, rc.accepted, len(mails), sent)
	if needsReconnect != 0 {
		t.Fatalf("%d connections were told to reconnect", needsReconnect)
	}
	if deliveries != 1 || len(rc.accepted) != 1 || rc.accepted[0].Type != "app.unhealthy" || rc.accepted[0].App == nil {
		t.Fatalf("%d webhook deliveries, accepted %+v; want one app.unhealthy", deliveries, rc.accepted)
	}
	if len(mails) != 1 || sent != 1 || again != 0 {
		t.Fatalf("%d e-mails covering %d alerts (then %d); want one", len(mails), sent, again)
	}
	if m := mails[0]; strings.Join(m.To, ",") != "ann@example.com" || !strings.Contains(m.Data, "Subject: grconnect: 1 app needs attention") ||
		!strings.Contains(m.Data, "client ID or secret") || !strings.Contains(m.Data, "Acme") {
		t.Fatalf("the alert e-mail:\n%s", m.Data)
	}
	if calls > 20 {
		t.Fatalf("%d refresh calls for one broken app: its refreshes did not pause", calls)
	}
}

// TestAlertsDigestCustomersToReconnect: many customers whose grants GetResponse
// rejects at once are one digest e-mail, listing some and counting the rest.
func TestAlertsDigestCustomersToReconnect(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	smtp := mailertest.NewServer()
	defer smtp.Close()
	alerts := services.NewAlerts(e.store, mailer.New(smtp.URL("", "")), "grconnect@example.com", "https://grconnect.example", slog.New(slog.DiscardHandler))
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		if err := e.store.CreateOperator(context.Background(), &models.Operator{Email: email, PasswordHash: "x", AlertEmail: email == "ann@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	for range 30 {
		e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil)
	}
	e.fake.FailToken(getresponsetest.TokenInvalidGrantRFC, -1)
	r := newRefresher(e.tokens, e.store, &countingLimiter{allow: 1 << 40}, services.RefresherConfig{Concurrency: 4})
	r.RunOnce(context.Background())
	if _, err := alerts.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	mails := smtp.Messages()
	if len(mails) != 1 || strings.Join(mails[0].To, ",") != "ann@example.com" {
		t.Fatalf("%d mails: %+v", len(mails), mails)
	}
	if d := mails[0].Data; !strings.Contains(d, "30 customers must reconnect") || !strings.Contains(d, "and 10 more") {
		t.Fatalf("digest:\n%s", d)
	}
}

// TestRefreshWaitsForTheAccountsRateLimit: after GetResponse answered an account's
// call with 429, a refresh of that account waits until the window resets instead
// of spending a call GetResponse would refuse: an explicit one is refused as too
// soon (the connection unchanged), an automatic one waits in refresh_failing.
func TestRefreshWaitsForTheAccountsRateLimit(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	c := e.seed(models.StatusActive, e.clock.Now().Add(30*time.Second), nil)
	h := http.Header{"Retry-After": {"120"}, "X-Ratelimit-Limit": {"30000"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"120 seconds"}}
	e.tokens.ObserveAnswer(e.app.APIURL, c.MaxDomain, c.AccountID, http.StatusTooManyRequests, h)
	var tooSoon *services.TooSoonError
	if _, err := e.tokens.Refresh(context.Background(), c.ID, "ann@example.com"); !errors.As(err, &tooSoon) || tooSoon.RetryAfter < 100*time.Second || e.refreshes() != 0 {
		t.Fatalf("explicit refresh of a rate-limited account: %v, %d calls", err, e.refreshes())
	}
	if got := e.get(c.ID); got.Status != models.StatusActive || got.LastError != "" {
		t.Fatalf("a refused explicit refresh changed the connection: %s %q", got.Status, got.LastError)
	}
	if _, err := e.tokens.RefreshIfDue(context.Background(), c.ID, "system", e.tokens.Policy().Background); !errors.Is(err, services.ErrTransient) || e.refreshes() != 0 {
		t.Fatalf("automatic refresh of a rate-limited account: %v, %d calls", err, e.refreshes())
	}
	got := e.get(c.ID)
	if got.Status != models.StatusRefreshFailing || got.NextAttemptAt == nil || got.NextAttemptAt.Sub(e.clock.Now()) < 100*time.Second {
		t.Fatalf("after: %s, next attempt %v", got.Status, got.NextAttemptAt)
	}
	b, ok := e.tokens.AccountBudget(e.app.APIURL, c.MaxDomain, c.AccountID)
	if !ok || b.RateLimit.Limit != 30000 || b.RateLimit.Remaining != 0 {
		t.Fatalf("budget = %+v", b)
	}
	// The same account ID behind another MAX domain is another account: its own budget.
	if _, ok := e.tokens.AccountBudget(e.app.APIURL, "other.example.com", c.AccountID); ok {
		t.Fatal("a 429 for one MAX domain's account was charged to the same ID on another domain")
	}
}

// TestRepeatedFailureAddsNoSecondAlert: the same failure again, in the same state
// (a test call's refresh after the connection already needs a reconnect), is on the
// timeline but sends no second needs_reconnect event or webhook.
func TestRepeatedFailureAddsNoSecondAlert(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	rc, hookURL, wh := newReceiver(t, e)
	rc.up.Store(true)
	if _, err := wh.Configure(context.Background(), e.app, services.WebhookInput{URL: hookURL}); err != nil {
		t.Fatal(err)
	}
	c := e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil)
	e.fake.FailToken(getresponsetest.TokenInvalidGrantRFC, -1)
	for range 3 {
		if _, err := e.tokens.Refresh(context.Background(), c.ID, "ann@example.com"); !errors.Is(err, services.ErrNeedsReconnect) {
			t.Fatalf("refresh = %v", err)
		}
	}
	var types []string
	e.store.DB().Model(&models.Event{}).Where("connection_id = ?", c.ID).Order("id").Pluck("type", &types)
	if strings.Join(types, ",") != "connection.needs_reconnect,refresh.failed_again,refresh.failed_again" {
		t.Fatalf("events = %v", types)
	}
	var deliveries int64
	e.store.DB().Model(&models.WebhookDelivery{}).Where("connection_id = ?", c.ID).Count(&deliveries)
	if deliveries != 1 {
		t.Fatalf("%d webhook deliveries for one episode, want 1", deliveries)
	}
}

// TestCheckingAnAppThirtyTimesAtOnceAsksOnce: thirty "Check credentials" at once
// (tabs, double clicks) make one client_credentials call, and all get its answer.
func TestCheckingAnAppThirtyTimesAtOnceAsksOnce(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	e.fake.SetTokenLatency(200 * time.Millisecond)
	var wg sync.WaitGroup
	start := make(chan struct{})
	healths := make([]models.AppHealth, 30)
	for i := range healths {
		wg.Go(func() {
			<-start
			res, err := e.tokens.CheckApp(context.Background(), e.app, "ann@example.com")
			if err != nil {
				t.Error(err)
			}
			healths[i] = res.Health
		})
	}
	close(start)
	wg.Wait()
	if n := e.fake.Count(getresponsetest.EndpointTokenClientCredentials); n != 1 {
		t.Fatalf("30 checks at once made %d client_credentials calls, want 1", n)
	}
	for i, h := range healths {
		if h != models.AppHealthy {
			t.Fatalf("check %d = %q, want ok", i, h)
		}
	}
}

// TestOperatorProbesBackOffFrom30sTo15Min: after an operator-class failure the
// app's next probe is due in 30 s, and each failed probe doubles the wait up to
// 15 minutes — not a flat 15 minutes, so an incident at GetResponse heals fast.
func TestOperatorProbesBackOffFrom30sTo15Min(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	c := e.seed(models.StatusActive, e.clock.Now().Add(time.Hour), nil)
	e.fake.FailToken(getresponsetest.TokenInvalidClient, -1)
	want := 30 * time.Second
	for probe := 1; probe <= 8; probe++ {
		if _, err := e.tokens.Refresh(context.Background(), c.ID, "ann@example.com"); !errors.Is(err, services.ErrAppUnhealthy) {
			t.Fatalf("probe %d: %v", probe, err)
		}
		app, _ := e.store.AppByID(context.Background(), e.app.ID)
		if app.Health != models.AppCredentialsRejected || app.HealthRetryAt == nil {
			t.Fatalf("probe %d: app %q, retry %v", probe, app.Health, app.HealthRetryAt)
		}
		wait := app.HealthRetryAt.Sub(e.clock.Now())
		if lo, hi := time.Duration(float64(want)*0.8), min(time.Duration(float64(want)*1.2), 15*time.Minute); wait < lo || wait > hi {
			t.Fatalf("after %d failures the next probe waits %v, want %v (±20 %%, at most 15 min)", probe, wait, want)
		}
		e.clock.Advance(wait)
		want = min(2*want, 15*time.Minute)
	}
	if n := e.refreshes(); n != 8 {
		t.Fatalf("%d token calls for 8 probes", n)
	}
}
