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
		return nil, storeError(res.Error, "lease connection %s", id)
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
	// Plain SQL: GORM's Updates would also rewrite updated_at and build the statement
	// by reflection, for every row of the batch.
	err := s.db.WithContext(ctx).Raw(`UPDATE connections SET lease_owner = ?, lease_until = ?
		WHERE id IN ? AND status <> ? AND (lease_until IS NULL OR lease_until < ?) RETURNING *`,
		owner, until, ids, StatusDisconnected, now).Scan(&rows).Error
	return rows, storeError(err, "lease %d connections", len(ids))
}

// ReleaseLease gives up owner's lease without writing a refresh outcome.
func (s *Store) ReleaseLease(ctx context.Context, id, owner string) error {
	err := s.db.WithContext(ctx).Model(&Connection{}).Where("id = ? AND lease_owner = ?", id, owner).
		Updates(map[string]any{"lease_owner": "", "lease_until": nil}).Error
	return storeError(err, "release the lease on connection %s", id)
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
//
// It asks once per state, so each query walks the (status, expires_at) index in
// order and stops at the limit; one query with an OR of both states made SQLite
// sort every candidate first.
func (s *Store) DueConnections(ctx context.Context, q DueQuery) ([]string, error) {
	type due struct {
		ID        string
		ExpiresAt *time.Time
	}
	var active, failing []due
	free := "(lease_until IS NULL OR lease_until < ?)"
	err := s.db.WithContext(ctx).Model(&Connection{}).Select("id, expires_at").
		Where("status = ? AND "+free+" AND (expires_at < ? OR expires_at IS NULL OR last_refresh_at < ? OR last_refresh_at IS NULL)",
			StatusActive, q.Now, q.Now.Add(q.Margin), q.Now.Add(-q.Keepalive)).
		Order("expires_at, id").Limit(q.Limit).Scan(&active).Error
	if err != nil {
		return nil, storeError(err, "find due active connections")
	}
	err = s.db.WithContext(ctx).Model(&Connection{}).Select("id, expires_at").
		Where("status = ? AND "+free+" AND (next_attempt_at IS NULL OR next_attempt_at <= ?)", StatusRefreshFailing, q.Now, q.Now).
		Order("expires_at, id").Limit(q.Limit).Scan(&failing).Error
	if err != nil {
		return nil, storeError(err, "find due failing connections")
	}
	// Merge the two ordered lists, soonest expiry first.
	at := func(d due) time.Time {
		if d.ExpiresAt == nil {
			return time.Time{}
		}
		return *d.ExpiresAt
	}
	ids := make([]string, 0, min(q.Limit, len(active)+len(failing)))
	for len(ids) < q.Limit && (len(active) > 0 || len(failing) > 0) {
		if len(failing) == 0 || (len(active) > 0 && !at(failing[0]).Before(at(active[0]))) {
			ids, active = append(ids, active[0].ID), active[1:]
		} else {
			ids, failing = append(ids, failing[0].ID), failing[1:]
		}
	}
	return ids, nil
}
