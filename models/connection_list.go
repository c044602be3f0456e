package models

import (
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
	// AppHealthReason is GetResponse's answer that made the app unhealthy, in a
	// few words ("" when healthy).
	AppHealthReason string
	// seg is the list segment the row was read from (its attention group's place
	// in the order; 0 for the other orders), for its cursor.
	seg int
}

// Displayed is the state the dashboard shows for the row (Status.Displayed).
func (r *ConnectionRow) Displayed() Status { return r.Status.Displayed(r.AppHealth) }

// ConnectionSort is an order of the connections list. Each is a keyset over one
// indexed column and the ID, so a page of 100,000 rows costs what the first does
// in every order.
type ConnectionSort string

// The list's orders.
const (
	// SortAttention groups the connections by who must act (AttentionGroup), most
	// severe first, each group soonest expiry first. It has no direction.
	SortAttention ConnectionSort = "attention"
	// SortExpiry orders by access-token expiry.
	SortExpiry ConnectionSort = "expires"
	// SortEmail orders by the account's e-mail address, byte for byte.
	SortEmail ConnectionSort = "email"
	// SortCustomer orders by the customer reference, byte for byte.
	SortCustomer ConnectionSort = "customer"
)

// ConnectionSorts lists the list's orders.
var ConnectionSorts = []ConnectionSort{SortAttention, SortExpiry, SortEmail, SortCustomer}

// ConnectionFilter selects, orders and pages the connections list. Pages are
// keyset cursors over the order, so the last page of 100,000 rows costs what the
// first does.
type ConnectionFilter struct {
	Status string // one of DisplayStatuses, "live" (all but disconnected) or "" (all)
	AppID  string
	// Query finds any part of an e-mail, account name, customer reference, account
	// ID or MAX domain, ignoring case (search.go); shorter than SearchMinLength, an
	// exact account ID or the start of an e-mail, name or reference.
	Query string
	// Sort is the order (SortAttention when empty); Desc reverses the orders that
	// have a direction.
	Sort   ConnectionSort
	Desc   bool
	After  string // cursor: rows after this one
	Before string // cursor: rows before this one
	Last   bool   // the last page
	Limit  int
	// unhealthy holds the IDs of the apps that are not healthy, read once per
	// query when the state filter needs them (withUnhealthy).
	unhealthy []string
	// part, when set, replaces the state filter: the attention order reads one
	// part of a group at a time (readSegment).
	part *attentionPart
}

// ConnectionPage is one page of the list with cursors to its neighbours.
type ConnectionPage struct {
	Rows       []ConnectionRow
	NextCursor string // "" on the last page
	PrevCursor string // "" on the first page
}

// listKey is a row's place in an order: its segment, its sort column's value (a
// time, or text) and its ID.
type listKey struct {
	seg  int
	text bool
	ns   int64
	str  string
	id   string
}

func keyOf(r *ConnectionRow, sort ConnectionSort) listKey {
	k := listKey{seg: r.seg, id: r.ID}
	switch sort {
	case SortEmail:
		k.text, k.str = true, r.AccountEmail
	case SortCustomer:
		k.text, k.str = true, r.CustomerRef
	default:
		if r.ExpiresAt != nil {
			k.ns = r.ExpiresAt.UnixNano()
		}
	}
	return k
}

// before reports whether k comes before o in the ascending order of one segment.
func (k listKey) before(o listKey) bool {
	switch {
	case k.text && k.str != o.str:
		return k.str < o.str
	case !k.text && k.ns != o.ns:
		return k.ns < o.ns
	}
	return k.id < o.id
}

// value is the key's sort value as the database compares it.
func (k listKey) value() any {
	if k.text {
		return k.str
	}
	return time.Unix(0, k.ns).UTC()
}

func (k listKey) encode() string {
	v := "t" + strconv.FormatInt(k.ns, 10)
	if k.text {
		v = "s" + k.str
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(k.seg) + "|" + k.id + "|" + v))
}

