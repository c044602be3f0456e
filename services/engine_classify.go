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
)

// Backoff after failed refreshes: doubling from the base, capped.
const (
	backoffBase = 30 * time.Second
	backoffCap  = time.Hour
)

// RefreshError is a failed refresh, classified. It matches ErrNeedsReconnect or
// ErrTransient with errors.Is.
type RefreshError struct {
	NeedsReconnect bool
	// Class says who must act: "customer", "operator" or "wait" (getresponse.Actor).
	Class         string
	Message       string // in words, for the dashboard; never a token
	NextAttemptAt *time.Time
	RetryAfter    time.Duration
	Err           error
}

func (e *RefreshError) Error() string { return e.Message }

// Is matches the engine's sentinel errors.
func (e *RefreshError) Is(target error) bool {
	return (target == ErrNeedsReconnect && e.NeedsReconnect) || (target == ErrTransient && !e.NeedsReconnect)
}

func (e *RefreshError) Unwrap() error { return e.Err }

// classify turns a token-endpoint failure for conn into the state it leads to.
func (t *Tokens) classify(err error, conn *models.Connection) *RefreshError {
	re := &RefreshError{Err: err, Class: string(getresponse.ActorOf(err))}
	var te *getresponse.TokenError
	errors.As(err, &te)
	// Operator failures (invalid_client, 1017, …) still mark the connection until the engine has a state for them (issue 10).
	if a := getresponse.ActorOf(err); a == getresponse.ActorCustomer || a == getresponse.ActorOperator {
		re.NeedsReconnect = true
		re.Message = "GetResponse rejected the refresh token (" + describeGRError(err) + "); the customer must reconnect"
		if conn.InterruptedBy != "" {
			// Under strict rotation the pair issued to the cut-off refresh replaced
			// this token, and that pair never reached the database.
			re.Message = "GetResponse rejected the refresh token (" + describeGRError(err) + "): it was lost in a crash during refresh — " +
				"an earlier refresh was sent but grconnect stopped before storing GetResponse's answer; the customer must reconnect"
		}
		return re
	}
	attempt := conn.FailureCount + 1
	if te != nil {
		re.RetryAfter = te.RetryAfter
	}
	delay := Backoff(attempt)
	if re.RetryAfter > delay {
		delay = re.RetryAfter
	}
	next := t.Now().Add(delay)
	re.NextAttemptAt = &next
	re.Message = "GetResponse did not refresh the token (" + describeGRError(err) + "); next attempt " + next.Format("15:04:05 UTC")
	return re
}

// Backoff returns the wait before attempt n (1 = the first retry): doubling from
// 30 s up to an hour, with ±20 % jitter so failing connections spread out.
func Backoff(n int) time.Duration {
	d := backoffBase
	for i := 1; i < n && d < backoffCap; i++ {
		d *= 2
	}
	d = min(d, backoffCap)
	jitter := time.Duration((rand.Float64()*0.4 - 0.2) * float64(d))
	return d + jitter
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
