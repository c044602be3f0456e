package models

import (
	"context"
	"database/sql"
	"time"

	"gorm.io/gorm"
)

// AcquireLeaseRow takes the refresh lease on a connection for owner until until, if
// nobody holds an unexpired one, and returns the row as it is once leased (nil when
// another worker holds the lease). See AcquireLeases.
func (s *Store) AcquireLeaseRow(ctx context.Context, id, owner string, now, until time.Time) (*Connection, error) {
	rows, err := s.AcquireLeases(ctx, []string{id}, owner, now, until)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &rows[0], nil
}

// AcquireLeases takes, in one statement, the refresh lease on every connection of
// ids that nobody holds, and returns those rows as they are once leased (in no
// particular order). It is one conditional UPDATE … RETURNING, which works the same
// on SQLite and PostgreSQL, so only one worker of any process refreshes a
// connection at a time. Callers take leases right before they call the token
// endpoint: a lease means "a refresh is being sent". A lease that expired
// unreleased therefore marks a refresh whose answer was never stored (a crash), and
// the row's InterruptedBy names its owner (the SET reads the old lease_owner).
//
// A lease that ended before now is taken over; a released one always is. A caller
// that must not take over ended leases yet (see the engine's settling after an
// outage) passes the zero time.
func (s *Store) AcquireLeases(ctx context.Context, ids []string, owner string, now, until time.Time) ([]Connection, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// Plain SQL scanned by hand: the refresher runs this for every refresh, and
	// GORM's reflection would cost more than the UPDATE.
	rows, err := s.db.WithContext(ctx).Raw(`UPDATE connections SET lease_owner = ?, lease_until = ?,
		interrupted_by = CASE WHEN lease_owner <> '' THEN lease_owner ELSE interrupted_by END
		WHERE id IN ? AND status <> ? AND (lease_until IS NULL OR lease_until < ?) RETURNING `+connectionColumns,
		owner, until, ids, StatusDisconnected, now).Rows()
	if err != nil {
		return nil, storeError(err, "lease %d connections", len(ids))
	}
	defer rows.Close()
	var out []Connection
	for rows.Next() {
		c, err := scanConnection(rows)
		if err != nil {
			return nil, storeError(err, "read %d leased connections", len(ids))
		}
		out = append(out, c)
	}
	return out, storeError(rows.Err(), "lease %d connections", len(ids))
}

// connectionColumns are Connection's columns in scanConnection's order.
const connectionColumns = `id, app_id, customer_ref, account_id, account_email, account_name, company_name, status,
	access_token_enc, refresh_token_enc, token_fingerprint, expires_at, last_refresh_at, last_error, failure_count,
	next_attempt_at, lease_owner, lease_until, token_version, interrupted_by, connected_at, disconnected_at,
	created_at, updated_at, max_domain, parent_login`

// scanConnection reads one row of connectionColumns.
func scanConnection(rows *sql.Rows) (Connection, error) {
	var c Connection
	var expires, lastRefresh, next, leaseUntil, disconnected sql.NullTime
	err := rows.Scan(&c.ID, &c.AppID, &c.CustomerRef, &c.AccountID, &c.AccountEmail, &c.AccountName, &c.CompanyName, &c.Status,
		&c.AccessTokenEnc, &c.RefreshTokenEnc, &c.TokenFingerprint, &expires, &lastRefresh, &c.LastError, &c.FailureCount,
		&next, &c.LeaseOwner, &leaseUntil, &c.TokenVersion, &c.InterruptedBy, &c.ConnectedAt, &disconnected,
		&c.CreatedAt, &c.UpdatedAt, &c.MaxDomain, &c.ParentLogin)
	c.ExpiresAt, c.LastRefreshAt, c.NextAttemptAt = nullTime(expires), nullTime(lastRefresh), nullTime(next)
	c.LeaseUntil, c.DisconnectedAt = nullTime(leaseUntil), nullTime(disconnected)
	c.ConnectedAt, c.CreatedAt, c.UpdatedAt = c.ConnectedAt.UTC(), c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

// RenewLease extends owner's lease on a connection until until, and reports
// whether owner still held it (false: released, or taken over by another worker
// after it ended).
func (s *Store) RenewLease(ctx context.Context, id, owner string, until time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Exec("UPDATE connections SET lease_until = ? WHERE id = ? AND lease_owner = ?", until, id, owner)
	if res.Error != nil {
		return false, storeError(res.Error, "renew the lease on connection %s", id)
	}
	return res.RowsAffected == 1, nil
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
	// AppID, when set, asks for that app's connections only, whatever its health (a
	// probe); otherwise connections of unhealthy apps are left out: their refreshes
	// pause until a probe shows the app works again.
	AppID string
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
	free, freeArgs := "(lease_until IS NULL OR lease_until < ?)", []any{q.Now}
	if q.AppID != "" {
		free += " AND app_id = ?"
		freeArgs = append(freeArgs, q.AppID)
	} else {
		free += " AND app_id NOT IN (SELECT id FROM apps WHERE health NOT IN (?, ''))"
		freeArgs = append(freeArgs, AppHealthy)
	}
	err := s.db.WithContext(ctx).Model(&Connection{}).Select("id, expires_at").
		Where("status = ? AND "+free+" AND (expires_at < ? OR expires_at IS NULL OR last_refresh_at < ? OR last_refresh_at IS NULL)",
			append(append([]any{StatusActive}, freeArgs...), q.Now.Add(q.Margin), q.Now.Add(-q.Keepalive))...).
		Order("expires_at, id").Limit(q.Limit).Scan(&active).Error
	if err != nil {
		return nil, storeError(err, "find due active connections")
	}
	err = s.db.WithContext(ctx).Model(&Connection{}).Select("id, expires_at").
		Where("status = ? AND "+free+" AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
			append(append([]any{StatusRefreshFailing}, freeArgs...), q.Now)...).
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

// ExpireOrphanLeases ends, at once, every refresh and webhook lease still held in
// the database. Call it only when no other process can hold one: a SQLite database
// that no other server serves (see LockServing). Their owner
// died without releasing them (SIGKILL, a power cut), so instead of waiting for
// them to expire, the next lease takes them now — a refresh lease's connection is
// then marked interrupted as usual (its owner may have sent the refresh), and a
// webhook delivery is sent again. It returns how many of each it ended (webhooks
// counts every outbox lease: deliveries, the relay of inbound events, callback
// registrations).
func (s *Store) ExpireOrphanLeases(ctx context.Context, now time.Time) (refreshes, webhooks int64, err error) {
	past := now.Add(-time.Second)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec("UPDATE connections SET lease_until = ? WHERE lease_owner <> '' AND lease_until >= ?", past, past)
		if res.Error != nil {
			return res.Error
		}
		refreshes = res.RowsAffected
		res = tx.Exec("UPDATE webhook_deliveries SET lease_until = ? WHERE lease_owner <> '' AND lease_until >= ?", past, past)
		if res.Error != nil {
			return res.Error
		}
		webhooks = res.RowsAffected
		// The relay's and the callback worker's leases are outbox leases too.
		for _, stmt := range []string{
			"UPDATE inbound_events SET relay_until = ? WHERE relay_owner <> '' AND relayed_at IS NULL AND relay_until >= ?",
			"UPDATE connection_callbacks SET lease_until = ? WHERE lease_owner <> '' AND lease_until >= ?",
		} {
			if res = tx.Exec(stmt, past, past); res.Error != nil {
				return res.Error
			}
			webhooks += res.RowsAffected
		}
		return nil
	})
	return refreshes, webhooks, storeError(err, "end the leases of a stopped process")
}
