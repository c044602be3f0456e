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
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/infra/netguard"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// CallbackActions are GetResponse's callback actions, in its order.
var CallbackActions = []string{"open", "click", "goal", "subscribe", "unsubscribe", "survey"}

// Callback registration timing.
const (
	callbacksBatch    = 20
	callbacksParallel = 4
	callbacksLease    = 2 * time.Minute
	// callbacksMaxAttempts bounds the retries of a registration GetResponse keeps
	// refusing for now: with the backoff (30 s doubling to an hour) about a day.
	callbacksMaxAttempts = 30
	// CallbacksTimeout bounds one call to GetResponse's callbacks endpoint.
	CallbacksTimeout = 20 * time.Second
)

// Callbacks registers each connection's events URL as its GetResponse account's
// callback URL (POST /v3/accounts/callbacks, with the connection's own token,
// X-Domain and X-Parent-Login) when its app asks for callbacks, and removes it
// on disconnect (DELETE /v3/accounts/callbacks). What is wanted is written in the
// transaction of the change that calls for it (models.ConnectionCallback), and
// this worker sends it, retrying what GetResponse refuses for now.
type Callbacks struct {
	store  *models.Store
	box    *secrets.Box
	tokens *Tokens
	apps   *Apps
	events *Events
	gr     *getresponse.Client
	log    *slog.Logger
	owner  string
	pass   atomic.Uint64
	kick   chan struct{}
	// Interval is how often Run looks for due registrations.
	Interval time.Duration
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewCallbacks returns the callback registration worker; gr carries its calls
// (through the outgoing-call guard, as every GetResponse call).
func NewCallbacks(store *models.Store, box *secrets.Box, tokens *Tokens, apps *Apps, events *Events, gr *getresponse.Client, log *slog.Logger) *Callbacks {
	return &Callbacks{store: store, box: box, tokens: tokens, apps: apps, events: events, gr: gr, log: log,
		owner: "cb/" + models.RandomToken(6), kick: make(chan struct{}, 1), Interval: 5 * time.Second, Now: models.Now}
}

// ParseCallbackActions checks a choice of callback actions and returns it as
// stored (comma-separated, in GetResponse's order; "" for none).
func ParseCallbackActions(chosen []string) (string, error) {
	var picked []string
	for _, a := range CallbackActions {
		if slices.Contains(chosen, a) {
			picked = append(picked, a)
		}
	}
	for _, a := range chosen {
		if !slices.Contains(CallbackActions, a) {
			return "", FieldErrors{"actions": "Choose among open, click, goal, subscribe, unsubscribe and survey."}
		}
	}
	return strings.Join(picked, ","), nil
}

// SetActions stores the callback actions app registers for its connections
// ("" turns callbacks off) and applies them to its connections that hold tokens.
// It reports how many connections were queued.
func (c *Callbacks) SetActions(ctx context.Context, app *models.App, actions string) (int64, error) {
	what := "off"
	if actions != "" {
		what = strings.ReplaceAll(actions, ",", ", ")
	}
	ctx = auditing(ctx, models.AuditCallbacksChanged, TargetApp, app.ID, fmt.Sprintf("GetResponse callbacks of app %q: %s", app.Name, what))
	n, err := c.store.SetAppCallbacks(ctx, app.ID, actions)
	if err == nil {
		c.Kick()
	}
	return n, err
}

// Status returns connection id's callback registration (models.ErrNotFound when
// grconnect never meant to register any).
func (c *Callbacks) Status(ctx context.Context, id string) (*models.ConnectionCallback, error) {
	return c.store.CallbackOf(ctx, id)
}

// Kick makes Run look for due registrations now.
func (c *Callbacks) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run sends due registrations until ctx ends.
func (c *Callbacks) Run(ctx context.Context) {
	for {
		n, err := c.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Error("GetResponse callback registration pass failed", "error", err)
		}
		if n >= callbacksBatch && err == nil {
			continue
		}
		wait := time.Duration(float64(c.Interval) * (0.8 + 0.4*rand.Float64()))
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-time.After(wait):
		}
	}
}

