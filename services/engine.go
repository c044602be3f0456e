package services

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/secrets"
	"github.com/grconnect/grconnect/services/getresponse"
)

// The token engine, one concern per file:
//
//	engine.go          Tokens: refresh now, single flight, call and commit
//	engine_lease.go    the row lease that lets one worker of any process refresh
//	engine_classify.go a failed refresh in words, its state and backoff
//	engine_due.go      DuePolicy: when a connection is due, for every caller
//	engine_access.go   access tokens for the API, the proxy and the dashboard
//	engine_apps.go     the cache of app rows the hot paths read
//	engine_seal.go     sealing a token pair for a connection
//	engine_testcall.go the dashboard's test calls
//	refresher.go       the background loop

// refreshDeadline bounds one refresh, whoever waits for it.
const refreshDeadline = 30 * time.Second

// Tokens is the token engine: it refreshes connections — one refresh at a time per
// connection, across goroutines (single flight) and processes (a row lease) — and
// hands out valid access tokens.
type Tokens struct {
	store  *models.Store
	box    *secrets.Box
	apps   *Apps
	gr     *getresponse.Client
	policy DuePolicy
	log    *slog.Logger
	flight singleflight.Group
	owner  string // this process's lease owner prefix
	// redirectURL completes the client's App (a refresh does not send it).
	redirectURL string
	appRows     appCache
	tokenRows   rowCache[models.TokenRow]
	cacheable   bool

	// Now is the engine's clock (UTC, microseconds); tests replace it.
	Now func() time.Time

	// BeforeCommit, when set, runs after GetResponse answered a refresh and before
	// the outcome is committed. An error abandons the refresh as a crash would: the
	// lease stays until it expires. For fault-injection tests only.
	BeforeCommit func(connectionID string) error
}

// NewTokens returns the token engine. policy says when a connection is due.
func NewTokens(store *models.Store, box *secrets.Box, apps *Apps, gr *getresponse.Client, policy DuePolicy, redirectURL string, log *slog.Logger) *Tokens {
	host, _ := os.Hostname()
	return &Tokens{store: store, box: box, apps: apps, gr: gr, policy: policy, redirectURL: redirectURL, log: log,
		Now: models.Now, owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), models.RandomToken(4)),
		appRows: appCache{store: store}, cacheable: store.CanCacheRows()}
}

// Policy returns the rule of when a connection is due.
func (t *Tokens) Policy() DuePolicy { return t.policy }

// Get returns one connection, or models.ErrNotFound.
func (t *Tokens) Get(ctx context.Context, id string) (*models.Connection, error) {
	return t.store.ConnectionByID(ctx, id)
}

// Refresh refreshes a connection's tokens now, whatever its state (an operator's or
// the API's explicit request). actor is who asked (an operator's email, "system" or
// "api").
func (t *Tokens) Refresh(ctx context.Context, id, actor string) (*models.Connection, error) {
	return t.refresh(ctx, id, actor, nil)
}

// RefreshIfDue refreshes a connection only if due still holds once its lease is
// taken: another worker may have refreshed it a moment ago.
func (t *Tokens) RefreshIfDue(ctx context.Context, id, actor string, due func(*models.Connection, time.Time) bool) (*models.Connection, error) {
	return t.refresh(ctx, id, actor, due)
}

func (t *Tokens) refresh(ctx context.Context, id, actor string, due func(*models.Connection, time.Time) bool) (*models.Connection, error) {
	// Concurrent callers in this process share one refresh; the shared work must not
	// die with the first caller's request, and is bounded on its own.
	v, err, _ := t.flight.Do(id, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshDeadline)
		defer cancel()
		return t.leasedRefresh(rctx, id, actor, due)
	})
	if err != nil {
		return nil, err
	}
	return v.(*models.Connection), nil
}

// callAndCommit calls the token endpoint for a leased connection and commits the
// outcome, releasing the lease in the same transaction.
func (t *Tokens) callAndCommit(ctx context.Context, conn *models.Connection, owner, actor string) (*models.Connection, error) {
	out, rerr, err := t.PrepareLeased(ctx, conn, owner, actor)
	if err != nil {
		return nil, err
	}
	saved, err := t.store.SaveRefresh(ctx, out.Prev, out.Result)
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	return saved, nil
}

// PrepareLeased calls the token endpoint for a connection leased by owner and
// returns the outcome to commit (with models.Store.SaveRefreshes, alone or in a
// batch) and, for a failed refresh, its classified error. err is set only when
// there is nothing to commit.
func (t *Tokens) PrepareLeased(ctx context.Context, conn *models.Connection, owner, actor string) (out models.RefreshOutcome, rerr *RefreshError, err error) {
	out.Prev = conn
	app, err := t.App(ctx, conn.AppID)
	if err != nil {
		return out, nil, fmt.Errorf("app of connection %s: %w", conn.ID, err)
	}
	ga, err := t.apps.ClientFor(app, conn.Identity(), t.redirectURL)
	if err != nil {
		return out, nil, err
	}
	refreshToken, err := t.box.Open(conn.RefreshTokenEnc, secrets.AAD("connection", conn.ID, "refresh_token"))
	if err != nil {
		return out, nil, err
	}
	start := time.Now()
	var tok *getresponse.Token
	var callErr error
	if refreshToken == "" {
		callErr = &getresponse.TokenError{Kind: getresponse.KindNoRefreshToken, Code: "no_refresh_token", Description: "no refresh token is stored"}
	} else {
		tok, callErr = t.gr.Refresh(ctx, ga, refreshToken)
	}
	took := time.Since(start).Round(time.Millisecond)
	if t.BeforeCommit != nil {
		if ferr := t.BeforeCommit(conn.ID); ferr != nil {
			return out, nil, ferr
		}
	}
	now := t.Now()
	if callErr == nil {
		sealed, serr := sealTokens(t.box, conn.ID, tok, now)
		if serr != nil {
			return out, nil, serr
		}
		msg := fmt.Sprintf("Refreshed in %d ms; access token valid until %s", took.Milliseconds(), sealed.ExpiresAt.Format("2006-01-02 15:04:05 UTC"))
		if tok.RefreshToken != "" {
			msg += "; new refresh token stored"
		}
		out.Result = models.RefreshResult{
			Tokens: &sealed, Event: models.Event{Type: models.EventRefreshSucceeded, Message: msg, Actor: actor},
			Recovered:  conn.Status == models.StatusRefreshFailing || conn.Status == models.StatusNeedsReconnect,
			LeaseOwner: owner, At: now,
		}
		return out, nil, nil
	}
	rerr = t.classify(callErr, conn.FailureCount+1)
	status, evType := models.StatusRefreshFailing, models.EventRefreshFailed
	if rerr.NeedsReconnect {
		status, evType = models.StatusNeedsReconnect, models.EventNeedsReconnect
	}
	t.log.Warn("refresh failed", "connection", conn.ID, "status", status, "error", rerr.Message)
	out.Result = models.RefreshResult{
		Status: status, Error: rerr.Message, NextAttemptAt: rerr.NextAttemptAt, LeaseOwner: owner, At: now,
		Event: models.Event{Type: evType, Message: fmt.Sprintf("Refresh failed after %d ms: %s", took.Milliseconds(), rerr.Message), Actor: actor},
	}
	return out, rerr, nil
}

// Disconnect erases a connection's tokens and marks it disconnected.
func (t *Tokens) Disconnect(ctx context.Context, id, actor string) error {
	return t.store.Disconnect(ctx, id, actor)
}
