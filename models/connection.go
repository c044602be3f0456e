package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Status is a connection's state.
type Status string

// Connection states.
const (
	StatusActive         Status = "active"
	StatusRefreshFailing Status = "refresh_failing"
	StatusNeedsReconnect Status = "needs_reconnect"
	StatusDisconnected   Status = "disconnected"
)

// Statuses lists every connection state, in the order the dashboard shows them.
var Statuses = []Status{StatusActive, StatusRefreshFailing, StatusNeedsReconnect, StatusDisconnected}

// StatusPaused is never stored: it is how the dashboard shows a live connection
// (active or refresh_failing) whose app is unhealthy — its refreshes pause
// because of the app, whatever its own state says. DisplayStatuses are the
// states the dashboard counts and filters by, each connection in exactly one.
const StatusPaused Status = "paused"

// DisplayStatuses lists the dashboard's states in the order it shows them.
var DisplayStatuses = []Status{StatusActive, StatusPaused, StatusRefreshFailing, StatusNeedsReconnect, StatusDisconnected}

// Live reports whether a connection in this state holds tokens.
func (s Status) Live() bool { return s == StatusActive || s == StatusRefreshFailing }

// Displayed is the state the dashboard shows for a connection in state s of an
// app in health h: paused when the app is why a live connection does not refresh.
func (s Status) Displayed(h AppHealth) Status {
	if s.Live() && !h.Healthy() {
		return StatusPaused
	}
	return s
}

// unhealthyAppIDs is a subquery of the IDs of the apps that are not healthy: their
// live connections are paused.
const unhealthyAppIDs = "SELECT id FROM apps WHERE health NOT IN ('ok', '')"

// EventType names a timeline event.
type EventType string

// Timeline events. Those in webhookEvents also send a webhook.
const (
	EventConnectionCreated     EventType = "connection.created"
	EventConnectionReconnected EventType = "connection.reconnected"
	EventRefreshSucceeded      EventType = "refresh.succeeded"
	EventRefreshFailed         EventType = "refresh.failed"
	EventNeedsReconnect        EventType = "connection.needs_reconnect"
	EventRecovered             EventType = "connection.recovered"
	EventDisconnected          EventType = "connection.disconnected"
	EventTestCall              EventType = "test_call"
	EventReconnectLinkCreated  EventType = "reconnect_link.created"
	// EventRefreshPaused: a refresh refused because of the app's configuration; the
	// app's health carries the alert, the connection keeps its state.
	EventRefreshPaused EventType = "refresh.paused"
	// EventRefreshResumed: the app works again, so a connection whose refreshes it
	// paused refreshes again (one per paused connection when the app heals).
	EventRefreshResumed EventType = "refresh.resumed"
	// EventRefreshFailedAgain: the same failure as last time, in the same state: on
	// the timeline, but no second alert or webhook.
	EventRefreshFailedAgain EventType = "refresh.failed_again"
	// EventAppUpdated is an app-level event (no connection): an operator edited the
	// app's registration. Its message says what changed, never a secret.
	EventAppUpdated EventType = "app.updated"
	// EventGetResponse is an event GetResponse sent to the connection's events URL
	// (a webhook or a callback); it is relayed to the app's webhook.
	EventGetResponse EventType = "getresponse.event"
	// EventEventsURLRotated: the connection's events URL was replaced; the old one
	// answers 404 from then on.
	EventEventsURLRotated EventType = "events_url.rotated"
	// The connection's GetResponse callbacks: registered, removed, or a call that
	// failed (its message says what GetResponse answered and who must act).
	EventCallbacksRegistered EventType = "callbacks.registered"
	EventCallbacksRemoved    EventType = "callbacks.removed"
	EventCallbacksFailed     EventType = "callbacks.failed"
)

