package models

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
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
// Each way of being due is its own query on its own index ((status, expires_at),
// (status, last_refresh_at), (status, next_attempt_at)), which reads only the due
// rows and stops at the limit: a million connections of which none is due cost a
// few index steps. One query with an OR of them would walk every active row.
func (s *Store) DueConnections(ctx context.Context, q DueQuery) ([]string, error) {
	type due struct {
		ID        string
		ExpiresAt *time.Time
	}
	// The app's health is read from the index (it holds app_id); the lease only
	// for a row that is due otherwise.
	free, freeArgs := "(lease_until IS NULL OR lease_until < ?)", []any{q.Now}
	if q.AppID != "" {
		free = "app_id = ? AND " + free
		freeArgs = append([]any{q.AppID}, freeArgs...)
	} else {
		free = "app_id NOT IN (SELECT id FROM apps WHERE health NOT IN (?, '')) AND " + free
		freeArgs = append([]any{AppHealthy}, freeArgs...)
	}
	picks := []struct {
		what, where, order string
		args               []any
	}{
		// Those without a time are taken in their index's order: ordered by ID,
		// PostgreSQL may walk the primary key instead and read every row to find
		// none (it cannot know that failing connections all have a retry time).
		{"active connections without an expiry", "status = ? AND expires_at IS NULL", "", []any{StatusActive}},
		{"active connections inside the margin", "status = ? AND expires_at < ?", "expires_at, id", []any{StatusActive, q.Now.Add(q.Margin)}},
		{"active connections never refreshed", "status = ? AND last_refresh_at IS NULL", "", []any{StatusActive}},
		{"active connections past the keep-alive", "status = ? AND last_refresh_at < ?", "last_refresh_at, id", []any{StatusActive, q.Now.Add(-q.Keepalive)}},
		{"failing connections without a retry time", "status = ? AND next_attempt_at IS NULL", "", []any{StatusRefreshFailing}},
		{"failing connections due a retry", "status = ? AND next_attempt_at <= ?", "next_attempt_at, id", []any{StatusRefreshFailing, q.Now}},
	}
	var all []due
	seen := map[string]bool{}
	for _, p := range picks {
		var rows []due
		pick := s.db.WithContext(ctx).Model(&Connection{}).Select("id, expires_at").
			Where(p.where+" AND "+free, append(p.args, freeArgs...)...)
		if p.order != "" {
			pick = pick.Order(p.order)
		}
		err := pick.Limit(q.Limit).Scan(&rows).Error
		if err != nil {
			return nil, storeError(err, "find due %s", p.what)
		}
		for _, r := range rows {
			if !seen[r.ID] {
				seen[r.ID] = true
				all = append(all, r)
			}
		}
	}
	// Soonest expiry first (none first), then ID.
	at := func(d due) time.Time {
		if d.ExpiresAt == nil {
			return time.Time{}
		}
		return *d.ExpiresAt
	}
	slices.SortFunc(all, func(a, b due) int { return cmp.Or(at(a).Compare(at(b)), cmp.Compare(a.ID, b.ID)) })
	ids := make([]string, 0, min(q.Limit, len(all)))
	for _, d := range all[:min(q.Limit, len(all))] {
		ids = append(ids, d.ID)
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
