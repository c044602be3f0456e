package services

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/secrets"
)

// Errors of the token engine, for handlers to map.
var (
	// ErrNeedsReconnect: GetResponse rejected the refresh token; only the customer can fix it.
	ErrNeedsReconnect = errors.New("the connection needs to be reconnected")
	// ErrTransient: GetResponse failed for now (network, 5xx, 429); a retry may work.
	ErrTransient = errors.New("GetResponse is temporarily unavailable")
	// ErrDisconnected: the connection was disconnected and has no tokens.
	ErrDisconnected = errors.New("the connection is disconnected")
)

// Backoff after failed refreshes: doubling from the base, capped.
const (
	backoffBase = 30 * time.Second
	backoffCap  = time.Hour
	// refreshDeadline bounds one refresh, whoever waits for it.
	refreshDeadline = 30 * time.Second
)

// RefreshError is a failed refresh, classified. It matches ErrNeedsReconnect or
// ErrTransient with errors.Is.
type RefreshError struct {
	NeedsReconnect bool
	Message        string // in words, for the dashboard; never a token
	NextAttemptAt  *time.Time
	RetryAfter     time.Duration
	Err            error
}

func (e *RefreshError) Error() string { return e.Message }

// Is matches the engine's sentinel errors.
func (e *RefreshError) Is(target error) bool {
	return (target == ErrNeedsReconnect && e.NeedsReconnect) || (target == ErrTransient && !e.NeedsReconnect)
}

func (e *RefreshError) Unwrap() error { return e.Err }

// Tokens is the token engine: it refreshes connections — one refresh at a time per
// connection, across goroutines (single flight) and processes (a row lease) — and
// hands out valid access tokens.
type Tokens struct {
	store  *models.Store
	box    *secrets.Box
	apps   *Apps
	gr     *getresponse.Client
	margin time.Duration
	log    *slog.Logger
	flight singleflight.Group
	owner  string // this process's lease owner prefix
	// redirectURL is passed along for completeness of the client's App.
	redirectURL string

	// Now is the engine's clock (UTC, microseconds); tests replace it.
	Now func() time.Time
	// apps caches app rows for refreshes: every refresh needs its app, apps
	// rarely change, and an edit takes effect within appCacheTTL.
	appMu    sync.Mutex
	appCache map[string]cachedApp

	// BeforeCommit, when set, runs after GetResponse answered a refresh and before
	// the outcome is committed. An error abandons the refresh as a crash would: the
	// lease stays until it expires. For fault-injection tests only.
	BeforeCommit func(connectionID string) error
}

type cachedApp struct {
	app *models.App
	at  time.Time
}

// appCacheTTL bounds how long a refresh may use an app row read earlier.
const appCacheTTL = 10 * time.Second

// app returns a connection's app, from the short-lived cache when fresh.
func (t *Tokens) app(ctx context.Context, id string) (*models.App, error) {
	now := time.Now()
	t.appMu.Lock()
	c, ok := t.appCache[id]
	t.appMu.Unlock()
	if ok && now.Sub(c.at) < appCacheTTL {
		return c.app, nil
	}
	app, err := t.store.AppByID(ctx, id)
	if err != nil {
		return nil, err
	}
	t.appMu.Lock()
	if t.appCache == nil {
		t.appCache = map[string]cachedApp{}
	}
	t.appCache[id] = cachedApp{app: app, at: now}
	t.appMu.Unlock()
	return app, nil
}

// Lease timing: a lease outlives the slowest token call, so a worker that still
// holds one has either committed or given up.
const (
	leaseTTL     = 60 * time.Second
	leaseWait    = 25 * time.Second
	leasePoll    = 20 * time.Millisecond
	maxPollSleep = 200 * time.Millisecond
)

// NewTokens returns the token engine. margin is how long before expiry a token is
// refreshed before use.
func NewTokens(store *models.Store, box *secrets.Box, apps *Apps, gr *getresponse.Client, margin time.Duration, redirectURL string, log *slog.Logger) *Tokens {
	host, _ := os.Hostname()
	return &Tokens{store: store, box: box, apps: apps, gr: gr, margin: margin, redirectURL: redirectURL, log: log,
		Now: models.Now, owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), models.RandomToken(4))}
}