// Connection is one customer's GetResponse account connected through an app.
type Connection struct {
	ID          string `gorm:"primaryKey"`
	AppID       string
	CustomerRef string
	// MaxDomain is the GetResponse MAX (Enterprise) domain the account lives on,
	// sent as X-Domain on every call; "" for a standard account. With AppID and
	// AccountID it is the connection's identity.
	MaxDomain string
	// ParentLogin, when set, is sent as X-Parent-Login on API calls: it picks the
	// parent account for a user who belongs to several.
	ParentLogin      string
	AccountID        string
	AccountEmail     string
	AccountName      string
	CompanyName      string
	Status           Status
	AccessTokenEnc   string // sealed
	RefreshTokenEnc  string // sealed
	TokenFingerprint string // short keyed hash of the access token, for display
	ExpiresAt        *time.Time
	LastRefreshAt    *time.Time
	LastError        string
	FailureCount     int
	NextAttemptAt    *time.Time
	LeaseOwner       string
	LeaseUntil       *time.Time
	// TokenVersion counts the token pairs stored; a refresh outcome is written only
	// over the version it refreshed.
	TokenVersion int
	// InterruptedBy names the owner of a refresh lease that expired unreleased (a
	// refresh sent whose answer was never stored), until the next pair is stored.
	InterruptedBy string
	// EventsTokenHash finds the connection from its events URL (the SHA-256 of the
	// URL's token, hex); EventsTokenEnc is the token sealed, to show the URL again.
	// Both are empty until the URL is first needed, and erased by a disconnect.
	EventsTokenHash *string
	EventsTokenEnc  string
	ConnectedAt     time.Time
	DisconnectedAt  *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Identity is what a connection adds to its app's GetResponse calls.
type Identity struct {
	MaxDomain   string // X-Domain; "" for standard accounts
	ParentLogin string // X-Parent-Login; "" for none
}

// Identity returns the connection's MAX domain and parent login.
func (c *Connection) Identity() Identity {
	return Identity{MaxDomain: c.MaxDomain, ParentLogin: c.ParentLogin}
}

// ConnectionByID returns one connection.
func (s *Store) ConnectionByID(ctx context.Context, id string) (*Connection, error) {
	var c Connection
	err := s.db.WithContext(ctx).Where("id = ?", id).First(&c).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch connection %s", id)
	}
	return &c, nil
}

// Event is one entry of a connection's timeline (or an app-level note).
type Event struct {
	ID           int64 `gorm:"primaryKey"`
	ConnectionID *string
	AppID        *string
	Type         EventType
	Message      string
	Actor        string // operator email, "system", "customer" or "api"
	CreatedAt    time.Time
	// PreviousCustomerRef and AttemptedCustomerRef go into the webhook of a
	// transfer or a refused one; they are not stored with the event.
	PreviousCustomerRef  string `gorm:"-"`
	AttemptedCustomerRef string `gorm:"-"`
}

// AddEvent records an event.
func (s *Store) AddEvent(ctx context.Context, e *Event) error {
	err := addEvent(s.db.WithContext(ctx), e)
	if err != nil && e.ConnectionID != nil {
		return storeError(err, "add %s event of connection %s", e.Type, *e.ConnectionID)
	}
	return storeError(err, "add %s event", e.Type)
}

// addEvents records several events in order: runs of events without a webhook in
// one INSERT each.
func addEvents(tx *gorm.DB, events []*Event) error {
	var plain []*Event
	for _, e := range events {
		if e.CreatedAt.IsZero() {
			e.CreatedAt = Now()
		}
		if _, hooked := webhookEvents[e.Type]; !hooked {
			plain = append(plain, e)
			continue
		}
		if err := insertPlainEvents(tx, plain); err != nil {
			return err
		}
		plain = plain[:0]
		if err := addEvent(tx, e); err != nil {
			return err
		}
	}
	return insertPlainEvents(tx, plain)
}

// insertPlainEvents writes events that send no webhook in one multi-row INSERT.
func insertPlainEvents(tx *gorm.DB, events []*Event) error {
	if len(events) == 0 {
		return nil
	}
	sql := "INSERT INTO events (connection_id, app_id, type, message, actor, created_at) VALUES "
	args := make([]any, 0, 6*len(events))
	for i, e := range events {
		if i > 0 {
			sql += ", "
		}
		sql += "(?, ?, ?, ?, ?, ?)"
		args = append(args, e.ConnectionID, e.AppID, e.Type, e.Message, e.Actor, e.CreatedAt)
	}
	return tx.Exec(sql, args...).Error
}

