package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// The token engine, one concern per file:
//
//	engine.go          Tokens: single flight, call and commit
//	engine_explicit.go explicit refreshes: they always ask GetResponse (their
//	                   limit, app probes)
//	engine_lease.go    the row lease that lets one worker of any process refresh
//	engine_gate.go     the gate of automatic refreshes: paused, paced
//	engine_replicas.go heartbeats; ending the leases of replicas that are gone
//	engine_classify.go who must act on a failed refresh, its state and backoff
//	engine_apphealth.go an app's health: paused refreshes, probes, one alert per episode
//	engine_due.go      DuePolicy: when a connection is due, for every caller
//	engine_access.go   access tokens for the API, the proxy and the dashboard
//	engine_pending.go  received token pairs kept until the database takes them
//	engine_nudge.go    background refreshes asked for by token requests that did not wait
//	engine_apps.go     the cache of app rows the hot paths read
//	engine_budget.go   each account's rate-limit budget, shared by refreshes and the proxy
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
	gr     *getresponse.Client
	policy DuePolicy
	log    *slog.Logger
	flight singleflight.Group
	// active holds the IDs whose refresh runs in this process now.
	active sync.Map
	owner  string // this process's lease owner prefix
	// redirectURL completes the client's App (a refresh does not send it).
	redirectURL string
	appRows     appCache
	tokenRows   models.RowCache[models.TokenRow]
	cacheable   bool
	pending     pendingPairs
	waits       appWaits
	budget      budgets
	nudged      nudges
	explicit    explicitCalls

	// held keeps the token rows last read, served only while PostgreSQL cannot
	// be reached (engine_access.go).
	held     models.HeldRows[models.TokenRow]
	gate     refreshGate // engine_gate.go
	beat     heartbeat   // engine_replicas.go
	leaseTTL time.Duration

	// Observer, when set, is told about every refresh (the metrics).
	Observer RefreshObserver

	// Now is the engine's clock (UTC, microseconds); tests replace it.
	Now func() time.Time

	// BeforeCommit, when set, runs after GetResponse answered a refresh and before
	// the outcome is committed. An error abandons the refresh as a crash would: the
	// lease stays until it expires. For fault-injection tests only.
	BeforeCommit func(connectionID string) error
}

// RefreshObserver is told about refreshes as they happen.
type RefreshObserver interface {
	// ObserveRefresh counts one refresh call: outcome is "succeeded" or "failed",
	// class the failure's class ("" on success), took the token call's duration.
	ObserveRefresh(outcome, class string, took time.Duration)
	// ObserveCommit measures how long a received token pair waited to be stored.
	ObserveCommit(window time.Duration)
}

func (t *Tokens) observeCommit(d time.Duration) {
	if t.Observer != nil {
		t.Observer.ObserveCommit(d)
	}
}

// NewTokens returns the token engine. policy says when a connection is due.
func NewTokens(store *models.Store, box *secrets.Box, gr *getresponse.Client, policy DuePolicy, redirectURL string, log *slog.Logger) *Tokens {
	host, _ := os.Hostname()
	t := &Tokens{store: store, box: box, gr: gr, policy: policy, redirectURL: redirectURL, log: log,
		Now: models.Now, owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), models.RandomToken(4)),
		appRows: appCache{store: store}, cacheable: store.CanCacheRows(), leaseTTL: DefaultLease}
	t.SetRefreshRate(defaultRefreshRate)
	return t
}

// defaultRefreshRate is GRCONNECT_REFRESH_RATE's default.
const defaultRefreshRate = 20

// Process names this process: the prefix of its refresh lease owners, and of its
// heartbeat (engine_replicas.go).
func (t *Tokens) Process() string { return t.owner }

// Policy returns the rule of when a connection is due.
func (t *Tokens) Policy() DuePolicy { return t.policy }

