package models

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// APIConnectionFilter selects connections for the JSON API: every field is an exact
// match ("" matches anything), and pages go forward from After.
type APIConnectionFilter struct {
	Status      Status // one of Statuses, or ""
	AppID       string
	CustomerRef string
	After       string // a NextCursor of the previous page
	Limit       int    // 1–500; otherwise 50
}

// ListAPIConnections returns one page of connections in the dashboard list's order
// (access-token expiry, then ID, on the same indexes and keyset cursors) and the
// cursor of the next page, "" on the last one.
func (s *Store) ListAPIConnections(ctx context.Context, f APIConnectionFilter) ([]Connection, string, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	q := s.db.WithContext(ctx).Model(&Connection{})
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.AppID != "" {
		q = q.Where("app_id = ?", f.AppID)
	}
	if f.CustomerRef != "" {
		q = q.Where("customer_ref = ?", f.CustomerRef)
	}
	if f.After != "" {
		t, id, err := decodeCursor(f.After)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("(expires_at > ? OR (expires_at = ? AND id > ?))", t, t, id)
	}
	var rows []Connection
	if err := q.Order("expires_at, id").Limit(f.Limit + 1).Find(&rows).Error; err != nil {
		return nil, "", storeError(err, "list connections")
	}
	if len(rows) <= f.Limit {
		return rows, "", nil
	}
	rows = rows[:f.Limit]
	return rows, encodeCursor(&rows[len(rows)-1]), nil
}

// TokenRow is what handing out a connection's access token reads of it.
type TokenRow struct {
	ID, AppID, AccountID string
	Status               Status
	AccessTokenEnc       string // sealed
	ExpiresAt            *time.Time
	NextAttemptAt        *time.Time // a failing connection's next refresh attempt
	LastError            string
	LeaseUntil           *time.Time // set while a refresh is being sent
	LastRefreshAt        *time.Time
	MaxDomain            string // the connection's X-Domain
	ParentLogin          string // the connection's X-Parent-Login
}

// Identity returns the connection's MAX domain and parent login.
func (r *TokenRow) Identity() Identity {
	return Identity{MaxDomain: r.MaxDomain, ParentLogin: r.ParentLogin}
}

// Leased reports whether a refresh of the connection is in flight now.
func (r *TokenRow) Leased(now time.Time) bool { return r.LeaseUntil != nil && r.LeaseUntil.After(now) }

// tokenRowQuery reads what TokenRow holds.
const tokenRowQuery = "SELECT app_id, account_id, status, access_token_enc, expires_at, next_attempt_at, last_error, lease_until, last_refresh_at, max_domain, parent_login FROM connections WHERE id = ?"

// TokenRow reads a connection's token columns. The token route reads them on every
// request (when no cache answers), so this skips GORM.
func (s *Store) TokenRow(ctx context.Context, id string) (*TokenRow, error) {
	st, err := s.prepared(ctx, tokenRowQuery)
	if err != nil {
		return nil, storeError(s.noteRead(err), "prepare the token query")
	}
	r, err := scanTokenRow(st.QueryRowContext(ctx, id), id)
	if err != nil {
		return nil, storeError(s.noteRead(err), "fetch token of connection %s", id)
	}
	return r, nil
}

func scanTokenRow(row *sql.Row, id string) (*TokenRow, error) {
	r := TokenRow{ID: id}
	var expires, next, lease, last sql.NullTime
	err := row.Scan(&r.AppID, &r.AccountID, &r.Status, &r.AccessTokenEnc, &expires, &next, &r.LastError, &lease, &last, &r.MaxDomain, &r.ParentLogin)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.ExpiresAt, r.NextAttemptAt, r.LeaseUntil, r.LastRefreshAt = nullTime(expires), nullTime(next), nullTime(lease), nullTime(last)
	return &r, nil
}
