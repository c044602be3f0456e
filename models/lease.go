package models

import (
	"context"
	"time"
)

// AcquireLease takes the refresh lease on a connection for owner until until, if
// nobody holds an unexpired one. It is one conditional UPDATE, which works the same
// on SQLite and PostgreSQL, so only one worker of any process refreshes at a time.
func (s *Store) AcquireLease(ctx context.Context, id, owner string, now, until time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Model(&Connection{}).
		Where("id = ? AND status <> ? AND (lease_until IS NULL OR lease_until < ?)", id, StatusDisconnected, now).
		Updates(map[string]any{"lease_owner": owner, "lease_until": until})
	return res.RowsAffected == 1, res.Error
}

// ReleaseLease gives up owner's lease without writing a refresh outcome.
func (s *Store) ReleaseLease(ctx context.Context, id, owner string) error {
	return s.db.WithContext(ctx).Model(&Connection{}).Where("id = ? AND lease_owner = ?", id, owner).
		Updates(map[string]any{"lease_owner": "", "lease_until": nil}).Error
}

// DueQuery says which connections the refresher should pick.
type DueQuery struct {
	Now       time.Time
	Margin    time.Duration // access tokens expiring within this are due
	Keepalive time.Duration // connections not refreshed for this long are due
	Limit     int
}

// DueConnections returns the IDs of connections due for an automatic refresh,
// soonest expiry first: active ones inside the margin or past the keep-alive, and
// failing ones whose backoff window has passed. needs_reconnect and disconnected
// connections are never picked, nor ones another worker holds a lease on.
func (s *Store) DueConnections(ctx context.Context, q DueQuery) ([]string, error) {
	var ids []string
	err := s.db.WithContext(ctx).Model(&Connection{}).
		Where("(lease_until IS NULL OR lease_until < ?)", q.Now).
		Where("((status = ? AND (expires_at < ? OR last_refresh_at < ? OR last_refresh_at IS NULL)) OR (status = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)))",
			StatusActive, q.Now.Add(q.Margin), q.Now.Add(-q.Keepalive), StatusRefreshFailing, q.Now).
		Order("expires_at, id").Limit(q.Limit).Pluck("id", &ids).Error
	return ids, err
}