// RunOnce sends one batch of due registrations and returns how many it attempted.
func (c *Callbacks) RunOnce(ctx context.Context) (int, error) {
	if ctx.Err() != nil {
		return 0, nil
	}
	owner := c.owner + "/" + strconv.FormatUint(c.pass.Add(1), 10)
	due, err := c.store.DueCallbacks(ctx, owner, c.Now(), callbacksLease, callbacksBatch)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	ctx = context.WithoutCancel(ctx) // a call sent is recorded, even during shutdown
	var wg sync.WaitGroup
	sem := make(chan struct{}, callbacksParallel)
	var failed atomic.Value
	for _, cb := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			o := c.process(ctx, &cb)
			if err := c.store.SaveCallbackOutcome(ctx, cb.ConnectionID, owner, cb.Version, o, c.Now()); err != nil {
				failed.Store(err)
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return len(due), err
	}
	return len(due), nil
}

// callbackFailure is a failed attempt: what GetResponse (or grconnect) said, who
// must act, and whether trying again later may help.
type callbackFailure struct {
	msg       string
	actor     string
	retry     bool
	retryWait time.Duration
}

// process makes one attempt at cb's want.
func (c *Callbacks) process(ctx context.Context, cb *models.ConnectionCallback) models.CallbackOutcome {
	conn, err := c.store.ConnectionByID(ctx, cb.ConnectionID)
	if err != nil {
		return c.failed(cb, conn, c.failure(err))
	}
	var note string
	var f *callbackFailure
	if cb.Want == models.CallbacksRegister {
		note, f = c.register(ctx, conn, cb)
	} else {
		note, f = c.remove(ctx, conn)
	}
	if f != nil {
		return c.failed(cb, conn, f)
	}
	o := models.CallbackOutcome{State: models.CallbacksDone, Note: note}
	o.Event = &models.Event{ConnectionID: &conn.ID, AppID: &conn.AppID, Actor: "system", Type: models.EventCallbacksRemoved, Message: note}
	if cb.Want == models.CallbacksRegister {
		o.Event.Type = models.EventCallbacksRegistered
	}
	return o
}

// failed turns a failure into the outcome: another attempt later, or (nobody can
// help by waiting, or a day has passed) a failure someone must act on.
func (c *Callbacks) failed(cb *models.ConnectionCallback, conn *models.Connection, f *callbackFailure) models.CallbackOutcome {
	o := models.CallbackOutcome{State: models.CallbacksFailed, Error: f.msg, Actor: f.actor}
	if f.retry && cb.Attempts+1 < callbacksMaxAttempts {
		o.State = models.CallbacksPending
		o.NextAt = c.Now().Add(max(Backoff(cb.Attempts+1), f.retryWait))
		return o
	}
	if conn != nil {
		what := "registered"
		if cb.Want == models.CallbacksRemove {
			what = "removed"
		}
		o.Event = &models.Event{ConnectionID: &conn.ID, AppID: &conn.AppID, Actor: "system", Type: models.EventCallbacksFailed,
			Message: "GetResponse callbacks could not be " + what + ": " + f.msg}
	}
	return o
}

