package services

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/grconnect/grconnect/models"
)

// The gate of automatic refreshes. Every refresh grconnect starts by itself passes
// it: the refresher's, a nudge after a token request, the refresh a token about to
// expire waits for, a proxied call's refresh after GetResponse's 1014. An explicit
// request (an operator's or the API's "refresh now", a test call, a bulk job) does
// not: it always asks GetResponse.
//
// The gate is shut while the database refuses writes or a received pair waits to
// be stored: a new refresh would only add a pair that cannot be stored (under
// strict rotation, a customer lost if the process then dies). It paces what it
// lets through at GRCONNECT_REFRESH_RATE, twice: admissions are spread evenly
// before a lease is taken, and right before the call at most that many calls
// leave in any one-second window, so GetResponse never counts more even when a
// write delayed some calls and not others.

// refreshRules say how one refresh runs.
type refreshRules struct {
	// wait: wait for another worker's lease and take its outcome; unset, a held
	// lease ends the refresh at once with errLeaseBusy.
	wait bool
	// automatic: grconnect started it by itself, so it passes the gate, waiting
	// at most turnWait for its turn (0: as long as the refresh may take).
	automatic bool
	turnWait  time.Duration
}

// explicitly is how an operator's or the API's refresh runs: it always asks
// GetResponse, waiting for a refresh in flight elsewhere first.
var explicitly = refreshRules{wait: true}

// Limiter paces refresh admissions (a token bucket).
type Limiter interface {
	Wait(ctx context.Context) error
}

const (
	// gateProbeEvery: while the database is unhealthy, the gate tries a probe
	// write at most this often; callers in between read the last probe's outcome.
	gateProbeEvery = time.Second
	// sendWindow is the gate's "second": a little longer, so that calls delayed
	// unevenly on their way (a busy machine, a slow write before one of them) do
	// not put one call too many into one of GetResponse's seconds.
	sendWindow = time.Second + 100*time.Millisecond
	// admitWait bounds how long a token request waits for its refresh's turn; a
	// still-valid token is handed out instead.
	admitWait = 10 * time.Second
)

// ErrRefreshesPaused matches the error of a refresh the gate held back because the
// database refuses writes or received pairs wait to be stored. It also matches
// models.ErrStorageUnavailable.
var ErrRefreshesPaused = errors.New("automatic refreshes are paused")

// pausedError is a refresh the gate held back.
type pausedError struct{ reason string }

func (e *pausedError) Error() string { return "automatic refreshes are paused: " + e.reason }

// Is matches ErrRefreshesPaused and models.ErrStorageUnavailable.
func (e *pausedError) Is(target error) bool {
	return target == ErrRefreshesPaused || target == models.ErrStorageUnavailable
}

// refreshGate is the gate's state: its pace and the last probe of the database.
type refreshGate struct {
	mu      sync.Mutex
	limiter Limiter
	// perWindow caps the calls in any sendWindow (0: no cap, a test's limiter);
	// sent holds the times of the last perWindow calls, oldest at next.
	perWindow int
	sent      []time.Time
	next      int
	probedAt  time.Time
	probeOK   bool
}

// NewRefreshLimiter returns the gate's pace for perSecond calls a second: one
// admission every sendWindow/perSecond, never two at once.
func NewRefreshLimiter(perSecond float64) Limiter {
	return rate.NewLimiter(rate.Every(time.Duration(float64(sendWindow)/perSecond)), 1)
}

// SetRefreshRate paces automatic refreshes at perSecond (GRCONNECT_REFRESH_RATE):
// at most that many calls (rounded up) in any one second. Call it before the
// background work starts.
func (t *Tokens) SetRefreshRate(perSecond float64) {
	g := &t.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limiter = NewRefreshLimiter(perSecond)
	g.perWindow = int(math.Ceil(perSecond))
	g.sent, g.next = make([]time.Time, g.perWindow), 0
}

// SetRefreshLimiter paces automatic refreshes with l alone, without the cap per
// second (tests count admissions with their own limiter).
func (t *Tokens) SetRefreshLimiter(l Limiter) {
	g := &t.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limiter, g.perWindow, g.sent = l, 0, nil
}

func (g *refreshGate) pace() Limiter {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limiter
}

// RefreshesPaused says why automatic refreshes wait now, or "": a received pair
// waits to be stored, or the database refuses writes. While it refuses them, the
// gate probes it with a tiny write (at most once a second), so it notices the
// recovery on its own; a probe that goes through opens the gate only once the
// store calls the database healthy again (no failure for its hold), so a full
// disk that takes a small write now and then does not let refreshes through.
func (t *Tokens) RefreshesPaused(ctx context.Context) string {
	if t.PendingPairs() > 0 {
		return "token pairs wait to be stored"
	}
	h := t.store.Health()
	if h.OK() {
		return ""
	}
	g := &t.gate
	g.mu.Lock()
	if time.Since(g.probedAt) < gateProbeEvery {
		ok := g.probeOK
		g.mu.Unlock()
		if ok {
			return ""
		}
		return h.Problem.Describe()
	}
	g.probedAt = time.Now()
	g.mu.Unlock()
	ok := t.store.ProbeWrite(ctx) == nil && t.store.Health().OK()
	g.mu.Lock()
	g.probeOK = ok
	g.mu.Unlock()
	if ok {
		return ""
	}
	return h.Problem.Describe()
}

// gateShut is the gate's cheap check between admissions (no probe).
func (t *Tokens) gateShut() bool {
	return t.PendingPairs() > 0 || !t.store.Health().OK()
}

// admit lets one automatic refresh through the gate: it fails at once when the
// gate is shut, else waits for the refresh's turn (at most maxWait, when set) and
// checks the gate again.
func (t *Tokens) admit(ctx context.Context, maxWait time.Duration) error {
	if why := t.RefreshesPaused(ctx); why != "" {
		return &pausedError{reason: why}
	}
	if maxWait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxWait)
		defer cancel()
	}
	if err := t.gate.pace().Wait(ctx); err != nil {
		return &RefreshError{Class: ClassWait, Message: "automatic refreshes are paced (GRCONNECT_REFRESH_RATE) and this one's turn did not come in time; try again shortly",
			RetryAfter: time.Second, Err: err}
	}
	if t.gateShut() {
		return &pausedError{reason: "the database stopped taking writes"}
	}
	return nil
}

// allowNow lets one more refresh through at once if the pace has room (the
// refresher groups such refreshes into one lease statement).
func (t *Tokens) allowNow() bool {
	if a, ok := t.gate.pace().(interface{ Allow() bool }); ok {
		return a.Allow()
	}
	return false
}

// sendTurn waits, right before an admitted refresh's call, until fewer than the
// rate's calls left in the last sendWindow, and records this one.
func (t *Tokens) sendTurn(ctx context.Context) error {
	g := &t.gate
	for {
		g.mu.Lock()
		if g.perWindow == 0 {
			g.mu.Unlock()
			return nil
		}
		now := time.Now()
		oldest := g.sent[g.next]
		wait := sendWindow - now.Sub(oldest)
		if oldest.IsZero() || wait <= 0 {
			g.sent[g.next] = now
			g.next = (g.next + 1) % g.perWindow
			g.mu.Unlock()
			return nil
		}
		g.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
