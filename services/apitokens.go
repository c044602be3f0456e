package services

import (
	"context"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/secrets"
)

// Grant is an access token handed out through the API, with what callers need of
// its connection.
type Grant struct {
	// Token is the plaintext access token: it goes to the API caller or GetResponse,
	// never to a log.
	Token        string
	ConnectionID string
	AppID        string
	AccountID    string
	ExpiresAt    time.Time
	// Refreshed says the engine refreshed the token before handing it out.
	Refreshed bool
	sealed    string
}

// APITokens hands out access tokens to the JSON API and the proxy. A token well
// outside the refresh margin is read (from a cache of sealed rows that every write
// retires, on SQLite) and opened per request; anything else (inside the margin,
// failing, disconnected) goes through the token engine, so refreshes keep their
// single flight and leases.
type APITokens struct {
	engine    *Tokens
	store     *models.Store
	box       *secrets.Box
	cache     rowCache[models.TokenRow]
	cacheable bool
}

// NewAPITokens returns the API's view of the token engine. box must be the engine's.
func NewAPITokens(engine *Tokens, store *models.Store, box *secrets.Box) *APITokens {
	return &APITokens{engine: engine, store: store, box: box, cacheable: store.CanCacheRows()}
}

// AccessToken returns a usable access token for connection id, refreshed first when
// it expires within the margin. Errors are the engine's: models.ErrNotFound,
// models.ErrDisconnected, or a *RefreshError (needs reconnect, or transient).
func (a *APITokens) AccessToken(ctx context.Context, id, actor string) (*Grant, error) {
	row, err := a.row(ctx, id)
	if err != nil {
		return nil, err
	}
	// The engine's own rule for a token that is not due: open it and hand it out.
	live := row.Status == models.StatusActive || row.Status == models.StatusRefreshFailing
	if live && row.ExpiresAt != nil && row.ExpiresAt.Sub(a.engine.Now()) >= a.engine.Margin() {
		token, err := a.box.Open(row.AccessTokenEnc, secrets.AAD("connection", id, "access_token"))
		if err != nil {
			return nil, err
		}
		return &Grant{Token: token, ConnectionID: id, AppID: row.AppID, AccountID: row.AccountID, ExpiresAt: *row.ExpiresAt, sealed: row.AccessTokenEnc}, nil
	}
	token, conn, refreshed, err := a.engine.AccessToken(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	g := &Grant{Token: token, ConnectionID: id, AppID: conn.AppID, AccountID: conn.AccountID, Refreshed: refreshed, sealed: conn.AccessTokenEnc}
	if conn.ExpiresAt != nil {
		g.ExpiresAt = *conn.ExpiresAt
	}
	return g, nil
}

// row reads a connection's sealed token, from the cache when it is current.
func (a *APITokens) row(ctx context.Context, id string) (*models.TokenRow, error) {
	if !a.cacheable {
		return a.store.TokenRow(ctx, id)
	}
	now := time.Now()
	if row, ok := a.cache.get(id, a.store.Changes(), now); ok {
		return &row, nil
	}
	row, changes, err := a.store.FreshTokenRow(ctx, id)
	if err != nil {
		return nil, err
	}
	a.cache.put(id, *row, changes, now)
	return row, nil
}

// Replaced reports whether the engine has stored another access token since g was
// handed out (someone else refreshed meanwhile). It reads the database, not the cache.
func (a *APITokens) Replaced(ctx context.Context, g *Grant) (bool, error) {
	row, err := a.store.TokenRow(ctx, g.ConnectionID)
	if err != nil {
		return false, err
	}
	return row.AccessTokenEnc != g.sealed, nil
}

// Refresh refreshes a connection now, through the engine's single flight.
func (a *APITokens) Refresh(ctx context.Context, id, actor string) (*models.Connection, error) {
	return a.engine.Refresh(ctx, id, actor)
}