// register sets the connection's events URL as its account's callback URL.
func (c *Callbacks) register(ctx context.Context, conn *models.Connection, cb *models.ConnectionCallback) (string, *callbackFailure) {
	if conn.Status == models.StatusDisconnected {
		return "", &callbackFailure{msg: "the connection is disconnected", actor: ClassCustomer}
	}
	eventsURL, err := c.events.URL(ctx, conn)
	if err != nil {
		return "", c.failure(err)
	}
	body, _ := json.Marshal(callbackConfig{URL: eventsURL, Actions: actionSet(cb.Actions)})
	var before callbackConfig
	err = c.withToken(ctx, conn, func(ga getresponse.App, token string) error {
		if resp, err := c.gr.Do(ctx, ga, token, http.MethodGet, "/accounts/callbacks", nil, nil); err == nil {
			_ = json.Unmarshal(resp.Body, &before)
		} else if !notFound(err) {
			return err
		}
		_, err := c.gr.Do(ctx, ga, token, http.MethodPost, "/accounts/callbacks", nil, bytes.NewReader(body))
		return err
	})
	if err != nil {
		return "", c.failure(err)
	}
	note := "GetResponse callbacks registered at this connection's events URL for " + strings.ReplaceAll(cb.Actions, ",", ", ")
	if before.URL != "" && !c.events.IsEventsURL(before.URL) {
		note += "; they replaced callbacks that went to " + hostOf(before.URL) + " (GetResponse keeps one callback URL per account)"
	}
	return note, nil
}

// remove turns the account's callbacks off when they still go to grconnect.
func (c *Callbacks) remove(ctx context.Context, conn *models.Connection) (string, *callbackFailure) {
	var before callbackConfig
	gone := false
	call := func(ga getresponse.App, token string) error {
		resp, err := c.gr.Do(ctx, ga, token, http.MethodGet, "/accounts/callbacks", nil, nil)
		if notFound(err) {
			gone = true
			return nil
		}
		if err != nil {
			return err
		}
		_ = json.Unmarshal(resp.Body, &before)
		if !c.events.IsEventsURL(before.URL) {
			return nil
		}
		_, err = c.gr.Do(ctx, ga, token, http.MethodDelete, "/accounts/callbacks", nil, nil)
		return err
	}
	var err error
	if conn.Status == models.StatusDisconnected {
		err = c.withKeptToken(ctx, conn, call)
	} else {
		err = c.withToken(ctx, conn, call)
	}
	switch {
	case err != nil:
		return "", c.failure(err)
	case gone:
		return "GetResponse callbacks were already off for this account", nil
	case !c.events.IsEventsURL(before.URL):
		return "GetResponse callbacks left as they are: they go to " + hostOf(before.URL) + ", not to grconnect", nil
	}
	return "GetResponse callbacks removed", nil
}

// withToken runs call with the connection's access token (refreshed when due);
// an answer that the token expired (1014) refreshes once and tries again.
func (c *Callbacks) withToken(ctx context.Context, conn *models.Connection, call func(getresponse.App, string) error) error {
	grant, err := c.tokens.AccessToken(ctx, conn.ID, "system")
	if err != nil {
		return err
	}
	ga, err := c.clientFor(ctx, conn)
	if err != nil {
		return err
	}
	err = call(ga, grant.Token)
	if !errors.Is(err, getresponse.ErrTokenExpired) || grant.Refreshed {
		return err
	}
	if _, err := c.tokens.Refresh(ctx, conn.ID, "system"); err != nil {
		return err
	}
	if grant, err = c.tokens.AccessToken(ctx, conn.ID, "system"); err != nil {
		return err
	}
	return call(ga, grant.Token)
}

// withKeptToken runs call with the access token kept when the connection was
// disconnected (its tokens are erased; there is no refreshing it).
func (c *Callbacks) withKeptToken(ctx context.Context, conn *models.Connection, call func(getresponse.App, string) error) error {
	enc, err := c.store.CallbackAccessToken(ctx, conn.ID)
	if err != nil {
		return err
	}
	if enc == "" {
		return errNoKeptToken
	}
	token, err := c.box.Open(enc, secrets.AAD("connection", conn.ID, "access_token"))
	if err != nil {
		return err
	}
	ga, err := c.clientFor(ctx, conn)
	if err != nil {
		return err
	}
	return call(ga, token)
}

var errNoKeptToken = errors.New("no access token was kept for this disconnected connection")

