package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/grconnect/grconnect/models"
)

// maxBulk caps one bulk job; a larger backlog is the refresher's work anyway.
const maxBulk = 10_000

// Bulk runs dashboard "refresh all failing / expiring" jobs in the background,
// recording progress in the database so any page (or replica) can show it.
type Bulk struct {
	tokens  *Tokens
	store   *models.Store
	limiter Limiter
	log     *slog.Logger
	ctx     context.Context // the server's lifetime: jobs stop with it
	wg      sync.WaitGroup
}

// NewBulk returns the bulk runner; jobs run until ctx ends, paced at ratePerSecond.
func NewBulk(ctx context.Context, tokens *Tokens, store *models.Store, ratePerSecond float64, log *slog.Logger) *Bulk {
	if ratePerSecond <= 0 {
		ratePerSecond = 10
	}
	return &Bulk{tokens: tokens, store: store, limiter: rate.NewLimiter(rate.Limit(ratePerSecond), max(1, int(ratePerSecond))), log: log, ctx: ctx}
}

// ErrNothingToDo is returned when a bulk scope covers no connection.
var ErrNothingToDo = errors.New("no connection matches")

// Start begins a job over scope (models.ScopeFailing or models.ScopeExpiring) and
// returns it at once; the refreshes run in the background.
func (b *Bulk) Start(ctx context.Context, scope, actor string) (*models.BulkJob, error) {
	window, err := b.ExpiringWindow(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := b.store.BulkCandidates(ctx, scope, b.tokens.Now(), window, maxBulk)
	if errors.Is(err, models.ErrNotFound) {
		return nil, models.FieldErrors{"scope": "Choose failing or expiring connections."}
	}
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, ErrNothingToDo
	}
	job := &models.BulkJob{ID: models.NewID("job"), Scope: scope, Total: len(ids), Status: models.BulkRunning, CreatedBy: actor, CreatedAt: b.tokens.Now()}
	ctx = models.Auditing(ctx, models.AuditBulkStarted, models.AuditTargetBulkJob, job.ID, fmt.Sprintf("Refresh of %d connections (%s) started", len(ids), scope))
	if err := b.store.CreateBulkJob(ctx, job); err != nil {
		return nil, err
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.run(job.ID, ids, actor)
	}()
	return job, nil
}

func (b *Bulk) run(jobID string, ids []string, actor string) {
	ctx := b.ctx
	work := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for id := range work {
				if err := b.limiter.Wait(ctx); err != nil {
					continue // shutting down: not started, not counted
				}
				_, err := b.tokens.Refresh(ctx, id, actor)
				if aerr := b.store.AdvanceBulkJob(context.WithoutCancel(ctx), jobID, err != nil); aerr != nil {
					b.log.Error("bulk job progress", "job", jobID, "error", aerr)
				}
			}
		})
	}
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if err := b.store.FinishBulkJob(context.WithoutCancel(ctx), jobID, b.tokens.Now()); err != nil {
		b.log.Error("finish bulk job", "job", jobID, "error", err)
	}
}

// ExpiringWindow is how soon a token must expire for "refresh all expiring" to
// take it: within the hour, or within a quarter of the tokens' lifetime when
// tokens live less than four hours (with hour-long tokens, "within the hour" would
// be every connection).
func (b *Bulk) ExpiringWindow(ctx context.Context) (time.Duration, error) {
	h, err := b.store.TokenHorizon(ctx)
	if err != nil {
		return 0, err
	}
	return expiringWindow(h.Lifetime), nil
}

func expiringWindow(lifetime time.Duration) time.Duration {
	if lifetime <= 0 || lifetime >= 4*time.Hour {
		return time.Hour
	}
	return max(time.Minute, (lifetime / 4).Round(time.Minute))
}

// BulkPreview is what each bulk scope would refresh now.
type BulkPreview struct {
	Failing, Expiring int64
	// Window is the expiring scope's reach (see ExpiringWindow).
	Window time.Duration
}

// Preview counts the connections each bulk scope covers now, so the dashboard
// offers only refreshes that have something to do.
func (b *Bulk) Preview(ctx context.Context) (BulkPreview, error) {
	var p BulkPreview
	var err error
	if p.Window, err = b.ExpiringWindow(ctx); err != nil {
		return p, err
	}
	now := b.tokens.Now()
	if p.Failing, err = b.store.CountBulkCandidates(ctx, models.ScopeFailing, now, p.Window); err != nil {
		return p, err
	}
	p.Expiring, err = b.store.CountBulkCandidates(ctx, models.ScopeExpiring, now, p.Window)
	return p, err
}

// Get returns a job's progress, or models.ErrNotFound.
func (b *Bulk) Get(ctx context.Context, id string) (*models.BulkJob, error) {
	j, err := b.store.BulkJobByID(ctx, id)
	return j, err
}

// Wait blocks until every started job has finished (tests, shutdown).
func (b *Bulk) Wait() { b.wg.Wait() }
