package services

import (
	"context"
	"sync"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
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

// AppWorks records that something other than a refresh (a customer's completed
// code exchange, new credentials GetResponse accepted) proved GetResponse accepts
// app again: it is healthy, and its paused refreshes resume.
func (t *Tokens) AppWorks(ctx context.Context, app *models.App, what, actor string) {
	t.setAppHealth(ctx, app, models.AppHealthy, what, actor)
}

// AppFails records an answer about app's credentials or configuration that came
// from something other than a refresh (a customer's code exchange): the app is
// marked, its refreshes pause, and the operator is alerted once. Answers of any
// other kind say nothing about the app and change nothing.
func (t *Tokens) AppFails(ctx context.Context, app *models.App, err error, actor string) {
	if getresponse.ActorOf(err) != getresponse.ActorOperator {
		return
	}
	t.setAppHealth(ctx, app, appHealthFor(err), describeGRError(err), actor)
}

// setAppHealth moves app to health h after GetResponse's answer (what, in a few
// words); errors are logged (the answer's own outcome is stored regardless). An
// operator's problem is probed again after 30 s, doubling up to 15 minutes;
// GetResponse refusing the app's calls after 30 s, doubling up to an hour.
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
		ch.Resumed = "Refreshes resume: the app works again (" + what + ")."
	case h.OperatorMustAct():
		ch.Backoff, ch.Reason = appProbeBackoff, what
		ch.Message = "App unhealthy: " + AppHealthAdvice(h, what)
	default:
		ch.Backoff, ch.Reason = Backoff, what
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

// appBlocks returns the error an automatic refresh gets instead of a call while
// app is unhealthy (nil when it is healthy).
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

// CheckVerdict is what a credentials check found out.
type CheckVerdict string

// The verdicts of a credentials check.
const (
	// CheckAccepted: GetResponse accepted the client ID and secret (and MAX domain).
	CheckAccepted CheckVerdict = "accepted"
	// CheckRejected: GetResponse rejected them, or the app's configuration.
	CheckRejected CheckVerdict = "rejected"
	// CheckGrantRefused: GetResponse refused the client_credentials grant itself
	// (unsupported_grant_type, unauthorized_client). That says nothing about the
	// credentials, so nothing could be checked and nothing changes.
	CheckGrantRefused CheckVerdict = "grant_refused"
)

// CheckResult is a credentials check's outcome.
type CheckResult struct {
	Verdict CheckVerdict
	// Health is the app's health the check leads to (rejected: who must act).
	Health models.AppHealth
	// Says is the outcome in words, for the operator.
	Says string
}

// CheckApp asks GetResponse whether app's client ID and secret (and MAX domain) are
// accepted, with a client_credentials call, and records what that proves: accepted
// makes the app healthy, rejected marks it; a grant refused changes nothing. An
// unreachable GetResponse changes nothing and comes back as an error.
func (t *Tokens) CheckApp(ctx context.Context, app *models.App, actor string) (CheckResult, error) {
	// Checks of one app as saved run once at a time: thirty clicks make one call.
	type checked struct{ res CheckResult }
	key := "check-app\x00" + app.ID + "\x00" + app.UpdatedAt.String()
	v, err, _ := t.flight.Do(key, func() (any, error) {
		res, err := t.checkCredentials(context.WithoutCancel(ctx), app)
		if err == nil {
			t.recordCheck(ctx, app, res, actor)
		}
		return checked{res}, err
	})
	c, _ := v.(checked)
	return c.res, err
}

// TryCredentials asks GetResponse, as CheckApp does, about credentials not saved
// yet (an edit of the app form): the answer is only reported, no health changes.
func (t *Tokens) TryCredentials(ctx context.Context, candidate *models.App) (CheckResult, error) {
	return t.checkCredentials(ctx, candidate)
}

// recordCheck records what a check of app as saved proved.
func (t *Tokens) recordCheck(ctx context.Context, app *models.App, res CheckResult, actor string) {
	switch res.Verdict {
	case CheckAccepted:
		t.setAppHealth(ctx, app, models.AppHealthy, "GetResponse accepted the client ID and secret (checked by "+actor+")", actor)
	case CheckRejected:
		t.setAppHealth(ctx, app, res.Health, res.Says, actor)
	}
}

// checkCredentials makes the client_credentials call and reads its answer; Says
// of a rejection is GetResponse's answer in a few words (recordCheck's reason),
// turned into advice by Advice.
func (t *Tokens) checkCredentials(ctx context.Context, app *models.App) (CheckResult, error) {
	ga, err := t.apps.Client(app, t.redirectURL)
	if err != nil {
		return CheckResult{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = t.gr.CheckCredentials(cctx, ga)
	what := describeGRError(err)
	switch {
	case err == nil:
		return CheckResult{Verdict: CheckAccepted, Health: models.AppHealthy, Says: "GetResponse accepted the client ID and secret."}, nil
	case grantRefused(err):
		return CheckResult{Verdict: CheckGrantRefused, Health: app.Health,
			Says: "Cannot check with this grant: GetResponse does not let this app use the client_credentials grant (" + what + "), which says nothing about its client ID and secret. Nothing was changed: refreshes go on, and the first refresh or customer's connection shows whether GetResponse accepts them."}, nil
	case getresponse.ActorOf(err) == getresponse.ActorOperator:
		return CheckResult{Verdict: CheckRejected, Health: appHealthFor(err), Says: what}, nil
	}
	return CheckResult{}, &RefreshError{Class: ClassWait, Message: what, Err: err}
}

// Advice is a check's outcome for the operator: a rejection says what to do.
func (r CheckResult) Advice() string {
	if r.Verdict == CheckRejected {
		return AppHealthAdvice(r.Health, r.Says)
	}
	return r.Says
}

// CredentialsReplaced records that an app's client ID, secret or GetResponse
// address changed without GetResponse having judged the new ones (the check could
// not ask, or the grant was refused): an earlier rejection concerned the old ones,
// so the app's operator-class pause ends and refreshes show what the new ones do.
func (t *Tokens) CredentialsReplaced(ctx context.Context, app *models.App, actor string) {
	if app.Health.OperatorMustAct() {
		t.setAppHealth(ctx, app, models.AppHealthy, "its credentials were replaced by "+actor+"; the rejection concerned the old ones", actor)
	}
}