// clientFor is the app's client for this connection (its X-Domain and X-Parent-Login).
func (c *Callbacks) clientFor(ctx context.Context, conn *models.Connection) (getresponse.App, error) {
	app, err := c.store.AppByID(ctx, conn.AppID)
	if errors.Is(err, models.ErrNotFound) {
		return getresponse.App{}, errAppGone
	}
	if err != nil {
		return getresponse.App{}, err
	}
	return c.apps.ClientFor(app, conn.Identity(), "")
}

var errAppGone = errors.New("the connection's app was deleted")

// failure says who must act on err and whether waiting helps.
func (c *Callbacks) failure(err error) *callbackFailure {
	var refresh *RefreshError
	var ae *getresponse.APIError
	switch {
	case errors.Is(err, errAppGone):
		return &callbackFailure{msg: "the app was deleted, so its connections' callbacks could not be removed; the customer can turn them off in GetResponse", actor: ClassOperator}
	case errors.Is(err, errNoKeptToken):
		return &callbackFailure{msg: "no access token of the connection was left to remove them with; the customer can turn them off in GetResponse", actor: ClassCustomer}
	case errors.Is(err, models.ErrDisconnected), errors.Is(err, models.ErrNotFound):
		return &callbackFailure{msg: "the connection is disconnected", actor: ClassCustomer}
	case errors.As(err, &refresh):
		return &callbackFailure{msg: refresh.Message, actor: refresh.Class, retry: refresh.Class != ClassCustomer, retryWait: refresh.RetryAfter}
	}
	if b, ok := netguard.Blocked(err); ok {
		return &callbackFailure{msg: "grconnect refused to connect: the app's API URL leads to " + b.Public(), actor: ClassOperator}
	}
	if models.StorageProblemOf(err) != "" {
		return &callbackFailure{msg: "grconnect's database: " + models.StorageProblemOf(err).Describe(), actor: ClassWait, retry: true}
	}
	what := "GetResponse answered " + describeGRError(err)
	if errors.As(err, &ae) && ae.Message != "" {
		what += ": " + strings.TrimSuffix(ae.Message, ".")
	}
	switch getresponse.ActorOf(err) {
	case getresponse.ActorCustomer:
		if errors.Is(err, getresponse.ErrTokenExpired) {
			what += " (the connection's access token is no longer valid)"
		}
		return &callbackFailure{msg: what, actor: ClassCustomer}
	case getresponse.ActorOperator, getresponse.ActorCaller:
		return &callbackFailure{msg: what, actor: ClassOperator, retry: getresponse.ActorOf(err) == getresponse.ActorOperator}
	case getresponse.ActorWait:
		wait := time.Duration(0)
		if ae != nil {
			wait = ae.RetryAfter
		}
		return &callbackFailure{msg: what, actor: ClassWait, retry: true, retryWait: wait}
	}
	c.log.Error("GetResponse callback registration failed", "error", err)
	return &callbackFailure{msg: "an unexpected error (logged)", actor: ClassWait, retry: true}
}

// callbackConfig is GetResponse's callback setting (OpenAPI: UpdateCallbacks, Callback).
type callbackConfig struct {
	URL     string          `json:"url"`
	Actions map[string]bool `json:"actions"`
}

// actionSet turns stored actions into GetResponse's object of booleans, naming
// every action (those not chosen false).
func actionSet(actions string) map[string]bool {
	chosen := strings.Split(actions, ",")
	out := make(map[string]bool, len(CallbackActions))
	for _, a := range CallbackActions {
		out[a] = slices.Contains(chosen, a)
	}
	return out
}

// notFound reports a 404 answer (GetResponse: "Callbacks are disabled for the account").
func notFound(err error) bool {
	var ae *getresponse.APIError
	return errors.As(err, &ae) && ae.HTTPStatus == http.StatusNotFound
}

// hostOf names a URL's host only: the rest may hold someone's secret.
func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return "another address"
}