// auditRefresh records an explicit refresh in the audit log when the context names
// who asked. The refresh commits in steps of its own (the pair first, then its
// events), so its entry follows them. A refusal that sent nothing is not recorded:
// a backend looping on refresh must not flood the log.
func (t *Tokens) auditRefresh(ctx context.Context, id string, conn *models.Connection, err error) {
	var tooSoon *TooSoonError
	if _, asked := models.ActorOf(ctx); !asked || errors.Is(err, models.ErrNotFound) || errors.Is(err, models.ErrDisconnected) || errors.As(err, &tooSoon) {
		return
	}
	details := "Refresh failed: " + errorText(err)
	if err == nil && conn.ExpiresAt != nil {
		details = "Refreshed; the new access token is valid until " + conn.ExpiresAt.UTC().Format("2006-01-02 15:04:05 UTC")
	} else if err == nil {
		details = "Refreshed"
	}
	if aerr := t.store.RecordAction(ctx, models.AuditRefreshed, models.AuditTargetConnection, id, details); aerr != nil {
		t.log.Warn("could not record a refresh in the audit log", "connection", id, "error", aerr)
	}
}

// errorText is an error in words for the audit log, never empty.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// RefreshIfDue refreshes a connection only if due still holds once its lease is
// taken: another worker may have refreshed it a moment ago.
func (t *Tokens) RefreshIfDue(ctx context.Context, id, actor string, due func(*models.Connection, time.Time) bool) (*models.Connection, error) {
	return t.refresh(ctx, id, actor, due, explicitly)
}

// refresh runs one refresh of id.
func (t *Tokens) refresh(ctx context.Context, id, actor string, due func(*models.Connection, time.Time) bool, rules refreshRules) (*models.Connection, error) {
	// Concurrent callers in this process share one refresh; the shared work must not
	// die with the first caller's request, and is bounded on its own. Automatic
	// refreshes share theirs apart, so an explicit one never inherits the gate's
	// refusal.
	key := id
	if rules.automatic {
		key = "auto:" + id
	}
	v, err, _ := t.flight.Do(key, func() (any, error) {
		t.active.Store(id, true)
		defer t.active.Delete(id)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.refreshDeadline())
		defer cancel()
		if rules.automatic && t.pending.get(id) == nil {
			if err := t.admit(rctx, rules.turnWait); err != nil {
				return nil, err
			}
		}
		return t.leasedRefresh(rctx, id, actor, due, rules)
	})
	if err != nil {
		return nil, err
	}
	return v.(*models.Connection), nil
}

// refreshing reports whether a refresh of id runs in this process now.
func (t *Tokens) refreshing(id string) bool {
	_, ok := t.active.Load(id)
	return ok
}

// outcomeSink says where a refresh's outcome goes once GetResponse answered. A new
// pair is always stored at once (engine_pending.go: kept in memory if the database
// refuses it). A failure's outcome and a stored pair's events are written with it
// (a zero sink: on demand), or handed to a committer that writes them in groups
// (the refresher's).
type outcomeSink struct {
	failures chan<- models.RefreshOutcome
	events   chan<- []*models.Event
}

