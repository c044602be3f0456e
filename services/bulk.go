package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

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
	ids, err := b.store.BulkCandidates(ctx, scope, b.tokens.Now(), maxBulk)
	if errors.Is(err, models.ErrNotFound) {
		return nil, FieldErrors{"scope": "Choose failing or expiring connections."}
	}
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, ErrNothingToDo
	}
	job := &models.BulkJob{ID: models.NewID("job"), Scope: scope, Total: len(ids), Status: models.BulkRunning, CreatedBy: actor, CreatedAt: b.tokens.Now()}
	ctx = auditing(ctx, models.AuditBulkStarted, TargetBulkJob, job.ID, fmt.Sprintf("Refresh of %d connections (%s) started", len(ids), scope))
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

// Get returns a job's progress, or models.ErrNotFound.
func (b *Bulk) Get(ctx context.Context, id string) (*models.BulkJob, error) {
	j, err := b.store.BulkJobByID(ctx, id)
	return j, err
}

// Wait blocks until every started job has finished (tests, shutdown).
func (b *Bulk) Wait() { b.wg.Wait() }
