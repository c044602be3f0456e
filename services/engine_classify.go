package services

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
)

// Errors of the token engine, for handlers to map.
var (
	// ErrNeedsReconnect: GetResponse rejected the refresh token; only the customer can fix it.
	ErrNeedsReconnect = errors.New("the connection needs to be reconnected")
	// ErrTransient: GetResponse failed for now (network, 5xx, 429); a retry may work.
	ErrTransient = errors.New("GetResponse is temporarily unavailable")
	// ErrAppUnhealthy: the connection's app cannot refresh for anyone: its
	// configuration was rejected (the operator must act) or GetResponse refuses its
	// calls (wait). The connection itself is fine.
	ErrAppUnhealthy = errors.New("the connection's app cannot refresh tokens right now")
)

// Who must act on a failed refresh: the failure table of docs/architecture.md.
const (
	ClassCustomer = string(getresponse.ActorCustomer) // a new consent: needs_reconnect
	ClassOperator = string(getresponse.ActorOperator) // the app's configuration: the app's health
	ClassWait     = string(getresponse.ActorWait)     // GetResponse or the network: backoff
)

// Backoff after failed refreshes: doubling from the base, capped.
const (
	backoffBase = 30 * time.Second
	backoffCap  = time.Hour
	// appProbeCap bounds the wait between probes of an app whose credentials or
	// configuration were rejected: probed anyway (the operator may have fixed it at
	// GetResponse without touching grconnect, or GetResponse's answer was an incident
	// of its own), doubling from 30 s.
	appProbeCap = 15 * time.Minute
	// appRefusedAfter failures of the wait class, for different connections of one
	// app within appRefusedWindow, make the whole app wait (one probe at a time).
	appRefusedAfter  = 3
	appRefusedWindow = time.Minute
)

// RefreshError is a failed refresh, classified by who must act. It matches
// ErrNeedsReconnect (the customer's), ErrAppUnhealthy (the app's: operator or
// app-wide waiting) and ErrTransient (waiting) with errors.Is.
type RefreshError struct {
	NeedsReconnect bool
	// Class says who must act: ClassCustomer, ClassOperator or ClassWait.
	Class         string
	Message       string // in words, for the dashboard; never a token
	NextAttemptAt *time.Time
	RetryAfter    time.Duration
	// App is set when the app, not this connection, is the cause: its health and
	// reason say what to do. AppHealth is the state the failure puts it in (App
	// may be the app as it was read before).
	App       *models.App
	AppHealth models.AppHealth
	Err       error
}

func (e *RefreshError) Error() string { return e.Message }

// Is matches the engine's sentinel errors.
func (e *RefreshError) Is(target error) bool {
	switch target {
	case ErrNeedsReconnect:
		return e.NeedsReconnect
	case ErrAppUnhealthy:
		return e.App != nil
	case ErrTransient:
		return !e.NeedsReconnect && e.Class != ClassOperator
	}
	return false
}

func (e *RefreshError) Unwrap() error { return e.Err }

// classify turns a token-endpoint failure for conn (of app) into the state it
// leads to. The one rule of who must act:
//   - the customer (invalid_grant, no refresh token): needs_reconnect;
//   - the operator (invalid_client, unauthorized_client, the MAX domain, headers,
//     API access blocked): the app's health, the connection keeps its state;
//   - nobody but time (5xx, timeouts, 429, 1016, 1018, 1019, a redirect):
//     refresh_failing with backoff, and the app waits as a whole when several of its
//     connections see it.
func (t *Tokens) classify(err error, conn *models.Connection, app *models.App) *RefreshError {
	re := &RefreshError{Err: err, Class: string(getresponse.ActorOf(err))}
	what := describeGRError(err)
	switch re.Class {
	case ClassCustomer:
		re.NeedsReconnect = true
		re.Message = "GetResponse rejected the refresh token (" + what + "); the customer must reconnect"
		if conn.InterruptedBy != "" {
			// Under strict rotation the pair issued to the cut-off refresh replaced
			// this token, and that pair never reached the database.
			re.Message = "GetResponse rejected the refresh token (" + what + "): it was lost in a crash during refresh — " +
				"an earlier refresh was sent but grconnect stopped before storing GetResponse's answer; the customer must reconnect"
		}
		return re
	case ClassOperator, string(getresponse.ActorCaller):
		re.Class = ClassOperator
		re.App, re.AppHealth = app, appHealthFor(err)
		re.Message = "Refreshes of this app are paused: " + AppHealthAdvice(re.AppHealth, what)
		return re
	}
	re.Class = ClassWait
	var te *getresponse.TokenError
	if errors.As(err, &te) {
		re.RetryAfter = te.RetryAfter
	}
	delay := Backoff(conn.FailureCount + 1)
	if re.RetryAfter > delay {
		delay = re.RetryAfter
	}
	next := t.Now().Add(delay)
	re.NextAttemptAt = &next
	re.Message = "GetResponse did not refresh the token (" + what + "); next attempt " + next.Format("15:04:05 UTC")
	return re
}

