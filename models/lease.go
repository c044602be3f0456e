package models

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// AcquireLeaseRow takes the refresh lease on a connection for owner until until, if
// nobody holds an unexpired one, and returns the row as it is once leased (nil when
// another worker holds the lease). It is one conditional UPDATE … RETURNING, which
// works the same on SQLite and PostgreSQL, so only one worker of any process
// refreshes a connection at a time.
func (s *Store) AcquireLeaseRow(ctx context.Context, id, owner string, now, until time.Time) (*Connection, error) {
	var rows []Connection
	res := s.db.WithContext(ctx).Model(&rows).Clauses(clause.Returning{}).
		Where("id = ? AND status <> ? AND (lease_until IS NULL OR lease_until < ?)", id, StatusDisconnected, now).
		Updates(map[string]any{"lease_owner": owner, "lease_until": until})
	if res.Error != nil || len(rows) == 0 {
		return nil, res.Error
	}
	return &rows[0], nil
}

// AcquireLeases leases, in one statement, every connection of ids that nobody
// holds, and returns those rows as they are once leased (in no particular order).
// The refresher takes a whole batch this way instead of one lease per connection.
func (s *Store) AcquireLeases(ctx context.Context, ids []string, owner string, now, until time.Time) ([]Connection, error) {
	var rows []Connection
	if len(ids) == 0 {
		return nil, nil
	}
	err := s.db.WithContext(ctx).Model(&rows).Clauses(clause.Returning{}).
		Where("id IN ? AND status <> ? AND (lease_until IS NULL OR lease_until < ?)", ids, StatusDisconnected, now).
		Updates(map[string]any{"lease_owner": owner, "lease_until": until}).Error
	return rows, err
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
