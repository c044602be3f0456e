package services

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/grconnect/grconnect/models"
)

// Who started a refresh decides what may hold it back (refreshRules.automatic). An
// explicit request — an operator's Refresh now (and a test call's retry, and a bulk
// refresh), the API's POST …/refresh — always asks GetResponse and answers with
// what GetResponse said: concurrent ones for a connection share one call, and one
// for a connection of a paused app is that app's probe. Only the explicit limit
// refuses one (a backend looping on refresh), as a TooSoonError. What grconnect
// starts by itself — a token request inside the margin, a proxied call's 1014, a
// nudge, the refresher — passes the gate of automatic refreshes (engine_gate.go),
// the cooldown and the app's pause.

// The explicit limit: at most explicitLimit token calls started by explicit
// requests per connection within explicitWindow, in each process. Requests that
// share a call count once.
const (
	explicitLimit  = 5
	explicitWindow = time.Minute
)

// TooSoonError refuses an explicit refresh without asking GetResponse: the
// connection's explicit limit is spent, GetResponse asked to leave the account
// alone for a while, or a refresh's new pair still waits to be stored. The API
// answers it with 429 refresh_too_soon and Retry-After.
type TooSoonError struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *TooSoonError) Error() string {
	return fmt.Sprintf("not refreshed: %s; try again in %d s", e.Reason, max(1, int((e.RetryAfter+time.Second-1)/time.Second)))
}

// explicitCalls remembers, per connection, when explicit requests started token calls.
type explicitCalls struct {
	mu   sync.Mutex
	byID map[string][]time.Time
}

// take counts one call for id at now, or refuses it with the wait until the
// oldest call in the window leaves it.
func (e *explicitCalls) take(id string, now time.Time) (wait time.Duration, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byID == nil || len(e.byID) > 10_000 {
		e.prune(now)
	}
	recent := e.byID[id][:0]
	for _, at := range e.byID[id] {
		if now.Sub(at) < explicitWindow {
			recent = append(recent, at)
		}
	}
	if len(recent) >= explicitLimit {
		e.byID[id] = recent
		return recent[0].Add(explicitWindow).Sub(now), false
	}
	e.byID[id] = append(recent, now)
	return 0, true
}

// prune forgets connections with no call in the window; e.mu must be held.
func (e *explicitCalls) prune(now time.Time) {
	kept := map[string][]time.Time{}
	for id, calls := range e.byID {
		if len(calls) > 0 && now.Sub(calls[len(calls)-1]) < explicitWindow {
			kept[id] = calls
		}
	}
	e.byID = kept
}

// Refresh refreshes a connection's tokens now, whatever its state: an explicit
// request (actor is who asked: an operator's e-mail, "api", "system"). It always
// asks GetResponse and returns what GetResponse answered — never the connection
// as it was without a call. Concurrent requests for a connection share one call.
// For a connection whose app is unhealthy it is the app's probe: its success
// makes the app healthy, its failure names the cause. Errors: models.ErrNotFound,
// models.ErrDisconnected, a *TooSoonError (the explicit limit), a *RefreshError.
func (t *Tokens) Refresh(ctx context.Context, id, actor string) (*models.Connection, error) {
	conn, err := t.refreshExplicit(ctx, id, actor)
	t.auditRefresh(ctx, id, conn, err)
	return conn, err
}

func (t *Tokens) refreshExplicit(ctx context.Context, id, actor string) (*models.Connection, error) {
	conn, err := t.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if conn.Status == models.StatusDisconnected {
		return nil, models.ErrDisconnected
	}
	if app, err := t.App(ctx, conn.AppID); err == nil && !app.Health.Healthy() {
		return t.probe(ctx, app, conn, actor)
	}
	return t.explicitCall(ctx, conn, actor)
}

// probeOutcome is an app probe's result and the connection it refreshed.
type probeOutcome struct {
	id   string
	conn *models.Connection
}

