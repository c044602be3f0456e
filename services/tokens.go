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

// Tokens is the token engine: it refreshes connections (one refresh at a time per
// connection in this process) and hands out valid access tokens.
type Tokens struct {
	store  *models.Store
	box    *secrets.Box
	apps   *Apps
	gr     *getresponse.Client
	margin time.Duration
	log    *slog.Logger
	now    func() time.Time
	flight singleflight.Group
	// redirectURL is passed along for completeness of the client's App.
	redirectURL string
}

// NewTokens returns the token engine. margin is how long before expiry a token is
// refreshed before use.
func NewTokens(store *models.Store, box *secrets.Box, apps *Apps, gr *getresponse.Client, margin time.Duration, redirectURL string, log *slog.Logger) *Tokens {
	return &Tokens{store: store, box: box, apps: apps, gr: gr, margin: margin, redirectURL: redirectURL, log: log, now: models.Now}
}

// Get returns one connection, or ErrNotFound.
func (t *Tokens) Get(ctx context.Context, id string) (*models.Connection, error) {
	conn, err := t.store.ConnectionByID(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrNotFound
	}
	return conn, err
}

// Refresh refreshes a connection's tokens now. Concurrent calls for the same
// connection share one call to GetResponse. actor is who asked (an operator's
// email, "system" or "api").
func (t *Tokens) Refresh(ctx context.Context, id, actor string) (*models.Connection, error) {
	// The shared work must not die with the first caller's request.
	v, err, _ := t.flight.Do(id, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshDeadline)
		defer cancel()
		return t.refresh(rctx, id, actor)
	})
	if err != nil {
		return nil, err
	}
	return v.(*models.Connection), nil
}

func (t *Tokens) refresh(ctx context.Context, id, actor string) (*models.Connection, error) {
	conn, err := t.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if conn.Status == models.StatusDisconnected {
		return nil, ErrDisconnected
	}
	app, err := t.store.AppByID(ctx, conn.AppID)
	if err != nil {
		return nil, fmt.Errorf("app of connection %s: %w", id, err)
	}
	ga, err := t.apps.Client(app, t.redirectURL)
	if err != nil {
		return nil, err
	}
	refreshToken, err := t.box.Open(conn.RefreshTokenEnc, secrets.AAD("connection", conn.ID, "refresh_token"))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var tok *getresponse.Token
	if refreshToken == "" {
		err = &getresponse.TokenError{Kind: getresponse.KindNeedsReconnect, Code: "no_refresh_token", Description: "no refresh token is stored"}
	} else {
		tok, err = t.gr.Refresh(ctx, ga, refreshToken)
	}
	took := time.Since(start).Round(time.Millisecond)
	if err == nil {
		sealed, serr := sealTokens(t.box, conn.ID, tok, t.now())
		if serr != nil {
			return nil, serr
		}
		msg := fmt.Sprintf("Refreshed in %d ms; access token valid until %s", took.Milliseconds(), sealed.ExpiresAt.Format("2006-01-02 15:04:05 UTC"))
		if tok.RefreshToken != "" {
			msg += "; new refresh token stored"
		}
		saved, serr := t.store.SaveRefresh(ctx, conn.ID, models.RefreshResult{
			Tokens: &sealed, Event: models.Event{Type: "refresh.succeeded", Message: msg, Actor: actor},
			Recovered: conn.Status == models.StatusRefreshFailing || conn.Status == models.StatusNeedsReconnect,
		})
		if errors.Is(serr, models.ErrDisconnected) {
			return nil, ErrDisconnected
		}
		return saved, serr
	}
	rerr := t.classify(err, conn.FailureCount+1)
	status, evType := models.StatusRefreshFailing, "refresh.failed"
	if rerr.NeedsReconnect {
		status, evType = models.StatusNeedsReconnect, "connection.needs_reconnect"
	}
	t.log.Warn("refresh failed", "connection", conn.ID, "status", status, "error", rerr.Message)
	if _, serr := t.store.SaveRefresh(ctx, conn.ID, models.RefreshResult{
		Status: status, Error: rerr.Message, NextAttemptAt: rerr.NextAttemptAt,
		Event: models.Event{Type: evType, Message: fmt.Sprintf("Refresh failed after %d ms: %s", took.Milliseconds(), rerr.Message), Actor: actor},
	}); serr != nil {
		if errors.Is(serr, models.ErrDisconnected) {
			return nil, ErrDisconnected
		}
		return nil, serr
	}
	return nil, rerr
}

// classify turns a token-endpoint failure into the state it leads to.
func (t *Tokens) classify(err error, attempt int) *RefreshError {
	re := &RefreshError{Err: err}
	var te *getresponse.TokenError
	errors.As(err, &te)
	if errors.Is(err, getresponse.ErrNeedsReconnect) || errors.Is(err, getresponse.ErrBlocked) {
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
	next := t.now().Add(delay)
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
// when it expires within the margin. A still-valid token is returned even when that
// refresh fails transiently.
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
	now := t.now()
	if conn.ExpiresAt == nil || conn.ExpiresAt.Sub(now) < t.margin {
		fresh, rerr := t.Refresh(ctx, id, actor)
		switch {
		case rerr == nil:
			conn, refreshed = fresh, true
		case errors.Is(rerr, ErrTransient) && conn.ExpiresAt != nil && conn.ExpiresAt.After(now):
			t.log.Info("serving the still-valid token after a failed refresh", "connection", id)
		default:
			return "", conn, false, rerr
		}
	}
	token, err = t.box.Open(conn.AccessTokenEnc, secrets.AAD("connection", conn.ID, "access_token"))
	return token, conn, refreshed, err
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
