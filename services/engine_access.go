package services

import (
	"context"
	"errors"
	"time"

	"github.com/grconnect/grconnect/models"
)

// Grant is an access token handed out, with what callers need of its connection.
type Grant struct {
	// Token is the plaintext access token: it goes to the API caller or GetResponse,
	// never to a log.
	Token        string
	ConnectionID string
	AppID        string
	AccountID    string
	ExpiresAt    time.Time
	// Identity is the connection's MAX domain and X-Parent-Login, for its calls.
	Identity models.Identity
	// Refreshed says the engine refreshed the token before handing it out.
	Refreshed bool
	sealed    string
}

// AccessToken returns a usable access token for connection id. A token outside the
// refresh margin is read (on SQLite from a cache of sealed rows that every write
// retires) and opened; one inside the margin is refreshed first through the
// engine's single flight and lease, and still handed out when that refresh fails
// transiently while it is valid. Errors: models.ErrNotFound,
// models.ErrDisconnected, or a *RefreshError (needs reconnect, or transient).
func (t *Tokens) AccessToken(ctx context.Context, id, actor string) (*Grant, error) {
	row, err := t.tokenRow(ctx, id)
	if err != nil {
		return nil, err
	}
	now := t.Now()
	state := stateOfRow(row)
	switch {
	case row.Status == models.StatusDisconnected:
		return nil, models.ErrDisconnected
	case row.Status == models.StatusNeedsReconnect:
		return nil, &RefreshError{NeedsReconnect: true, Message: row.LastError}
	case t.policy.fresh(state, now):
		return t.grant(id, row.AppID, row.AccountID, row.AccessTokenEnc, row.ExpiresAt, false, row.Identity())
	case !t.policy.onDemand(state, now):
		// Failing, and its backoff window forbids another attempt yet.
		if row.ExpiresAt != nil && row.ExpiresAt.After(now) {
			return t.grant(id, row.AppID, row.AccountID, row.AccessTokenEnc, row.ExpiresAt, false, row.Identity())
		}
		return nil, &RefreshError{Message: row.LastError, NextAttemptAt: row.NextAttemptAt, RetryAfter: retryAfter(row.NextAttemptAt, now)}
	}
	conn, err := t.RefreshIfDue(ctx, id, actor, t.policy.OnDemand)
	switch {
	case err == nil:
		return t.grant(id, conn.AppID, conn.AccountID, conn.AccessTokenEnc, conn.ExpiresAt, conn.AccessTokenEnc != row.AccessTokenEnc, conn.Identity())
	case errors.Is(err, ErrTransient) && row.ExpiresAt != nil && row.ExpiresAt.After(now):
		t.log.Info("serving the still-valid token after a failed refresh", "connection", id)
		return t.grant(id, row.AppID, row.AccountID, row.AccessTokenEnc, row.ExpiresAt, false, row.Identity())
	}
	return nil, err
}

// grant opens a sealed access token into a Grant.
func (t *Tokens) grant(id, appID, accountID, sealed string, expires *time.Time, refreshed bool, ident models.Identity) (*Grant, error) {
	token, err := t.openAccessToken(id, sealed)
	if err != nil {
		return nil, err
	}
	g := &Grant{Token: token, ConnectionID: id, AppID: appID, AccountID: accountID, Identity: ident, Refreshed: refreshed, sealed: sealed}
	if expires != nil {
		g.ExpiresAt = *expires
	}
	return g, nil
}

// tokenRow reads a connection's sealed token, from the cache when it is current.
func (t *Tokens) tokenRow(ctx context.Context, id string) (*models.TokenRow, error) {
	if !t.cacheable {
		return t.store.TokenRow(ctx, id)
	}
	now := time.Now()
	if row, ok := t.tokenRows.get(id, t.store.Changes(), now); ok {
		return &row, nil
	}
	row, changes, err := t.store.FreshTokenRow(ctx, id)
	if err != nil {
		return nil, err
	}
	t.tokenRows.put(id, *row, changes, now)
	return row, nil
}

// Replaced reports whether the engine has stored another access token since g was
// handed out (someone else refreshed meanwhile). It reads the database, not the cache.
func (t *Tokens) Replaced(ctx context.Context, g *Grant) (bool, error) {
	row, err := t.store.TokenRow(ctx, g.ConnectionID)
	if err != nil {
		return false, err
	}
	return row.AccessTokenEnc != g.sealed, nil
}