func decodeCursor(s string, sort ConnectionSort) (listKey, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return listKey{}, ErrBadCursor
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return listKey{}, ErrBadCursor
	}
	k := listKey{id: parts[1]}
	if k.seg, err = strconv.Atoi(parts[0]); err != nil || k.seg < 0 {
		return listKey{}, ErrBadCursor
	}
	text := sort == SortEmail || sort == SortCustomer
	switch v := parts[2]; {
	case text && v[0] == 's':
		k.text, k.str = true, v[1:]
	case !text && v[0] == 't':
		if k.ns, err = strconv.ParseInt(v[1:], 10, 64); err != nil {
			return listKey{}, ErrBadCursor
		}
	default:
		return listKey{}, ErrBadCursor // a cursor of another order
	}
	return k, nil
}

// listSegment is one run of the order: for SortAttention an attention group
// (its parts read separately and merged), for the other orders the whole list.
type listSegment struct {
	parts []attentionPart // nil: the filter's own conditions
}

// ListConnections returns one page of connections in the filter's order.
func (s *Store) ListConnections(ctx context.Context, f ConnectionFilter) (*ConnectionPage, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	if f.Sort == "" {
		f.Sort = SortAttention
	}
	if !slices.Contains(ConnectionSorts, f.Sort) {
		return nil, ErrBadCursor
	}
	plan, err := s.planSearch(ctx, f.Query)
	if err != nil {
		return nil, err
	}
	segs := []listSegment{{}}
	if f.Sort != SortAttention {
		if f, err = s.withUnhealthy(ctx, f); err != nil {
			return nil, err
		}
	} else {
		// Each part names its state and apps itself: the filter's unhealthy apps
		// are not read.
		f.Desc = false
		unhealthy, err := s.appHealths(ctx)
		if err != nil {
			return nil, err
		}
		groups := attentionParts(f.Status, unhealthy)
		if err := s.planParts(ctx, f, groups); err != nil {
			return nil, err
		}
		segs = make([]listSegment, len(groups))
		for i, g := range groups {
			segs[i] = listSegment{parts: g}
		}
	}
	var from *listKey
	backward := f.Before != "" || f.Last
	for _, c := range []string{f.After, f.Before} {
		if c == "" {
			continue
		}
		k, err := decodeCursor(c, f.Sort)
		if err != nil {
			return nil, err
		}
		if k.seg >= len(segs) {
			return nil, ErrBadCursor
		}
		from = &k
		break
	}
	// Reading forward goes the page's way; backward (Previous, Last) the other
	// way, and the rows are turned round at the end. down is the SQL direction.
	down := f.Desc != backward
	need := f.Limit + 1
	var rows []ConnectionRow
	i, step := 0, 1
	if backward {
		i, step = len(segs)-1, -1
	}
	if from != nil {
		i = from.seg
	}
	for ; i >= 0 && i < len(segs) && len(rows) < need; i += step {
		var at *listKey
		if from != nil && i == from.seg {
			at = from
		}
		got, err := s.readSegment(ctx, f, plan, segs[i], i, down, at, need-len(rows))
		if err != nil {
			return nil, err
		}
		rows = append(rows, got...)
	}
	more := len(rows) > f.Limit
	if more {
		rows = rows[:f.Limit]
	}
	if backward {
		slices.Reverse(rows)
	}
	page := &ConnectionPage{Rows: rows}
	if len(rows) == 0 {
		return page, nil
	}
	first, last := keyOf(&rows[0], f.Sort).encode(), keyOf(&rows[len(rows)-1], f.Sort).encode()
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

// readSegment reads up to limit rows of one segment in the SQL direction down,
// past at when it is set: each part along its index, merged.
func (s *Store) readSegment(ctx context.Context, f ConnectionFilter, plan searchPlan, seg listSegment, index int, down bool, at *listKey, limit int) ([]ConnectionRow, error) {
	col := s.sortColumn(f.Sort)
	order, cmp := col+", c.id", ">"
	if down {
		order, cmp = col+" DESC, c.id DESC", "<"
	}
	// The page's IDs first, from the filter's index (on SQLite the list's indexes
	// hold what the filters read, so no row is fetched to be dropped, and an order
	// that needs sorting sorts index entries, not rows), then those rows whole.
	read := func(f ConnectionFilter) ([]ConnectionRow, error) {
		db := s.db.WithContext(ctx)
		q := s.where(s.from(db, f, plan).Select("c.id"), f, plan)
		if at != nil {
			v := at.value()
			q = q.Where("("+col+" "+cmp+" ? OR ("+col+" = ? AND c.id "+cmp+" ?))", v, v, at.id)
		}
		join := "CROSS JOIN" // SQLite keeps the page outermost
		if s.postgres {
			join = "JOIN"
		}
		var rows []ConnectionRow
		err := db.Table("(?) AS k", q.Order(order).Limit(limit)).Joins(join + " connections c ON c.id = k.id").
			Joins("JOIN apps a ON a.id = c.app_id").Select(listColumns).Order(order).Scan(&rows).Error
		return rows, storeError(err, "list connections")
	}
	var rows []ConnectionRow
	if seg.parts == nil {
		got, err := read(f)
		if err != nil {
			return nil, err
		}
		rows = got
	} else {
		for _, p := range seg.parts {
			if p.empty {
				continue
			}
			pf := f
			pf.part = &p
			got, err := read(pf)
			if err != nil {
				return nil, err
			}
			rows = append(rows, got...)
		}
		if len(seg.parts) > 1 {
			slices.SortFunc(rows, func(a, b ConnectionRow) int {
				ka, kb := keyOf(&a, f.Sort), keyOf(&b, f.Sort)
				if ka.before(kb) == !down {
					return -1
				}
				return 1
			})
			if len(rows) > limit {
				rows = rows[:limit]
			}
		}
	}
	for i := range rows {
		rows[i].seg = index
	}
	return rows, nil
}

// sortColumn is the column an order sorts by. PostgreSQL compares the text ones
// byte for byte (COLLATE "C", as SQLite does), which its indexes of migration 5
// serve.
func (s *Store) sortColumn(sort ConnectionSort) string {
	col := "c.expires_at"
	switch sort {
	case SortEmail:
		col = "c.account_email"
	case SortCustomer:
		col = "c.customer_ref"
	default:
		return col
	}
	if s.postgres {
		col += ` COLLATE "C"`
	}
	return col
}

// CountConnections counts the rows a filter selects (ignoring its cursor and
// order), up to limit: past it, it returns limit and more=true, so the count stays
// cheap however many rows match.
func (s *Store) CountConnections(ctx context.Context, f ConnectionFilter, limit int) (n int64, more bool, err error) {
	f.Sort, f.part = SortExpiry, nil
	plan, err := s.planSearch(ctx, f.Query)
	if err != nil {
		return 0, false, err
	}
	if f, err = s.withUnhealthy(ctx, f); err != nil {
		return 0, false, err
	}
	if plan.dense {
		return s.countDense(ctx, f, plan, limit)
	}
	sub := s.where(s.from(s.db.WithContext(ctx), f, plan).Select("1"), f, plan).Limit(limit + 1)
	err = storeError(s.db.WithContext(ctx).Table("(?) AS matched", sub).Count(&n).Error, "count connections")
	if n > int64(limit) {
		return int64(limit), true, err
	}
	return n, false, err
}

// listColumns are what a list row reads: the connection and what it shows of its app.
const listColumns = "c.*, a.name AS app_name, a.health AS app_health, a.health_reason AS app_health_reason"

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
	switch {
	case f.part != nil:
		q = q.Where("c.status = ?", f.part.status)
		switch {
		case f.part.in:
			q = q.Where("c.app_id IN ?", f.part.apps)
		case len(f.part.apps) > 0:
			q = q.Where("c.app_id NOT IN ?", f.part.apps)
		}
	case f.Status == "":
	case f.Status == "live":
		q = q.Where("c.status <> ?", StatusDisconnected)
	case f.Status == string(StatusPaused):
		if len(f.unhealthy) == 0 {
			return q.Where("1 = 0")
		}
		q = q.Where("c.app_id IN ? AND c.status IN ?", f.unhealthy, live)
	case f.Status == string(StatusActive), f.Status == string(StatusRefreshFailing):
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
