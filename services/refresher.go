package services

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/grconnect/grconnect/models"
)

// Limiter paces calls to GetResponse's token endpoint (a token bucket).
type Limiter interface {
	Wait(ctx context.Context) error
}

// RefresherConfig tunes the background refresher.
type RefresherConfig struct {
	Interval    time.Duration // how often it wakes (±20 % jitter); default 15 s
	Batch       int           // connections picked per query; default 50
	Concurrency int           // refreshes in flight at once; default 4
	Margin      time.Duration // refresh this long before expiry
	Keepalive   time.Duration // refresh a connection not refreshed for this long anyway
	// Limiter paces token calls; nil means RatePerSecond (default 10/s, burst 1 s worth).
	Limiter       Limiter
	RatePerSecond float64
}

// Refresher keeps connections alive: it wakes periodically, picks the connections due
// for a refresh in small batches ordered by expiry, and refreshes them with bounded
// concurrency under a rate limit. Every replica may run one: leases make each
// refresh happen once.
type Refresher struct {
	tokens *Tokens
	store  *models.Store
	cfg    RefresherConfig
	log    *slog.Logger
}

// NewRefresher returns a refresher over the token engine.
func NewRefresher(tokens *Tokens, store *models.Store, cfg RefresherConfig, log *slog.Logger) *Refresher {
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 50
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Limiter == nil {
		r := cfg.RatePerSecond
		if r <= 0 {
			r = 10
		}
		cfg.Limiter = rate.NewLimiter(rate.Limit(r), max(1, int(r)))
	}
	return &Refresher{tokens: tokens, store: store, cfg: cfg, log: log}
}

// due is the refresher's test, applied again under the lease.
func (r *Refresher) due(c *models.Connection, now time.Time) bool {
	switch c.Status {
	case models.StatusActive:
		return c.ExpiresAt == nil || c.ExpiresAt.Before(now.Add(r.cfg.Margin)) ||
			c.LastRefreshAt == nil || c.LastRefreshAt.Before(now.Add(-r.cfg.Keepalive))
	case models.StatusRefreshFailing:
		return c.NextAttemptAt == nil || !c.NextAttemptAt.After(now)
	}
	return false
}

// Run refreshes due connections until ctx ends. On shutdown it stops picking and
// waits for the refreshes in flight: each either commits or never sent its request.
func (r *Refresher) Run(ctx context.Context) {
	r.log.Info("refresher started", "interval", r.cfg.Interval, "concurrency", r.cfg.Concurrency, "margin", r.cfg.Margin, "keepalive", r.cfg.Keepalive)
	for {
		n, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Error("refresher pass failed", "error", err)
		}
		if ctx.Err() != nil {
			r.log.Info("refresher stopped")
			return
		}
		wait := time.Duration(float64(r.cfg.Interval) * (0.8 + 0.4*rand.Float64()))
		if n >= r.cfg.Batch {
			wait = 0 // a full batch may have left more due connections behind
		}
		select {
		case <-ctx.Done():
			r.log.Info("refresher stopped")
			return
		case <-time.After(wait):
		}
	}
}

// RunOnce picks one batch of due connections and refreshes them, returning how many
// it attempted. It returns when all of them are done.
func (r *Refresher) RunOnce(ctx context.Context) (int, error) {
	ids, err := r.store.DueConnections(ctx, models.DueQuery{Now: r.tokens.Now(), Margin: r.cfg.Margin, Keepalive: r.cfg.Keepalive, Limit: r.cfg.Batch})
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	attempted := 0
	for range min(r.cfg.Concurrency, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				// The limiter is the last chance to stop: past it, the request is sent
				// and the refresh runs to its commit even if shutdown begins.
				if err := r.cfg.Limiter.Wait(ctx); err != nil {
					continue
				}
				mu.Lock()
				attempted++
				mu.Unlock()
				_, err := r.tokens.RefreshIfDue(ctx, id, "system", r.due)
				if err != nil && !errors.Is(err, ErrTransient) && !errors.Is(err, ErrNeedsReconnect) && !errors.Is(err, ErrDisconnected) {
					r.log.Error("refresh", "connection", id, "error", err)
				}
			}
		}()
	}
feed:
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return attempted, nil
}
