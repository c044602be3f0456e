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
	// RefreshedAt is when the connection was last refreshed (zero: unknown).
	RefreshedAt time.Time
	sealed      string
}

// RecentlyRefreshed reports whether g's connection was refreshed within the
// cooldown: another refresh on demand would not help.
func (g *Grant) RecentlyRefreshed(now time.Time) bool {
	return !g.RefreshedAt.IsZero() && now.Sub(g.RefreshedAt) < refreshCooldown
}

// waitFloor: a token valid for longer than this is handed out at once, even inside
// the margin, rather than wait for a refresh that is already running (the
// refresher's or another caller's). Only a token about to expire waits.
const waitFloor = 60 * time.Second

// refreshCooldown: a connection refreshed this recently is not refreshed again on
// demand (a token route, a proxied call's 1014, an API refresh). A token GetResponse
// keeps refusing right after a refresh will not be cured by another one, and a burst
// of calls must not become a burst of refreshes.
const refreshCooldown = 30 * time.Second

// AccessToken returns a usable access token for connection id. A token outside the
// refresh margin is read (on SQLite from a cache of sealed rows that every write
// retires; on PostgreSQL, while it cannot be reached, from the row last read) and
// opened — no write on that path. Inside the margin a token still valid for more
// than waitFloor is handed out at once and refreshed in the background; one about
// to expire is refreshed first, through the gate of automatic refreshes (its turn
// at the refresh rate, never while storage refuses writes), and still handed out
// when the refresh fails or waits for a reason that is not the customer's. A pair
// received but not yet stored (the database refused it) is the one handed out.
// Errors: models.ErrNotFound, models.ErrDisconnected, models.ErrStorageUnavailable,
// or a *RefreshError.
func (t *Tokens) AccessToken(ctx context.Context, id, actor string) (*Grant, error) {
	if pair := t.pending.get(id); pair != nil {
		prev := pair.out.Prev
		return &Grant{Token: pair.access, ConnectionID: id, AppID: prev.AppID, AccountID: prev.AccountID, Identity: prev.Identity(),
			ExpiresAt: pair.expires, sealed: pair.out.Result.Tokens.AccessEnc}, nil
	}
	row, err := t.tokenRow(ctx, id)
	if err != nil {
		return nil, err
	}
	now := t.Now()
	state := stateOfRow(row)
	serve := func() (*Grant, error) {
		g, err := t.grant(id, row.AppID, row.AccountID, row.AccessTokenEnc, row.ExpiresAt, false, row.Identity())
		if g != nil && row.LastRefreshAt != nil {
			g.RefreshedAt = *row.LastRefreshAt
		}
		return g, err
	}
	valid := row.ExpiresAt != nil && row.ExpiresAt.After(now)
	switch {
	case row.Status == models.StatusDisconnected:
		return nil, models.ErrDisconnected
	case row.Status == models.StatusNeedsReconnect:
		return nil, &RefreshError{NeedsReconnect: true, Class: "customer", Message: row.LastError}
	case t.policy.fresh(state, now):
		return serve()
	case !t.policy.onDemand(state, now):
		// Failing, and its backoff window forbids another attempt yet.
		if valid {
			return serve()
		}
		// When the whole app waits or must be fixed, that is the answer to give.
		if app, err := t.App(ctx, row.AppID); err == nil {
			if blocked := t.appBlocks(app, now); blocked != nil {
				return nil, blocked
			}
		}
		return nil, &RefreshError{Message: row.LastError, NextAttemptAt: row.NextAttemptAt, RetryAfter: retryAfter(row.NextAttemptAt, now)}
	}
	// Inside the margin. A token still valid beyond the floor is handed out at once,
	// and its refresh is left to the background (a nudge, and the refresher anyway):
	// a request never waits in a wave of refreshes behind SQLite's one writer.
	if roomy := row.ExpiresAt != nil && row.ExpiresAt.Sub(now) > waitFloor; roomy {
		if !row.Leased(now) && !t.refreshing(id) {
			t.nudge(id)
		}
		return serve()
	}
	if row.LastRefreshAt != nil && now.Sub(*row.LastRefreshAt) < refreshCooldown {
		if valid {
			return serve()
		}
		return nil, &RefreshError{Class: ClassWait, Message: "GetResponse's access token expired moments after it was refreshed; try again shortly", RetryAfter: refreshCooldown}
	}
	if why := t.RefreshesPaused(ctx); why != "" {
		// No refresh starts while storage refuses writes: a valid token still serves.
		if valid {
			return serve()
		}
		return nil, &pausedError{reason: why}
	}
	app, err := t.App(ctx, row.AppID)
	if err != nil {
		return nil, err
	}
	if blocked := t.appBlocks(app, now); blocked != nil {
		// The app cannot refresh for anyone: a valid token still serves.
		if valid {
			return serve()
		}
		return nil, blocked
	}
	// The caller needs this refresh, so it waits for its turn at the refresh rate,
	// but not past the token's expiry when it is still valid.
	turn := admitWait
	if valid {
		turn = min(turn, row.ExpiresAt.Sub(now))
	}
	conn, err := t.refresh(ctx, id, actor, t.policy.OnDemand, refreshRules{wait: true, automatic: true, turnWait: turn})
	switch {
	case err == nil:
		g, err := t.grant(id, conn.AppID, conn.AccountID, conn.AccessTokenEnc, conn.ExpiresAt, conn.AccessTokenEnc != row.AccessTokenEnc, conn.Identity())
		if g != nil && conn.LastRefreshAt != nil {
			g.RefreshedAt = *conn.LastRefreshAt
		}
		return g, err
	case errors.Is(err, errLeaseBusy) && valid:
		return serve()
	case valid && (errors.Is(err, ErrTransient) || errors.Is(err, models.ErrStorageUnavailable) || errors.Is(err, ErrAppUnhealthy)):
		t.log.Info("serving the still-valid token after a failed refresh", "connection", id)
		return serve()
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
// Where rows are not cached (PostgreSQL), the row last read is held, and answers
// only while the database cannot be reached and its token is still valid.
func (t *Tokens) tokenRow(ctx context.Context, id string) (*models.TokenRow, error) {
	if !t.cacheable {
		row, err := t.store.TokenRow(ctx, id)
		switch {
		case err == nil:
			t.held.put(id, *row)
			return row, nil
		case errors.Is(err, models.ErrNotFound):
			t.held.drop(id)
		case models.StorageProblemOf(err) == models.ProblemUnreachable:
			if held, ok := t.held.get(id); ok && held.Status.Live() && held.ExpiresAt != nil && held.ExpiresAt.After(t.Now()) {
				return &held, nil
			}
		}
		return nil, err
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

// holdStored holds the token row of a connection this process just stored, so
// that an outage that begins now serves the new token, not the one it replaced.
func (t *Tokens) holdStored(c *models.Connection) {
	if t.cacheable || c == nil {
		return
	}
	t.held.put(c.ID, models.TokenRow{ID: c.ID, AppID: c.AppID, AccountID: c.AccountID, Status: c.Status,
		AccessTokenEnc: c.AccessTokenEnc, ExpiresAt: c.ExpiresAt, NextAttemptAt: c.NextAttemptAt, LastError: c.LastError,
		LastRefreshAt: c.LastRefreshAt, MaxDomain: c.MaxDomain, ParentLogin: c.ParentLogin})
}

// RefreshRefused refreshes the connection of g, an access token GetResponse just
// refused as expired (a proxied call's 1014): a refresh grconnect starts by
// itself, so it goes through the gate of automatic refreshes, waiting for its
// turn. It refreshes only while g's token is still the stored one (another
// refresh may have replaced it meanwhile), and never for an app that cannot
// refresh for anyone (the error names the app).
func (t *Tokens) RefreshRefused(ctx context.Context, g *Grant, actor string) (*models.Connection, error) {
	app, err := t.App(ctx, g.AppID)
	if err != nil {
		return nil, err
	}
	if blocked := t.appBlocks(app, t.Now()); blocked != nil {
		return nil, blocked
	}
	stillRefused := func(c *models.Connection, _ time.Time) bool { return c.AccessTokenEnc == g.sealed }
	return t.refresh(ctx, g.ConnectionID, actor, stillRefused, refreshRules{wait: true, automatic: true, turnWait: admitWait})
}