// Margin is how long before expiry a token counts as due.
func (t *Tokens) Margin() time.Duration { return t.margin }

// Get returns one connection, or ErrNotFound.
func (t *Tokens) Get(ctx context.Context, id string) (*models.Connection, error) {
	conn, err := t.store.ConnectionByID(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrNotFound
	}
	return conn, err
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

// leasedRefresh takes the connection's lease (waiting while another process holds
// it), re-reads the row, and refreshes when still needed.
func (t *Tokens) leasedRefresh(ctx context.Context, id, actor string, due func(*models.Connection, time.Time) bool) (*models.Connection, error) {
	owner := t.LeaseOwner()
	waitStart := t.Now()
	sleep := leasePoll
	var conn *models.Connection
	for waited := time.Duration(0); ; waited += sleep {
		now := t.Now()
		leased, err := t.store.AcquireLeaseRow(ctx, id, owner, now, now.Add(leaseTTL))
		if err != nil {
			return nil, err
		}
		if leased != nil {
			conn = leased // the row as it is now that it is ours
			break
		}
		current, err := t.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if current.Status == models.StatusDisconnected {
			return nil, ErrDisconnected
		}
		// Another worker finished while we waited: its outcome is ours.
		if current.LeaseOwner == "" && !current.UpdatedAt.Before(waitStart) {
			return outcome(current)
		}
		if waited >= leaseWait {
			// Contention is not a credential problem: say "try again", change nothing.
			return nil, &RefreshError{Message: "another refresh of this connection is still running; try again shortly", RetryAfter: time.Second}
		}
		select {
		case <-ctx.Done():
			return nil, &RefreshError{Message: "gave up waiting for another refresh of this connection", Err: ctx.Err()}
		case <-time.After(sleep):
		}
		sleep = min(sleep*2, maxPollSleep)
	}
	if due != nil && !due(conn, t.Now()) {
		if err := t.store.ReleaseLease(ctx, id, owner); err != nil {
			return nil, err
		}
		conn.LeaseOwner, conn.LeaseUntil = "", nil
		return conn, nil
	}
	return t.callAndCommit(ctx, conn, owner, actor)
}

// LeaseOwner returns a fresh lease-owner name for this process.
func (t *Tokens) LeaseOwner() string { return t.owner + "/" + models.RandomToken(4) }

// ReleaseLease gives up owner's lease on a connection without refreshing it.
func (t *Tokens) ReleaseLease(ctx context.Context, id, owner string) error {
	return t.store.ReleaseLease(context.WithoutCancel(ctx), id, owner)
}

// outcome turns the state another worker left into this caller's result.
func outcome(conn *models.Connection) (*models.Connection, error) {
	switch conn.Status {
	case models.StatusNeedsReconnect:
		return nil, &RefreshError{NeedsReconnect: true, Message: conn.LastError}
	case models.StatusRefreshFailing:
		return nil, &RefreshError{Message: conn.LastError, NextAttemptAt: conn.NextAttemptAt}
	}
	return conn, nil
}

// callAndCommit calls the token endpoint for a leased connection and commits the
// outcome, releasing the lease in the same transaction.
func (t *Tokens) callAndCommit(ctx context.Context, conn *models.Connection, owner, actor string) (*models.Connection, error) {
	out, rerr, err := t.PrepareLeased(ctx, conn, owner, actor)
	if err != nil {
		return nil, err
	}
	saved, serr := t.store.SaveRefresh(ctx, out.Prev, out.Result)
	return commitResult(saved, serr, rerr)
}

// commitResult turns a committed outcome into the caller's result.
func commitResult(saved *models.Connection, commitErr error, rerr *RefreshError) (*models.Connection, error) {
	switch {
	case errors.Is(commitErr, models.ErrDisconnected):
		return nil, ErrDisconnected
	case commitErr != nil:
		return nil, commitErr
	case rerr != nil:
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
	app, err := t.app(ctx, conn.AppID)
	if err != nil {
		return out, nil, fmt.Errorf("app of connection %s: %w", conn.ID, err)
	}
	ga, err := t.apps.Client(app, t.redirectURL)
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
			Tokens: &sealed, Event: models.Event{Type: "refresh.succeeded", Message: msg, Actor: actor},
			Recovered:  conn.Status == models.StatusRefreshFailing || conn.Status == models.StatusNeedsReconnect,
			LeaseOwner: owner, At: now,
		}
		return out, nil, nil
	}
	rerr = t.classify(callErr, conn.FailureCount+1)
	status, evType := models.StatusRefreshFailing, "refresh.failed"
	if rerr.NeedsReconnect {
		status, evType = models.StatusNeedsReconnect, "connection.needs_reconnect"
	}
	t.log.Warn("refresh failed", "connection", conn.ID, "status", status, "error", rerr.Message)
	out.Result = models.RefreshResult{
		Status: status, Error: rerr.Message, NextAttemptAt: rerr.NextAttemptAt, LeaseOwner: owner, At: now,
		Event: models.Event{Type: evType, Message: fmt.Sprintf("Refresh failed after %d ms: %s", took.Milliseconds(), rerr.Message), Actor: actor},
	}
	return out, rerr, nil
}