// probe runs an explicit refresh of conn, of the unhealthy app, as the app's
// probe: one at a time per app in this process. A request that arrives while
// another connection's refresh probes the app waits for it: if the app works
// again it refreshes its own connection; if the app (or GetResponse) still fails,
// that answer is its own; if the probe failed for its connection's own reason
// (a dead refresh token), this one asks for itself.
func (t *Tokens) probe(ctx context.Context, app *models.App, conn *models.Connection, actor string) (*models.Connection, error) {
	led := false
	v, err, _ := t.flight.Do("probe\x00"+app.ID, func() (any, error) {
		led = true
		c, err := t.explicitCall(ctx, conn, actor)
		return probeOutcome{id: conn.ID, conn: c}, err
	})
	out, _ := v.(probeOutcome)
	var rerr *RefreshError
	if errors.As(err, &rerr) && rerr.App == nil && rerr.Class == ClassWait && app.Health == models.AppRefused {
		// GetResponse still refuses the app's calls: the app is the cause to name.
		named := *rerr
		named.App, named.AppHealth = app, app.Health
		err = &named
		rerr = &named
	}
	if led || out.id == conn.ID {
		return out.conn, err
	}
	if err == nil || rerr == nil || (rerr.App == nil && rerr.Class != ClassWait) {
		return t.explicitCall(ctx, conn, actor)
	}
	if rerr.App != nil {
		return nil, err
	}
	return nil, &RefreshError{Class: ClassWait, RetryAfter: rerr.RetryAfter, NextAttemptAt: rerr.NextAttemptAt, Err: rerr.Err,
		Message: "GetResponse did not answer the app's probe, a refresh of another of its connections a moment ago (" + describeGRError(rerr.Err) + "); this connection was not refreshed"}
}

// explicitCall makes the token call of an explicit refresh of conn, shared by the
// requests that arrive while it runs. Another worker's refresh in flight is
// waited out, then this one calls GetResponse itself.
func (t *Tokens) explicitCall(ctx context.Context, conn *models.Connection, actor string) (*models.Connection, error) {
	id := conn.ID
	v, err, _ := t.flight.Do("explicit\x00"+id, func() (any, error) {
		now := t.Now()
		if t.pending.get(id) != nil {
			return nil, &TooSoonError{RetryAfter: 10 * time.Second,
				Reason: "the token pair GetResponse sent at the last refresh still waits for the database, and another refresh would replace it"}
		}
		if app, err := t.App(ctx, conn.AppID); err == nil {
			if until, blocked := t.accountBlocked(app.APIURL, conn.MaxDomain, conn.AccountID, now); blocked {
				return nil, &TooSoonError{RetryAfter: until.Sub(now), Reason: "GetResponse asked to leave this account alone until its rate limit resets"}
			}
		}
		if wait, ok := t.explicit.take(id, now); !ok {
			return nil, &TooSoonError{RetryAfter: wait,
				Reason: fmt.Sprintf("this connection was refreshed on request %d times in the last minute", explicitLimit)}
		}
		t.active.Store(id, true)
		defer t.active.Delete(id)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.refreshDeadline())
		defer cancel()
		return t.leasedExplicit(rctx, id, actor)
	})
	if err != nil {
		return nil, err
	}
	return v.(*models.Connection), nil
}

// leasedExplicit takes the connection's lease, waiting while another worker holds
// it, and calls GetResponse under it: another worker's outcome is not this
// request's answer.
func (t *Tokens) leasedExplicit(ctx context.Context, id, actor string) (*models.Connection, error) {
	sleep := leasePoll
	for waited := time.Duration(0); ; waited += sleep {
		conn, err := t.leasedRefresh(ctx, id, actor, nil, refreshRules{})
		if !errors.Is(err, errLeaseBusy) {
			return conn, err
		}
		if waited >= leaseWait {
			return nil, &TooSoonError{RetryAfter: time.Second, Reason: "another refresh of this connection is still running"}
		}
		select {
		case <-ctx.Done():
			return nil, &RefreshError{Message: "gave up waiting for another refresh of this connection", Err: ctx.Err()}
		case <-time.After(sleep):
		}
		sleep = min(sleep*2, maxPollSleep)
	}
}
