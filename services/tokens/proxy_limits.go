package tokens

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/grconnect/grconnect/services/getresponse"
)

// accountLimiter keeps the proxy's per-account courtesy: at most
// MaxInFlightPerAccount calls at once, and none while GetResponse asked to wait.
type accountLimiter struct {
	mu    sync.Mutex
	gates map[string]*accountGate
}

type accountGate struct {
	slots chan struct{}
	// Guarded by accountLimiter.mu:
	users        int // calls holding or waiting for a slot
	blockedUntil time.Time
}

// enter waits up to wait for a slot of key's account.
func (l *accountLimiter) enter(ctx context.Context, key string, now func() time.Time, wait time.Duration) (*accountGate, error) {
	l.mu.Lock()
	g := l.gates[key]
	if g == nil {
		g = &accountGate{slots: make(chan struct{}, MaxInFlightPerAccount)}
		l.gates[key] = g
	}
	if d := g.blockedUntil.Sub(now()); d > 0 {
		l.mu.Unlock()
		return nil, &RateLimitedError{RetryAfter: d}
	}
	g.users++
	l.mu.Unlock()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		l.leaveQueue(key, g, now())
		return nil, &UnavailableError{Err: ctx.Err()}
	case <-timer.C:
		l.leaveQueue(key, g, now())
		return nil, &RateLimitedError{RetryAfter: time.Second, Busy: true}
	}
	// A 429 may have arrived while this call waited.
	l.mu.Lock()
	d := g.blockedUntil.Sub(now())
	l.mu.Unlock()
	if d > 0 {
		l.leave(key, g, now())
		return nil, &RateLimitedError{RetryAfter: d}
	}
	return g, nil
}

// leave frees a slot taken by enter.
func (l *accountLimiter) leave(key string, g *accountGate, now time.Time) {
	<-g.slots
	l.leaveQueue(key, g, now)
}

// leaveQueue forgets a call, and the account when nothing about it is left to remember.
func (l *accountLimiter) leaveQueue(key string, g *accountGate, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	g.users--
	if g.users == 0 && !g.blockedUntil.After(now) {
		delete(l.gates, key)
	}
}

// observe remembers how long GetResponse asked to leave the account alone.
func (l *accountLimiter) observe(g *accountGate, status int, h http.Header, now time.Time) {
	d := getresponse.BackoffAfter(status, h)
	if d <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := now.Add(d); until.After(g.blockedUntil) {
		g.blockedUntil = until
	}
}
