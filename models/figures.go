package models

import (
	"context"
	"time"
)

// AppHealths lists every app health state, for the metrics' state sets.
var AppHealths = []AppHealth{AppHealthy, AppCredentialsRejected, AppMisconfigured, AppRefused}

// OutboxFigures is the webhook outbox at one moment.
type OutboxFigures struct {
	Pending int64
	// Oldest is when the oldest pending delivery was queued (nil: none pending).
	Oldest *time.Time
}

// OutboxTotals counts the webhook deliveries still to be sent and finds the oldest
// (the metrics read it in the background).
func (s *Store) OutboxTotals(ctx context.Context) (OutboxFigures, error) {
	var f OutboxFigures
	db := s.db.WithContext(ctx)
	if err := db.Raw("SELECT COUNT(*) FROM webhook_deliveries WHERE status = ?", DeliveryPending).Scan(&f.Pending).Error; err != nil {
		return f, storeError(err, "count pending webhook deliveries")
	}
	if f.Pending == 0 {
		return f, nil
	}
	// A plain column, not MIN(): SQLite keeps an aggregate's time as text.
	var oldest []struct{ At time.Time }
	if err := db.Raw("SELECT created_at AS at FROM webhook_deliveries WHERE status = ? ORDER BY id LIMIT 1", DeliveryPending).Scan(&oldest).Error; err != nil {
		return f, storeError(err, "find the oldest pending webhook delivery")
	}
	if len(oldest) == 1 {
		f.Oldest = &oldest[0].At
	}
	return f, nil
}

// BacklogFigures is how far the refresher is behind.
type BacklogFigures struct {
	// Overdue counts the connections due for longer than the grace and not
	// refreshed: active ones whose token entered the margin, failing ones whose
	// backoff ended. Connections of paused (unhealthy) apps and connections being
	// refreshed right now (a live lease) are left out.
	Overdue int64
	// Since is when the longest-waiting of them became due (nil: none).
	Since *time.Time
}

// RefreshBacklog counts the overdue connections at now, for a refresher using
// margin, that have been due for longer than grace. Both parts read the
// (status, expires_at) index, so the count costs what the backlog holds, not what
// the table holds.
func (s *Store) RefreshBacklog(ctx context.Context, now time.Time, margin, grace time.Duration) (BacklogFigures, error) {
	var b BacklogFigures
	paused := "app_id NOT IN (SELECT id FROM apps WHERE health NOT IN ('" + string(AppHealthy) + "', ''))"
	free := "(lease_until IS NULL OR lease_until < ?)"
	db := s.db.WithContext(ctx)
	expiring := now.Add(margin - grace)
	var active, failing, unset int64
	// Two counts, each one index range: an OR of the two made SQLite read every active row.
	err := db.Raw("SELECT COUNT(*) FROM connections WHERE status = ? AND expires_at < ? AND "+paused+" AND "+free,
		StatusActive, expiring, now).Scan(&active).Error
	if err == nil {
		err = db.Raw("SELECT COUNT(*) FROM connections WHERE status = ? AND expires_at IS NULL AND "+paused+" AND "+free,
			StatusActive, now).Scan(&unset).Error
	}
	if err != nil {
		return b, storeError(err, "count overdue active connections")
	}
	active += unset
	waited := now.Add(-grace)
	err = db.Raw("SELECT COUNT(*) FROM connections WHERE status = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?) AND "+paused+" AND "+free,
		StatusRefreshFailing, waited, now).Scan(&failing).Error
	if err != nil {
		return b, storeError(err, "count overdue failing connections")
	}
	b.Overdue = active + failing
	if active > 0 {
		var exp []struct{ At *time.Time }
		err := db.Raw("SELECT expires_at AS at FROM connections WHERE status = ? AND expires_at < ? AND "+free+" AND "+paused+
			" ORDER BY expires_at LIMIT 1", StatusActive, expiring, now).Scan(&exp).Error
		if err != nil {
			return b, storeError(err, "find the longest overdue connection")
		}
		if len(exp) == 1 && exp[0].At != nil {
			since := exp[0].At.Add(-margin)
			b.Since = &since
		}
	}
	if failing > 0 {
		var next []struct{ At *time.Time }
		err := db.Raw("SELECT next_attempt_at AS at FROM connections WHERE status = ? AND next_attempt_at <= ? AND "+free+" AND "+paused+
			" ORDER BY next_attempt_at LIMIT 1", StatusRefreshFailing, waited, now).Scan(&next).Error
		if err != nil {
			return b, storeError(err, "find the longest overdue failing connection")
		}
		if len(next) == 1 && next[0].At != nil && (b.Since == nil || next[0].At.Before(*b.Since)) {
			b.Since = next[0].At
		}
	}
	return b, nil
}

// AppState is an app's health, for the metrics.
type AppState struct {
	ID     string
	Name   string
	Health AppHealth
}

// AppStates returns every live app's health.
func (s *Store) AppStates(ctx context.Context) ([]AppState, error) {
	var out []AppState
	err := s.db.WithContext(ctx).Raw("SELECT id, name, health FROM apps WHERE deleted_at IS NULL ORDER BY id").Scan(&out).Error
	return out, storeError(err, "read the apps' health")
}

// SetupFacts are what the overview's first-run checklist ticks from.
type SetupFacts struct {
	// APIKeys says an API key that works exists; Links that a connect link was
	// ever made.
	APIKeys, Links bool
}

// SetupFacts reads the first-run checklist's facts (two index probes).
func (s *Store) SetupFacts(ctx context.Context) (SetupFacts, error) {
	var f SetupFacts
	var keys, links []int
	db := s.db.WithContext(ctx)
	if err := db.Raw("SELECT 1 FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) LIMIT 1", Now()).Scan(&keys).Error; err != nil {
		return f, storeError(err, "look for an API key")
	}
	if err := db.Raw("SELECT 1 FROM connect_links LIMIT 1").Scan(&links).Error; err != nil {
		return f, storeError(err, "look for a connect link")
	}
	return SetupFacts{APIKeys: len(keys) > 0, Links: len(links) > 0}, nil
}