// runLeased is the one path of every refresh once owner holds the connection's
// lease, on demand or in the refresher's batch: the leased row is checked against
// due (not due any more, or its new pair still waits to be stored: the lease is
// given back and the row is the answer), an automatic refresh waits for its send
// turn, the token endpoint is called (PrepareLeased) and the outcome goes to sink.
// sent reports whether the call was made (or cut off by a fault hook).
func (t *Tokens) runLeased(ctx context.Context, conn *models.Connection, owner, actor string, due func(*models.Connection, time.Time) bool, rules refreshRules, sink outcomeSink) (result *models.Connection, sent bool, err error) {
	release := func() error {
		if err := t.ReleaseLease(ctx, conn.ID, owner); err != nil {
			t.log.Warn("could not release a refresh lease", "connection", conn.ID, "error", err)
			return err
		}
		return nil
	}
	if pair := t.pending.get(conn.ID); pair != nil {
		// Its newest pair waits to be stored: refreshing again would replace it.
		return pair.connection(), false, release()
	}
	if due != nil && !due(conn, t.Now()) {
		if err := release(); err != nil {
			return nil, false, err
		}
		conn.LeaseOwner, conn.LeaseUntil = "", nil
		return conn, false, nil
	}
	if rules.automatic {
		if err := t.sendTurn(ctx); err != nil {
			release()
			return nil, false, err
		}
		// The database may have stopped taking writes since the admission (the
		// lease itself can still fit a full disk's last pages): a pair GetResponse
		// sent now could not be stored.
		if t.gateShut() {
			release()
			return nil, false, &pausedError{reason: "the database stopped taking writes"}
		}
	}
	p, err := t.PrepareLeased(ctx, conn, owner, actor)
	if err != nil {
		return nil, true, err // not sent (its lease is released), or cut off by a fault hook
	}
	if sink.failures != nil && !p.NewTokens() {
		sink.failures <- p.Out
		return nil, true, p.Err
	}
	saved, err := t.commit(ctx, p.Out, p.access, p.received, sink.events)
	if p.Err != nil && errors.Is(err, models.ErrSuperseded) {
		// The refresh failed, and meanwhile another process stored a newer pair
		// (the token this one presented was dead because of it): the failure is
		// moot, and the stored pair is the answer.
		t.log.Info("a failed refresh was ignored: another process stored a newer token pair meanwhile", "connection", conn.ID)
		saved, err = t.store.ConnectionByID(ctx, conn.ID)
		return saved, true, err
	}
	if err != nil {
		return nil, true, err
	}
	if p.Err != nil {
		return nil, true, p.Err
	}
	return saved, true, nil
}

// Prepared is a refresh call's outcome, ready to be committed.
type Prepared struct {
	Out models.RefreshOutcome
	// Err classifies a failed refresh (nil on success).
	Err *RefreshError
	// access is a new pair's plaintext access token, handed out while the pair is
	// pending; received is when GetResponse's answer arrived.
	access   string
	received time.Time
}

// NewTokens reports whether the outcome carries a new token pair.
func (p *Prepared) NewTokens() bool { return p.Out.Result.Tokens != nil }

