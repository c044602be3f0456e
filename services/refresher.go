package services

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
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

// Run refreshes due connections until ctx ends. On shutdown it stops picking and
// waits for the refreshes in flight: each either commits or never sent its request.
func (r *Refresher) Run(ctx context.Context) {
	policy := r.tokens.Policy()
	r.log.Info("refresher started", "interval", r.cfg.Interval, "concurrency", r.cfg.Concurrency, "margin", policy.Margin, "keepalive", policy.Keepalive)
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

// RunOnce picks one batch of due connections, leases them all in one statement,
// and refreshes them, returning how many it attempted. It returns when all of
// them are done; leases it did not use are released.
func (r *Refresher) RunOnce(ctx context.Context) (int, error) {
	now := r.tokens.Now()
	policy := r.tokens.Policy()
	ids, err := r.store.DueConnections(ctx, policy.Query(now, r.cfg.Batch))
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	// The batch's leases must outlive its processing at the configured pace.
	rate := r.cfg.RatePerSecond
	if rate <= 0 {
		rate = 10
	}
	owner := r.tokens.LeaseOwner()
	until := now.Add(leaseTTL + time.Duration(float64(len(ids))/rate*float64(time.Second)))
	rows, err := r.store.AcquireLeases(ctx, ids, owner, now, until)
	if err != nil {
		return 0, err
	}
	expiry := func(c models.Connection) time.Time {
		if c.ExpiresAt == nil {
			return time.Time{}
		}
		return *c.ExpiresAt
	}
	sort.Slice(rows, func(i, j int) bool { return expiry(rows[i]).Before(expiry(rows[j])) })
	// Workers call GetResponse; one committer writes their outcomes, as many as have
	// piled up per transaction (a group commit: SQLite has one writer anyway).
	outcomes := make(chan models.RefreshOutcome, 2*r.cfg.Concurrency)
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		r.commit(ctx, outcomes)
	}()
	work := make(chan *models.Connection)
	var wg sync.WaitGroup
	var attempted atomic.Int64
	for range min(r.cfg.Concurrency, len(rows)) {
		wg.Go(func() {
			for conn := range work {
				// The limiter is the last chance to stop: past it, the request is sent
				// and the refresh runs to its commit even if shutdown begins.
				if err := r.cfg.Limiter.Wait(ctx); err != nil || !policy.Background(conn, r.tokens.Now()) {
					r.release(ctx, conn.ID, owner)
					continue
				}
				attempted.Add(1)
				// Past the limiter the refresh is sent, so it runs to its commit even if
				// shutdown begins meanwhile.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshDeadline)
				out, _, err := r.tokens.PrepareLeased(rctx, conn, owner, "system")
				cancel()
				if err != nil {
					r.log.Error("refresh", "connection", conn.ID, "error", err)
					continue // the lease expires; the connection is retried then
				}
				outcomes <- out
			}
		})
	}
	for i := range rows {
		select {
		case work <- &rows[i]:
		case <-ctx.Done():
			r.release(ctx, rows[i].ID, owner) // never handed to a worker
		}
	}
	close(work)
	wg.Wait()
	close(outcomes)
	<-committed
	return int(attempted.Load()), nil
}

// maxGroupCommit caps how many refresh outcomes share one transaction.
const maxGroupCommit = 256

// commit writes outcomes in groups until the channel closes: each transaction takes
// what is waiting, so a group never waits for more.
func (r *Refresher) commit(ctx context.Context, outcomes <-chan models.RefreshOutcome) {
	ctx = context.WithoutCancel(ctx) // outcomes of sent requests are always committed
	for first := range outcomes {
		group := []models.RefreshOutcome{first}
	more:
		for len(group) < maxGroupCommit {
			select {
			case o, ok := <-outcomes:
				if !ok {
					break more
				}
				group = append(group, o)
			default:
				break more
			}
		}
		_, errs, err := r.store.SaveRefreshes(ctx, group)
		if err != nil {
			// The group's leases expire and its connections are retried; GetResponse's
			// answers are lost, which is what a crash here would do too.
			r.log.Error("commit refreshes", "count", len(group), "error", err)
			continue
		}
		for i, e := range errs {
			if e != nil && !errors.Is(e, models.ErrDisconnected) {
				r.log.Warn("refresh not saved", "connection", group[i].Prev.ID, "error", e)
			}
		}
	}
}

func (r *Refresher) release(ctx context.Context, id, owner string) {
	if err := r.tokens.ReleaseLease(ctx, id, owner); err != nil {
		r.log.Error("release lease", "connection", id, "error", err)
	}
}
