package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Bulk job states and scopes.
const (
	BulkRunning  = "running"
	BulkFinished = "finished"
	// ScopeFailing is every connection whose refresh fails for now (refresh_failing,
	// its app healthy): the ones the overview counts as "Refresh failing".
	ScopeFailing = "failing"
	// ScopeExpiring is every active connection of a healthy app whose token
	// expires soon (see services.Bulk.ExpiringWindow).
	ScopeExpiring = "expiring"
)

// BulkJob is a background "refresh all …" started from the dashboard, with its progress.
type BulkJob struct {
	ID         string `gorm:"primaryKey"`
	Scope      string
	Total      int
	Done       int
	Failed     int
	Status     string
	CreatedBy  string
	CreatedAt  time.Time
	FinishedAt *time.Time
}

// BulkCandidates returns the IDs of the connections a bulk scope covers, soonest
// expiry first, at most limit. The expiring scope takes active connections whose
// token expires before now+window.
func (s *Store) BulkCandidates(ctx context.Context, scope string, now time.Time, window time.Duration, limit int) ([]string, error) {
	q, err := s.bulkScope(ctx, scope, now, window)
	if err != nil {
		return nil, err
	}
	var ids []string
	return ids, storeError(q.Order("expires_at, id").Limit(limit).Pluck("id", &ids).Error, "list the connections of bulk scope %s", scope)
}

// CountBulkCandidates counts the connections a bulk scope covers now.
func (s *Store) CountBulkCandidates(ctx context.Context, scope string, now time.Time, window time.Duration) (int64, error) {
	q, err := s.bulkScope(ctx, scope, now, window)
	if err != nil {
		return 0, err
	}
	var n int64
	return n, storeError(q.Count(&n).Error, "count the connections of bulk scope %s", scope)
}

func (s *Store) bulkScope(ctx context.Context, scope string, now time.Time, window time.Duration) (*gorm.DB, error) {
	q := s.db.WithContext(ctx).Model(&Connection{})
	// Only states a refresh can fix: not needs_reconnect (only the customer can),
	// nor connections paused by their app (its probe decides).
	q = q.Where("app_id NOT IN (" + unhealthyAppIDs + ")")
	switch scope {
	case ScopeFailing:
		return q.Where("status = ?", StatusRefreshFailing), nil
	case ScopeExpiring:
		return q.Where("status = ? AND expires_at < ?", StatusActive, now.Add(window)), nil
	}
	return nil, ErrNotFound
}

// CreateBulkJob stores a new running job.
func (s *Store) CreateBulkJob(ctx context.Context, j *BulkJob) error {
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) { return true, tx.Create(j).Error })
	return storeError(err, "create bulk job %s", j.ID)
}

// BulkJobByID returns one job.
func (s *Store) BulkJobByID(ctx context.Context, id string) (*BulkJob, error) {
	var j BulkJob
	err := s.db.WithContext(ctx).Where("id = ?", id).First(&j).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch bulk job %s", id)
	}
	return &j, nil
}

// AdvanceBulkJob counts one finished item of a job.
func (s *Store) AdvanceBulkJob(ctx context.Context, id string, failed bool) error {
	updates := map[string]any{"done": gorm.Expr("done + 1")}
	if failed {
		updates["failed"] = gorm.Expr("failed + 1")
	}
	err := s.db.WithContext(ctx).Model(&BulkJob{}).Where("id = ?", id).Updates(updates).Error
	return storeError(err, "advance bulk job %s", id)
}

// FinishBulkJob marks a job finished.
func (s *Store) FinishBulkJob(ctx context.Context, id string, at time.Time) error {
	err := s.db.WithContext(ctx).Model(&BulkJob{}).Where("id = ?", id).
		Updates(map[string]any{"status": BulkFinished, "finished_at": at}).Error
	return storeError(err, "finish bulk job %s", id)
}