// PrepareLeased calls the token endpoint for a connection leased by owner and
// returns the outcome to commit. err is set only when there is nothing to commit.
func (t *Tokens) PrepareLeased(ctx context.Context, conn *models.Connection, owner, actor string) (p *Prepared, err error) {
	p = &Prepared{}
	out := &p.Out
	out.Prev = conn
	// Nothing was sent if these fail: give the lease back, or its expiry would
	// mark the connection as interrupted by a crash.
	unsent := func(err error) (*Prepared, error) {
		if rerr := t.store.ReleaseLease(context.WithoutCancel(ctx), conn.ID, owner); rerr != nil {
			t.log.Warn("could not release a refresh lease", "connection", conn.ID, "error", rerr)
		}
		return nil, err
	}
	app, err := t.App(ctx, conn.AppID)
	if err != nil {
		return unsent(fmt.Errorf("app of connection %s: %w", conn.ID, err))
	}
	ga, err := ClientFor(t.box, app, conn.Identity(), t.redirectURL)
	if err != nil {
		return unsent(err)
	}
	refreshToken, err := t.box.Open(conn.RefreshTokenEnc, secrets.AAD("connection", conn.ID, "refresh_token"))
	if err != nil {
		return unsent(err)
	}
	start := time.Now()
	var tok *getresponse.Token
	var callErr error
	if until, blocked := t.accountBlocked(app.APIURL, conn.MaxDomain, conn.AccountID, start); blocked {
		// GetResponse asked to leave this account alone (a 429 on its calls):
		// refreshes count against the same budget, so this one waits too.
		callErr = &getresponse.TokenError{Op: "refresh", Kind: getresponse.KindRateLimited, Description: "the account's GetResponse rate limit is spent", RetryAfter: time.Until(until)}
	} else if refreshToken == "" {
		callErr = &getresponse.TokenError{Kind: getresponse.KindNoRefreshToken, Code: "no_refresh_token", Description: "no refresh token is stored"}
	} else {
		tok, callErr = t.gr.Refresh(ctx, ga, refreshToken)
	}
	p.received = time.Now()
	took := p.received.Sub(start).Round(time.Millisecond)
	if t.BeforeCommit != nil {
		if ferr := t.BeforeCommit(conn.ID); ferr != nil {
			return nil, ferr
		}
	}
	now := t.Now()
	if callErr == nil {
		if t.Observer != nil {
			t.Observer.ObserveRefresh("succeeded", "", took)
		}
		sealed, serr := SealTokens(t.box, conn.ID, tok, now)
		if serr != nil {
			return nil, serr
		}
		p.access = tok.AccessToken
		msg := fmt.Sprintf("Refreshed in %d ms; access token valid until %s", took.Milliseconds(), sealed.ExpiresAt.Format("2006-01-02 15:04:05 UTC"))
		if tok.RefreshToken != "" && tok.RefreshToken != refreshToken {
			msg += "; new refresh token stored" // x/oauth2 keeps the old one when none came
		}
		if conn.InterruptedBy != "" {
			msg += " (an earlier refresh was cut off before its answer was stored; the refresh token still worked)"
		}
		out.Result = models.RefreshResult{
			Tokens: &sealed, Event: models.Event{Type: models.EventRefreshSucceeded, Message: msg, Actor: actor},
			Recovered:  conn.Status != models.StatusActive || conn.LastError != "",
			LeaseOwner: owner, At: now,
		}
		if !app.Health.Healthy() {
			t.setAppHealth(ctx, app, models.AppHealthy, "a refresh succeeded", actor)
		}
		return p, nil
	}
	rerr := t.classify(callErr, conn, app)
	p.Err = rerr
	if t.Observer != nil {
		t.Observer.ObserveRefresh("failed", rerr.Class, took)
	}
	event := models.Event{Message: fmt.Sprintf("Refresh failed after %d ms: %s", took.Milliseconds(), rerr.Message), Actor: actor}
	out.Result = models.RefreshResult{Error: rerr.Message, NextAttemptAt: rerr.NextAttemptAt, LeaseOwner: owner, At: now}
	switch rerr.Class {
	case ClassCustomer:
		out.Result.Status, event.Type = models.StatusNeedsReconnect, models.EventNeedsReconnect
	case ClassOperator:
		// The app, not this connection: it keeps its state, and the app's health
		// carries the one alert.
		out.Result.Paused, out.Result.Status, event.Type = true, conn.Status, models.EventRefreshPaused
		t.setAppHealth(ctx, app, appHealthFor(callErr), DescribeGRError(callErr), actor)
	default:
		out.Result.Status, event.Type = models.StatusRefreshFailing, models.EventRefreshFailed
		if t.waits.note(app.ID, conn.ID, now) {
			t.setAppHealth(ctx, app, models.AppRefused, DescribeGRError(callErr), actor)
		}
	}
	if out.Result.Status == conn.Status && !out.Result.Paused && strings.Contains(conn.LastError, "("+DescribeGRError(callErr)+")") {
		// The same failure again, in the same state: on the timeline, no second alert.
		event.Type = models.EventRefreshFailedAgain
	}
	out.Result.Event = event
	t.log.Warn("refresh failed", "connection", conn.ID, "class", rerr.Class, "error", rerr.Message)
	return p, nil
}

// Forget drops what this process holds of connection id for outages (its last
// token row): the connection is being disconnected or deleted.
func (t *Tokens) Forget(id string) {
	t.held.Drop(id)
}