// appHealthFor is the app health an operator-class failure leads to.
func appHealthFor(err error) models.AppHealth {
	var te *getresponse.TokenError
	if errors.As(err, &te) && (te.Kind == getresponse.KindInvalidClient || te.Kind == getresponse.KindUnauthorizedClient) {
		return models.AppCredentialsRejected
	}
	return models.AppMisconfigured
}

// AppHealthAdvice says, for the operator, what an unhealthy app's state means and
// what to do about it; what is GetResponse's answer in a few words.
func AppHealthAdvice(h models.AppHealth, what string) string {
	switch h {
	case models.AppCredentialsRejected:
		return "GetResponse rejected the app's client ID or secret (" + what + "). The operator must paste the current ones from GetResponse (Integrations & API → OAuth) into the app's settings; customers need not reconnect."
	case models.AppMisconfigured:
		return "GetResponse refused the app's configuration (" + what + "): check its MAX domain and URLs, or ask GetResponse whether API access is blocked. The operator must act; customers need not reconnect."
	case models.AppRefused:
		return "GetResponse is refusing this app's calls for now (" + what + "). Nobody needs to act: grconnect waits and tries one call at a time until it works again."
	}
	return ""
}

// Backoff returns the wait before attempt n (1 = the first retry): doubling from
// 30 s up to an hour, with ±20 % jitter so failing connections spread out.
func Backoff(n int) time.Duration { return backoffUpTo(n, backoffCap) }

// appProbeBackoff is the wait before the n-th probe of an app the operator must
// fix: doubling from 30 s up to 15 minutes.
func appProbeBackoff(n int) time.Duration { return backoffUpTo(n, appProbeCap) }

// backoffUpTo doubles from 30 s for each attempt, with ±20 % jitter, never past limit.
func backoffUpTo(n int, limit time.Duration) time.Duration {
	d := backoffBase
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	jitter := time.Duration((rand.Float64()*0.4 - 0.2) * float64(d))
	return min(d+jitter, limit)
}

// grantRefused reports whether a client_credentials check was refused as a grant
// (unsupported_grant_type, unauthorized_client): an answer about that grant, which
// says nothing about the credentials or about the app's refreshes.
func grantRefused(err error) bool {
	var te *getresponse.TokenError
	return errors.As(err, &te) && te.Op == "check" && (te.Code == "unsupported_grant_type" || te.Code == "unauthorized_client")
}

// retryAfter is how long until a failing connection's next attempt (at least 1 s).
func retryAfter(next *time.Time, now time.Time) time.Duration {
	if next == nil || !next.After(now) {
		return time.Second
	}
	return next.Sub(now)
}

// describeGRError puts a GetResponse failure in a few words, never with a token.
func describeGRError(err error) string {
	var te *getresponse.TokenError
	var ae *getresponse.APIError
	switch {
	case errors.As(err, &te):
		if te.Code != "" {
			return te.Code
		}
		if te.HTTPStatus != 0 {
			return fmt.Sprintf("HTTP %d", te.HTTPStatus)
		}
		return string(te.Kind)
	case errors.As(err, &ae):
		return fmt.Sprintf("HTTP %d, code %d", ae.HTTPStatus, ae.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, getresponse.ErrTransient):
		return "network error"
	}
	return "unexpected error"
}
