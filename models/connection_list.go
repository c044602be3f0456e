package models

import (
	"cmp"
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// ConnectionRow is a connection with its app's name, for lists.
type ConnectionRow struct {
	Connection
	AppName string
	// AppHealth is the app's health: an unhealthy app pauses its live connections.
	AppHealth AppHealth
}

// Displayed is the state the dashboard shows for the row (Status.Displayed).
func (r *ConnectionRow) Displayed() Status { return r.Status.Displayed(r.AppHealth) }

// ConnectionFilter selects and pages the connections list. The list is ordered by
// access-token expiry, soonest first, then ID; pages are keyset cursors over that
// order, so the last page of 100,000 rows costs what the first does.
type ConnectionFilter struct {
	Status string // one of DisplayStatuses, "live" (all but disconnected) or "" (all)
	AppID  string
	// Query finds any part of an e-mail, account name, customer reference, account
	// ID or MAX domain, ignoring case (search.go); shorter than SearchMinLength, an
	// exact account ID or the start of an e-mail, name or reference.
	Query  string
	After  string // cursor: rows after this one
	Before string // cursor: rows before this one
	Last   bool   // the last page
	Limit  int
	// unhealthy holds the IDs of the apps that are not healthy, read once per
	// query when the state filter needs them (withUnhealthy).
	unhealthy []string
}

// ConnectionPage is one page of the list with cursors to its neighbours.
type ConnectionPage struct {
	Rows       []ConnectionRow
	NextCursor string // "" on the last page
	PrevCursor string // "" on the first page
}

func encodeCursor(c *Connection) string {
	var ns int64
	if c.ExpiresAt != nil {
		ns = c.ExpiresAt.UnixNano()
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ns, 10) + "|" + c.ID))
}

func decodeCursor(s string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	ns, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", ErrBadCursor
	}
	return time.Unix(0, ns).UTC(), id, nil
}

