package tokens

import (
	"time"

	"github.com/grconnect/grconnect/models"
)

// DuePolicy is the one rule of when a connection's tokens are refreshed. The
// refresher (Background, and in SQL through Query), an on-demand refresh (OnDemand)
// and the API's fast path (Fresh) all ask it; TestDuePolicyMatchesSQL holds the SQL
// picker to the same answers.
type DuePolicy struct {
	// Margin: an access token expiring within this is refreshed.
	Margin time.Duration
	// Keepalive: a connection not refreshed for this long is refreshed anyway, so
	// an unused refresh token never goes stale (background only).
	Keepalive time.Duration
}

// dueState is what the policy reads of a connection.
type dueState struct {
	status        models.Status
	expiresAt     *time.Time
	lastRefreshAt *time.Time
	nextAttemptAt *time.Time
}

func stateOf(c *models.Connection) dueState {
	return dueState{status: c.Status, expiresAt: c.ExpiresAt, lastRefreshAt: c.LastRefreshAt, nextAttemptAt: c.NextAttemptAt}
}

func stateOfRow(r *models.TokenRow) dueState {
	return dueState{status: r.Status, expiresAt: r.ExpiresAt, nextAttemptAt: r.NextAttemptAt}
}

// insideMargin reports whether the access token expires within the margin (or its
// expiry is unknown).
func (p DuePolicy) insideMargin(s dueState, now time.Time) bool {
	return s.expiresAt == nil || s.expiresAt.Sub(now) < p.Margin
}

// stale reports whether the connection has not been refreshed for the keep-alive.
func (p DuePolicy) stale(s dueState, now time.Time) bool {
	return s.lastRefreshAt == nil || s.lastRefreshAt.Before(now.Add(-p.Keepalive))
}

// windowOpen reports whether a failing connection's backoff window has passed.
func windowOpen(s dueState, now time.Time) bool {
	return s.nextAttemptAt == nil || !s.nextAttemptAt.After(now)
}

// Background reports whether the refresher should refresh c now: an active
// connection inside the margin or past the keep-alive, or a failing one whose
// backoff window has passed. needs_reconnect and disconnected never are.
func (p DuePolicy) Background(c *models.Connection, now time.Time) bool {
	s := stateOf(c)
	switch s.status {
	case models.StatusActive:
		return p.insideMargin(s, now) || p.stale(s, now)
	case models.StatusRefreshFailing:
		return windowOpen(s, now)
	}
	return false
}

// OnDemand reports whether a request for c's token should refresh it first: the
// token is inside the margin and, for a failing connection, the backoff window has
// passed. (The keep-alive is the refresher's business.)
func (p DuePolicy) OnDemand(c *models.Connection, now time.Time) bool {
	return p.onDemand(stateOf(c), now)
}

func (p DuePolicy) onDemand(s dueState, now time.Time) bool {
	switch s.status {
	case models.StatusActive:
		return p.insideMargin(s, now)
	case models.StatusRefreshFailing:
		return p.insideMargin(s, now) && windowOpen(s, now)
	}
	return false
}

// fresh reports whether a token can be handed out as stored, without the engine: a
// live connection whose token is outside the margin.
func (p DuePolicy) fresh(s dueState, now time.Time) bool {
	return s.status.Live() && !p.insideMargin(s, now)
}

// Query is Background as the SQL picker asks it (models.Store.DueConnections).
func (p DuePolicy) Query(now time.Time, limit int) models.DueQuery {
	return models.DueQuery{Now: now, Margin: p.Margin, Keepalive: p.Keepalive, Limit: limit}
}