// classify turns a token-endpoint failure into the state it leads to.
func (t *Tokens) classify(err error, attempt int) *RefreshError {
	re := &RefreshError{Err: err}
	var te *getresponse.TokenError
	errors.As(err, &te)
	// Operator failures (invalid_client, 1017, …) still mark the connection until the engine has a state for them (issue 10).
	if a := getresponse.ActorOf(err); a == getresponse.ActorCustomer || a == getresponse.ActorOperator {
		re.NeedsReconnect = true
		re.Message = "GetResponse rejected the refresh token (" + describeGRError(err) + "); the customer must reconnect"
		return re
	}
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

// AccessToken returns a usable access token for a connection, refreshing it first
// when it expires within the margin (unless a failing connection's backoff window is
// still open). A still-valid token is returned even when that refresh fails
// transiently.
func (t *Tokens) AccessToken(ctx context.Context, id, actor string) (token string, conn *models.Connection, refreshed bool, err error) {
	conn, err = t.Get(ctx, id)
	if err != nil {
		return "", nil, false, err
	}
	switch conn.Status {
	case models.StatusDisconnected:
		return "", conn, false, ErrDisconnected
	case models.StatusNeedsReconnect:
		return "", conn, false, &RefreshError{NeedsReconnect: true, Message: conn.LastError}
	}
	now := t.Now()
	if t.dueOnDemand(conn, now) {
		fresh, rerr := t.RefreshIfDue(ctx, id, actor, t.dueOnDemand)
		switch {
		case rerr == nil:
			refreshed = fresh.LastRefreshAt != nil && conn.LastRefreshAt != nil && fresh.LastRefreshAt.After(*conn.LastRefreshAt)
			conn = fresh
		case errors.Is(rerr, ErrTransient) && conn.ExpiresAt != nil && conn.ExpiresAt.After(now):
			t.log.Info("serving the still-valid token after a failed refresh", "connection", id)
		default:
			return "", conn, false, rerr
		}
	} else if conn.Status == models.StatusRefreshFailing && (conn.ExpiresAt == nil || !conn.ExpiresAt.After(now)) {
		// Expired, and the backoff window forbids another attempt yet.
		return "", conn, false, &RefreshError{Message: conn.LastError, NextAttemptAt: conn.NextAttemptAt, RetryAfter: retryAfter(conn.NextAttemptAt, now)}
	}
	token, err = t.box.Open(conn.AccessTokenEnc, secrets.AAD("connection", conn.ID, "access_token"))
	return token, conn, refreshed, err
}

// dueOnDemand says whether a request for a token should refresh first: the token is
// inside the margin, and a failing connection's backoff window has passed.
func (t *Tokens) dueOnDemand(c *models.Connection, now time.Time) bool {
	if c.ExpiresAt != nil && c.ExpiresAt.Sub(now) >= t.margin {
		return false
	}
	switch c.Status {
	case models.StatusActive:
		return true
	case models.StatusRefreshFailing:
		return c.NextAttemptAt == nil || !c.NextAttemptAt.After(now)
	}
	return false
}

func retryAfter(next *time.Time, now time.Time) time.Duration {
	if next == nil || !next.After(now) {
		return time.Second
	}
	return next.Sub(now)
}

// Disconnect erases a connection's tokens and marks it disconnected.
func (t *Tokens) Disconnect(ctx context.Context, id, actor string) error {
	err := t.store.Disconnect(ctx, id, actor)
	if errors.Is(err, models.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// TestEndpoints are the calls an operator can try from the dashboard.
var TestEndpoints = []string{"/from-fields", "/accounts", "/campaigns"}

// TestCallResult is what a test call saw.
type TestCallResult struct {
	Path       string
	StatusCode int
	Latency    time.Duration
	RateLimit  getresponse.RateLimit
	JSON       string // the answer, pretty-printed (truncated when huge)
	FromFields []getresponse.FromField
	Account    *getresponse.Account
	Campaigns  []getresponse.Campaign
	// Notes say what the engine did around the call ("refreshed first", "retried after 1014").
	Notes []string
	Error string // the failure in words, when the call failed
}

// TestCall runs GET path (one of TestEndpoints) for a connection. An expired-token
// answer (401/1014) triggers one refresh and one retry.
func (t *Tokens) TestCall(ctx context.Context, id, path, actor string) (*TestCallResult, error) {
	allowed := false
	for _, p := range TestEndpoints {
		allowed = allowed || p == path
	}
	if !allowed {
		return nil, FieldErrors{"endpoint": "Choose one of the listed calls."}
	}
	res := &TestCallResult{Path: path}
	token, conn, refreshed, err := t.AccessToken(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	if refreshed {
		res.Notes = append(res.Notes, "The access token was about to expire, so it was refreshed before the call.")
	}
	app, err := t.store.AppByID(ctx, conn.AppID)
	if err != nil {
		return nil, err
	}
	ga, err := t.apps.Client(app, t.redirectURL)
	if err != nil {
		return nil, err
	}
	resp, callErr := t.gr.Do(ctx, ga, token, http.MethodGet, path, nil, nil)
	if errors.Is(callErr, getresponse.ErrTokenExpired) {
		res.Notes = append(res.Notes, "GetResponse answered that the access token is expired (code 1014), so it was refreshed once and the call retried.")
		if _, rerr := t.Refresh(ctx, id, actor); rerr != nil {
			return nil, rerr
		}
		if token, _, _, err = t.AccessToken(ctx, id, actor); err != nil {
			return nil, err
		}
		resp, callErr = t.gr.Do(ctx, ga, token, http.MethodGet, path, nil, nil)
	}
	if resp != nil {
		res.StatusCode, res.Latency, res.RateLimit = resp.StatusCode, resp.Latency, resp.RateLimit
		// An error's context may echo the sent token ({"sentToken": …}): never show it.
		res.JSON = prettyJSON(bytes.ReplaceAll(resp.Body, []byte(token), []byte("[redacted]")))
	}
	if callErr != nil {
		res.Error = describeGRError(callErr)
	} else {
		decodeTestBody(path, resp.Body, res)
	}
	msg := fmt.Sprintf("GET %s → %d in %d ms", path, res.StatusCode, res.Latency.Milliseconds())
	if res.Error != "" {
		msg = fmt.Sprintf("GET %s failed: %s", path, res.Error)
	}
	if err := t.store.AddEvent(ctx, &models.Event{ConnectionID: &conn.ID, AppID: &conn.AppID, Type: "test_call", Message: msg, Actor: actor}); err != nil {
		return nil, err
	}
	return res, nil
}

func decodeTestBody(path string, body []byte, res *TestCallResult) {
	var err error
	switch path {
	case "/from-fields":
		err = json.Unmarshal(body, &res.FromFields)
	case "/accounts":
		res.Account = &getresponse.Account{}
		err = json.Unmarshal(body, res.Account)
	case "/campaigns":
		err = json.Unmarshal(body, &res.Campaigns)
	}
	if err != nil {
		res.Error = "the answer was not the JSON GetResponse documents"
	}
}

const maxShownJSON = 64 << 10

func prettyJSON(body []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		buf.Reset()
		buf.Write(body)
	}
	if buf.Len() > maxShownJSON {
		return buf.String()[:maxShownJSON] + "\n… (truncated)"
	}
	return buf.String()
}