// ListConnections returns one page of connections.
func (s *Store) ListConnections(ctx context.Context, f ConnectionFilter) (*ConnectionPage, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	plan, err := s.planSearch(ctx, f.Query)
	if err != nil {
		return nil, err
	}
	if f, err = s.withUnhealthy(ctx, f); err != nil {
		return nil, err
	}
	q := s.filtered(ctx, f, plan)
	backward := f.Before != "" || f.Last
	switch {
	case f.After != "":
		t, id, err := decodeCursor(f.After)
		if err != nil {
			return nil, err
		}
		q = q.Where("(c.expires_at > ? OR (c.expires_at = ? AND c.id > ?))", t, t, id)
	case f.Before != "":
		t, id, err := decodeCursor(f.Before)
		if err != nil {
			return nil, err
		}
		q = q.Where("(c.expires_at < ? OR (c.expires_at = ? AND c.id < ?))", t, t, id)
	}
	if backward {
		q = q.Order("c.expires_at DESC, c.id DESC")
	} else {
		q = q.Order("c.expires_at, c.id")
	}
	var rows []ConnectionRow
	if err := q.Limit(f.Limit + 1).Scan(&rows).Error; err != nil {
		return nil, storeError(err, "list connections")
	}
	more := len(rows) > f.Limit
	if more {
		rows = rows[:f.Limit]
	}
	if backward {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	page := &ConnectionPage{Rows: rows}
	if len(rows) == 0 {
		return page, nil
	}
	first, last := encodeCursor(&rows[0].Connection), encodeCursor(&rows[len(rows)-1].Connection)
	switch {
	case backward:
		if more {
			page.PrevCursor = first
		}
		if !f.Last {
			page.NextCursor = last
		}
	default:
		if more {
			page.NextCursor = last
		}
		if f.After != "" {
			page.PrevCursor = first
		}
	}
	return page, nil
}

// CountConnections counts the rows a filter selects (ignoring its cursor), up to
// limit: past it, it returns limit and more=true, so the count stays cheap however
// many rows match.
func (s *Store) CountConnections(ctx context.Context, f ConnectionFilter, limit int) (n int64, more bool, err error) {
	plan, err := s.planSearch(ctx, f.Query)
	if err != nil {
		return 0, false, err
	}
	if f, err = s.withUnhealthy(ctx, f); err != nil {
		return 0, false, err
	}
	if plan.kind == searchDenseKind {
		return s.countDense(ctx, f, plan, limit)
	}
	sub := s.where(s.from(s.db.WithContext(ctx), f, plan).Select("1"), f, plan).Limit(limit + 1)
	err = storeError(s.db.WithContext(ctx).Table("(?) AS matched", sub).Count(&n).Error, "count connections")
	if n > int64(limit) {
		return int64(limit), true, err
	}
	return n, false, err
}

func (s *Store) filtered(ctx context.Context, f ConnectionFilter, plan searchPlan) *gorm.DB {
	q := s.from(s.db.WithContext(ctx), f, plan).Select("c.*, a.name AS app_name, a.health AS app_health").Joins("JOIN apps a ON a.id = c.app_id")
	return s.where(q, f, plan)
}

// withUnhealthy reads the unhealthy apps' IDs into f when its state filter splits
// paused connections from live ones. They are few, and as a list of values they
// let the query walk one app's index range in order (a subquery would make
// SQLite sort every paused row first).
func (s *Store) withUnhealthy(ctx context.Context, f ConnectionFilter) (ConnectionFilter, error) {
	switch f.Status {
	case string(StatusPaused), string(StatusActive), string(StatusRefreshFailing):
		f.unhealthy = nil
		err := s.db.WithContext(ctx).Raw(unhealthyAppIDs + " ORDER BY id").Scan(&f.unhealthy).Error
		return f, storeError(err, "read the unhealthy apps")
	}
	return f, nil
}

// where applies a filter's conditions to a query on "connections AS c".
func (s *Store) where(q *gorm.DB, f ConnectionFilter, plan searchPlan) *gorm.DB {
	live := []Status{StatusActive, StatusRefreshFailing}
	switch f.Status {
	case "":
	case "live":
		q = q.Where("c.status <> ?", StatusDisconnected)
	case string(StatusPaused):
		if len(f.unhealthy) == 0 {
			return q.Where("1 = 0")
		}
		q = q.Where("c.app_id IN ? AND c.status IN ?", f.unhealthy, live)
	case string(StatusActive), string(StatusRefreshFailing):
		// Each connection in one displayed state: a paused one is not also active.
		q = q.Where("c.status = ?", f.Status)
		if len(f.unhealthy) > 0 {
			q = q.Where("c.app_id NOT IN ?", f.unhealthy)
		}
	default:
		q = q.Where("c.status = ?", f.Status)
	}
	if f.AppID != "" {
		q = q.Where("c.app_id = ?", f.AppID)
	}
	return s.searchWhere(q, plan)
}

// ConnectionsBy returns up to limit live connections in a state ("" for any live
// state), soonest expiry first, for the overview. Each state is read in its own
// index order and the lists merged: one query over several states would sort
// every row they hold.
func (s *Store) ConnectionsBy(ctx context.Context, statuses []Status, limit int) ([]ConnectionRow, error) {
	var rows []ConnectionRow
	for _, st := range statuses {
		var part []ConnectionRow
		q := s.db.WithContext(ctx).Table("connections AS c").
			Select("c.*, a.name AS app_name, a.health AS app_health").Joins("JOIN apps a ON a.id = c.app_id").
			Where("c.status = ?", st).Order("c.expires_at, c.id").Limit(limit)
		if err := q.Scan(&part).Error; err != nil {
			return nil, storeError(err, "list connections by status")
		}
		rows = append(rows, part...)
	}
	at := func(r ConnectionRow) time.Time {
		if r.ExpiresAt == nil {
			return time.Time{}
		}
		return *r.ExpiresAt
	}
	slices.SortFunc(rows, func(a, b ConnectionRow) int { return cmp.Or(at(a).Compare(at(b)), cmp.Compare(a.ID, b.ID)) })
	return rows[:min(limit, len(rows))], nil
}

// EventRow is an event with what the overview shows of its connection.
type EventRow struct {
	Event
	AccountEmail string
	CustomerRef  string
}

// RecentEvents returns the newest events across all connections.
func (s *Store) RecentEvents(ctx context.Context, limit int) ([]EventRow, error) {
	var rows []EventRow
	err := s.db.WithContext(ctx).Table("events AS e").
		Select("e.*, c.account_email, c.customer_ref").Joins("LEFT JOIN connections c ON c.id = e.connection_id").
		Order("e.id DESC").Limit(limit).Scan(&rows).Error
	return rows, storeError(err, "list recent events")
}

// ConnectionEvents returns a connection's timeline, newest first, older than
// beforeID when it is set, and whether older events remain.
func (s *Store) ConnectionEvents(ctx context.Context, connectionID string, beforeID int64, limit int) ([]Event, bool, error) {
	q := s.db.WithContext(ctx).Where("connection_id = ?", connectionID)
	if beforeID > 0 {
		q = q.Where("id < ?", beforeID)
	}
	var events []Event
	if err := q.Order("id DESC").Limit(limit + 1).Find(&events).Error; err != nil {
		return nil, false, storeError(err, "list events of connection %s", connectionID)
	}
	more := len(events) > limit
	if more {
		events = events[:limit]
	}
	return events, more, nil
}
