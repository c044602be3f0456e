package services

import (
	"context"
	"sync"
	"time"

	"github.com/grconnect/grconnect/models"
)

// An app whose refreshes fail for everyone is the operator's problem (its
// credentials or configuration were rejected) or nobody's but time's (GetResponse
// refuses its calls). Either way its connections keep their tokens and state, their
// automatic refreshes pause, one probe at a time tests the app, and the alert goes
// out once per episode — as one app event, never one per connection.

// appWaits remembers recent wait-class failures per app, to tell "this connection
// failed" from "GetResponse refuses the app's calls".
type appWaits struct {
	mu    sync.Mutex
	byApp map[string]map[string]time.Time // app ID → connection ID → last failure
}

// note records a wait-class failure of conn and reports whether enough different
// connections of app failed within the window to make the whole app wait.
func (w *appWaits) note(appID, connID string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byApp == nil {
		w.byApp = map[string]map[string]time.Time{}
	}
	m := w.byApp[appID]
	if m == nil {
		m = map[string]time.Time{}
		w.byApp[appID] = m
	}
	m[connID] = now
	for id, at := range m {
		if now.Sub(at) > appRefusedWindow {
			delete(m, id)
		}
	}
	return len(m) >= appRefusedAfter
}

// forget clears an app's recent failures (it works again).
func (w *appWaits) forget(appID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byApp, appID)
}

// setAppHealth moves app to health h after a refresh's answer; errors are logged
// (the refresh's own outcome is stored regardless).
// AppWorks records that something other than a refresh (a customer's completed
// code exchange) proved GetResponse accepts app again: it is healthy, and its paused
// refreshes resume.
func (t *Tokens) AppWorks(ctx context.Context, app *models.App, what, actor string) {
	t.setAppHealth(ctx, app, models.AppHealthy, what, actor)
}

func (t *Tokens) setAppHealth(ctx context.Context, app *models.App, h models.AppHealth, what, actor string) {
	now := t.Now()
	ch := models.AppHealthChange{Health: h, Actor: actor, At: now}
	switch {
	case h.Healthy():
		if app.Health.Healthy() {
			return
		}
		t.waits.forget(app.ID)
		ch.Message = "The app works again: " + what + ". Paused refreshes resume; no customer had to act."
	case h.OperatorMustAct():
		next := now.Add(appProbeEvery)
		ch.RetryAt, ch.Reason = &next, what
		ch.Message = "App unhealthy: " + AppHealthAdvice(h, what)
	default:
		next := now.Add(Backoff(app.HealthFailures + 1))
		ch.RetryAt, ch.Reason = &next, what
		ch.Message = "App unhealthy: " + AppHealthAdvice(h, what)
	}
	changed, err := t.store.SetAppHealth(context.WithoutCancel(ctx), app.ID, ch)
	if err != nil {
		t.log.Error("could not record the app's health", "app", app.ID, "health", h, "error", err)
		return
	}
	if changed {
		t.log.Warn("app health changed", "app", app.ID, "health", h, "reason", what)
	}
}

// appBlocks returns the error a caller gets instead of a refresh while app is
// unhealthy (nil when it is healthy).
func (t *Tokens) appBlocks(app *models.App, now time.Time) *RefreshError {
	if app.Health.Healthy() {
		return nil
	}
	re := &RefreshError{App: app, AppHealth: app.Health, Message: AppHealthAdvice(app.Health, app.HealthReason), Err: ErrAppUnhealthy}
	if app.Health.OperatorMustAct() {
		re.Class = ClassOperator
		return re
	}
	re.Class = ClassWait
	re.RetryAfter = retryAfter(app.HealthRetryAt, now)
	re.NextAttemptAt = app.HealthRetryAt
	return re
}

// CheckApp asks GetResponse whether app's client ID and secret (and MAX domain) are
// accepted, with a client_credentials call, and records the answer as the app's
// health. It returns the health and the answer in words; an unreachable
// GetResponse changes nothing and comes back as an error.
func (t *Tokens) CheckApp(ctx context.Context, app *models.App, actor string) (models.AppHealth, string, error) {
	// Checks of one app as saved run once at a time: thirty clicks make one call.
	type checked struct {
		health models.AppHealth
		says   string
	}
	key := "check-app\x00" + app.ID + "\x00" + app.UpdatedAt.String()
	v, err, _ := t.flight.Do(key, func() (any, error) {
		h, says, err := t.checkApp(context.WithoutCancel(ctx), app, actor)
		return checked{h, says}, err
	})
	c, _ := v.(checked)
	return c.health, c.says, err
}

func (t *Tokens) checkApp(ctx context.Context, app *models.App, actor string) (models.AppHealth, string, error) {
	ga, err := t.apps.Client(app, t.redirectURL)
	if err != nil {
		return "", "", err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = t.gr.CheckCredentials(cctx, ga)
	if err == nil {
		t.setAppHealth(ctx, app, models.AppHealthy, "GetResponse accepted the client ID and secret (checked by "+actor+")", actor)
		return models.AppHealthy, "GetResponse accepted the client ID and secret.", nil
	}
	what := describeGRError(err)
	switch t.classify(err, &models.Connection{}, app).Class {
	case ClassOperator:
		h := appHealthFor(err)
		t.setAppHealth(ctx, app, h, what, actor)
		return h, AppHealthAdvice(h, what), nil
	}
	return "", "", &RefreshError{Class: ClassWait, Message: what, Err: err}
}