func addEvent(tx *gorm.DB, e *Event) error {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = Now()
	}
	if _, hooked := webhookEvents[e.Type]; !hooked {
		// The common case (a refresh, a test call): a plain INSERT, without GORM's
		// reflection or reading the new ID back.
		return insertPlainEvents(tx, []*Event{e})
	}
	if err := tx.Create(e).Error; err != nil {
		return err
	}
	// The webhook delivery is queued in the same transaction as its event (it needs
	// the event's ID): either both exist or neither does. So is a connect's
	// callback registration.
	if err := enqueueWebhook(tx, e); err != nil {
		return err
	}
	return registerOnConnect(tx, e)
}

// disconnect erases a connection's tokens and marks it disconnected, with an event.
// Its events URL ends with it, and its GetResponse callbacks are queued for removal.
func disconnect(tx *gorm.DB, id, actor, message string) (changed bool, err error) {
	now := Now()
	// The removal is queued first: it copies the access token about to be erased.
	// A connection already disconnected wants its callbacks removed already, so a
	// repeated disconnect queues nothing.
	if err := removeOnDisconnect(tx, id, now); err != nil {
		return false, err
	}
	res := tx.Model(&Connection{}).Where("id = ? AND status <> ?", id, StatusDisconnected).Updates(map[string]any{
		"status": StatusDisconnected, "access_token_enc": "", "refresh_token_enc": "", "token_fingerprint": "",
		"next_attempt_at": nil, "lease_owner": "", "lease_until": nil,
		"token_version": gorm.Expr("token_version + 1"), "interrupted_by": "",
		"events_token_hash": nil, "events_token_enc": "",
		"disconnected_at": now, "updated_at": now,
	})
	if res.Error != nil || res.RowsAffected == 0 {
		return false, res.Error
	}
	return true, addEvent(tx, &Event{ConnectionID: &id, Type: EventDisconnected, Message: message, Actor: actor, CreatedAt: now})
}

// CountByStatus returns how many connections are in each state the dashboard
// shows (DisplayStatuses: paused included), from the kept counts (counts.go).
func (s *Store) CountByStatus(ctx context.Context) (map[Status]int64, error) {
	c, err := s.CountConnectionsShown(ctx)
	return c.ByStatus, err
}

// ShownCounts are the connections counted as the dashboard shows them.
type ShownCounts struct {
	// ByStatus counts each of DisplayStatuses: a live connection of an unhealthy
	// app counts as paused (Status.Displayed).
	ByStatus map[Status]int64
	// ByGroup counts each attention group (AttentionOf).
	ByGroup map[AttentionGroup]int64
}

// CountConnectionsShown counts the connections per state shown and per attention
// group, from the counts per app and state and the apps' health.
func (s *Store) CountConnectionsShown(ctx context.Context) (ShownCounts, error) {
	c := ShownCounts{ByStatus: map[Status]int64{}, ByGroup: map[AttentionGroup]int64{}}
	totals, err := s.ConnectionTotals(ctx)
	if err != nil {
		return c, err
	}
	health, err := s.appHealths(ctx)
	if err != nil {
		return c, err
	}
	for _, t := range totals {
		h := health[t.AppID]
		c.ByStatus[t.Status.Displayed(h)] += t.N
		c.ByGroup[AttentionOf(t.Status, h)] += t.N
	}
	return c, nil
}

// ConnectionTotal is how many connections of one app are in one state.
type ConnectionTotal struct {
	AppID  string
	Status Status
	N      int64
}

// ConnectionTotals counts the connections per app and state (the metrics read it
// in the background, never per scrape; counts.go keeps it a few rows).
func (s *Store) ConnectionTotals(ctx context.Context) ([]ConnectionTotal, error) {
	rows, err := s.connectionCounts(ctx)
	return rows, storeError(err, "count connections by app and status")
}
