package models

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Where an inbound event came from.
const (
	InboundWebhook  = "webhook"  // a GetResponse webhook (set up in GetResponse's panel): JSON with X-Webhook-ID
	InboundCallback = "callback" // a GetResponse callback (registered through the API): parameters, no ID
)

// InboundEvent is one event GetResponse sent to a connection's events URL, kept
// until the relay has put it on the timeline and queued its webhook delivery.
type InboundEvent struct {
	ID           int64 `gorm:"primaryKey"`
	ConnectionID string
	AppID        string
	Source       string // InboundWebhook or InboundCallback
	Type         string // the webhook's type (contact_opened_message, …) or the callback's action (open, …)
	// DedupKey keeps the event once per connection: the X-Webhook-ID, or for an
	// event without one a hash of its content in its time window.
	DedupKey   string
	WebhookID  string // X-Webhook-ID, when GetResponse sent one
	AccountID  string // the account the event itself names, when it does
	Payload    string // the original event as JSON (a callback's parameters as an object)
	ReceivedAt time.Time
	RelayOwner string
	RelayUntil *time.Time
	RelayedAt  *time.Time
}

// EventsTarget is what receiving an event needs of the connection its URL names.
type EventsTarget struct {
	ID, AppID, CustomerRef, AccountID string
	Status                            Status
}

// EventsTargetByHash returns the connection whose events token has SHA-256 hash
// (hex): one read through the unique index, never more. No connection:
// ErrNotFound.
func (s *Store) EventsTargetByHash(ctx context.Context, hash string) (*EventsTarget, error) {
	// A prepared statement, past GORM: every event (and every wrong token) pays it.
	st, err := s.prepared(ctx, EventsTargetQuery)
	if err != nil {
		return nil, storeError(err, "prepare the events URL lookup")
	}
	var t EventsTarget
	err = st.QueryRowContext(ctx, hash).Scan(&t.ID, &t.AppID, &t.CustomerRef, &t.AccountID, &t.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, storeError(err, "look up an events URL")
	}
	return &t, nil
}

// EventsTargetQuery is the one read an events URL costs (tests explain its plan).
const EventsTargetQuery = "SELECT id, app_id, customer_ref, account_id, status FROM connections WHERE events_token_hash = ?"

// SetEventsToken gives connection id the events token with SHA-256 hash and
// sealed value enc. Without replace it does so only when the connection has
// none yet (two first views racing keep the first token: changed is false for
// the second); with replace it rotates the URL, recording ev on the timeline and
// asking for the callbacks to be registered again at the new URL. A disconnected
// connection gets none (ErrDisconnected).
func (s *Store) SetEventsToken(ctx context.Context, id, hash, enc string, replace bool, ev *Event) (changed bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		q := tx.Model(&Connection{}).Where("id = ? AND status <> ?", id, StatusDisconnected)
		if !replace {
			q = q.Where("events_token_hash IS NULL")
		}
		res := q.Updates(map[string]any{"events_token_hash": hash, "events_token_enc": enc})
		if res.Error != nil {
			return res.Error
		}
		changed = res.RowsAffected == 1
		if !changed {
			var status Status
			if err := tx.Model(&Connection{}).Where("id = ?", id).Pluck("status", &status).Error; err != nil {
				return err
			}
			switch status {
			case "":
				return ErrNotFound
			case StatusDisconnected:
				return ErrDisconnected
			}
			return nil
		}
		if !replace {
			return nil
		}
		if err := requeueRegistration(tx, id, Now()); err != nil {
			return err
		}
		if err := writeAudit(ctx, tx); err != nil {
			return err
		}
		return addEvent(tx, ev)
	})
	return changed, storeError(err, "set the events URL of connection %s", id)
}

// EventsTokenOf returns connection id's sealed events token ("" when it has none).
func (s *Store) EventsTokenOf(ctx context.Context, id string) (string, error) {
	var enc []string
	err := s.db.WithContext(ctx).Model(&Connection{}).Where("id = ?", id).Pluck("events_token_enc", &enc).Error
	if err == nil && len(enc) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return "", storeError(err, "read the events URL of connection %s", id)
	}
	return enc[0], nil
}

// NewInbound is an event to keep, with how it is deduplicated: DedupKey once per
// connection, and, for an event without an ID (Window > 0), not when the
// connection has an event keyed Previous (the previous time window's key of the
// same content) received within Window.
type NewInbound struct {
	Event    *InboundEvent
	Previous string
	Window   time.Duration
}

// maxInboundBatch bounds the rows of one INSERT (SQLite's bound parameters).
const maxInboundBatch = 400

// StoreInboundEvents keeps a batch of events received together (a group commit)
// in one statement, each unless it is a duplicate (see NewInbound), also of
// another in the batch. It reports, per event, whether it was kept; a kept
// event's ID is set.
func (s *Store) StoreInboundEvents(ctx context.Context, batch []NewInbound) ([]bool, error) {
	ctx = logWrites(ctx) // only log tables: the row caches stay
	kept := make([]bool, len(batch))
	// No transaction: one INSERT per part is atomic by itself, and SQLite runs a
	// lone statement without the statement journal a transaction's would need.
	for from := 0; from < len(batch); from += maxInboundBatch {
		part := batch[from:min(from+maxInboundBatch, len(batch))]
		if err := storeInboundPart(s.db.WithContext(ctx), part, kept[from:from+len(part)]); err != nil {
			return nil, storeError(err, "store %d inbound events", len(batch))
		}
	}
	return kept, nil
}

type dedupKey struct{ conn, key string }

func storeInboundPart(tx *gorm.DB, part []NewInbound, kept []bool) error {
	// The previous window's twins: one read for the batch, through the unique index
	// (a twin stored between this read and the INSERT is an event a minute old
	// arriving in the same millisecond as its copy: not worth a transaction).
	twins := map[dedupKey]time.Time{}
	var conns, prevs []string
	for _, n := range part {
		if n.Window > 0 && n.Previous != "" {
			conns, prevs = append(conns, n.Event.ConnectionID), append(prevs, n.Previous)
		}
	}
	if len(prevs) > 0 {
		var rows []InboundEvent
		if err := tx.Select("connection_id, dedup_key, received_at").Where("connection_id IN ? AND dedup_key IN ?", conns, prevs).Find(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			twins[dedupKey{r.ConnectionID, r.DedupKey}] = r.ReceivedAt
		}
	}
	sql := "INSERT INTO inbound_events (connection_id, app_id, source, type, dedup_key, webhook_id, account_id, payload, received_at) VALUES "
	args := make([]any, 0, 9*len(part))
	inBatch := map[dedupKey]bool{}
	rows := 0
	for _, n := range part {
		e := n.Event
		k := dedupKey{e.ConnectionID, e.DedupKey}
		if inBatch[k] {
			continue
		}
		if n.Window > 0 {
			prev := dedupKey{e.ConnectionID, n.Previous}
			if at, ok := twins[prev]; (ok && at.After(e.ReceivedAt.Add(-n.Window))) || inBatch[prev] {
				continue
			}
		}
		inBatch[k] = true
		if rows > 0 {
			sql += ", "
		}
		sql += "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
		args = append(args, e.ConnectionID, e.AppID, e.Source, e.Type, e.DedupKey, e.WebhookID, e.AccountID, e.Payload, e.ReceivedAt)
		rows++
	}
	if rows == 0 {
		return nil
	}
	// The unique index decides against events stored before (or by another
	// process at the same time); RETURNING names the rows it took.
	res, err := tx.Raw(sql+" ON CONFLICT (connection_id, dedup_key) DO NOTHING RETURNING id, connection_id, dedup_key", args...).Rows()
	if err != nil {
		return err
	}
	defer res.Close()
	ids := map[dedupKey]int64{}
	for res.Next() {
		var id int64
		var k dedupKey
		if err := res.Scan(&id, &k.conn, &k.key); err != nil {
			return err
		}
		ids[k] = id
	}
	if err := res.Err(); err != nil {
		return err
	}
	for i, n := range part {
		if id, ok := ids[dedupKey{n.Event.ConnectionID, n.Event.DedupKey}]; ok {
			kept[i], n.Event.ID = true, id
			delete(ids, dedupKey{n.Event.ConnectionID, n.Event.DedupKey}) // a twin in the batch is not kept twice
		}
	}
	return nil
}

// UnrelayedInbound counts the inbound events the relay has not handled yet.
func (s *Store) UnrelayedInbound(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&InboundEvent{}).Where("relayed_at IS NULL").Count(&n).Error
	return n, storeError(err, "count unrelayed inbound events")
}

// ClaimInbound leases up to limit unrelayed inbound events, the oldest first, to
// owner (unique to this call).
func (s *Store) ClaimInbound(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]InboundEvent, error) {
	ctx = logWrites(ctx) // only log tables: the row caches stay
	var ids []int64
	err := s.db.WithContext(ctx).Model(&InboundEvent{}).
		Where("relayed_at IS NULL AND (relay_until IS NULL OR relay_until < ?)", now).
		Order("id").Limit(limit).Pluck("id", &ids).Error
	if err != nil || len(ids) == 0 {
		return nil, storeError(err, "list unrelayed inbound events")
	}
	res := s.db.WithContext(ctx).Model(&InboundEvent{}).
		Where("id IN ? AND relayed_at IS NULL AND (relay_until IS NULL OR relay_until < ?)", ids, now).
		Updates(map[string]any{"relay_owner": owner, "relay_until": now.Add(lease)})
	if res.Error != nil || res.RowsAffected == 0 {
		return nil, storeError(res.Error, "lease inbound events")
	}
	var events []InboundEvent
	err = s.db.WithContext(ctx).Where("id IN ? AND relay_owner = ?", ids, owner).Order("id").Find(&events).Error
	return events, storeError(err, "read leased inbound events")
}

// GetResponseEventPayload is the JSON body of a getresponse.event webhook.
type GetResponseEventPayload struct {
	ID           string             `json:"id"` // the message ID, for deduplication
	Type         string             `json:"type"`
	CreatedAt    time.Time          `json:"created_at"`
	ConnectionID string             `json:"connection_id"`
	CustomerRef  string             `json:"customer_ref"`
	AccountID    string             `json:"account_id"`
	Connection   *WebhookConnection `json:"connection"`
	Event        GetResponseEvent   `json:"event"`
	Message      string             `json:"message"`
}

// GetResponseEvent is the event a getresponse.event webhook relays.
type GetResponseEvent struct {
	Source     string    `json:"source"` // webhook or callback
	Type       string    `json:"type"`   // the webhook's type, or the callback's action
	WebhookID  string    `json:"webhook_id,omitempty"`
	AccountID  string    `json:"account_id,omitempty"` // the account the event names, when it does
	ReceivedAt time.Time `json:"received_at"`
	// Payload is what GetResponse sent: a webhook's JSON body as it was, or a
	// callback's parameters as an object.
	Payload json.RawMessage `json:"payload"`
}

// inboundMessageID is the webhook-id of the delivery relaying inbound event id.
func inboundMessageID(id int64) string { return fmt.Sprintf("gre_%d", id) }

// RelayInbound records events leased to owner: an entry on each connection's
// timeline (message from describe) and, for an app whose webhook takes
// getresponse.event, a delivery — all in one short transaction that also marks
// them relayed. Events whose lease another worker took over meanwhile are left to
// it: ErrLeaseLost, nothing written.
func (s *Store) RelayInbound(ctx context.Context, owner string, events []InboundEvent, now time.Time, describe func(*InboundEvent) string) error {
	ctx = logWrites(ctx) // only log tables: the row caches stay
	if len(events) == 0 {
		return nil
	}
	ids := make([]int64, len(events))
	connIDs := map[string]bool{}
	for i, e := range events {
		ids[i] = e.ID
		connIDs[e.ConnectionID] = true
	}
	// Everything is read and built before the transaction, which holds SQLite's
	// one writer only for the writes.
	var conns []Connection
	if err := s.db.WithContext(ctx).Select("id, app_id, customer_ref, account_id, max_domain, account_email, status, expires_at").
		Where("id IN ?", keys(connIDs)).Find(&conns).Error; err != nil {
		return storeError(err, "read the connections of %d inbound events", len(events))
	}
	byID := map[string]*Connection{}
	appIDs := map[string]bool{}
	for i := range conns {
		byID[conns[i].ID] = &conns[i]
		appIDs[conns[i].AppID] = true
	}
	var apps []App
	if err := s.db.WithContext(ctx).Select("id, webhook_url, webhook_events").Where("id IN ? AND deleted_at IS NULL", keys(appIDs)).Find(&apps).Error; err != nil {
		return storeError(err, "read the apps of %d inbound events", len(events))
	}
	hooked := map[string]bool{}
	for i := range apps {
		hooked[apps[i].ID] = apps[i].WebhookURL != "" && apps[i].WebhookSubscribed(WebhookGetResponseEvent)
	}
	timeline := make([]*Event, 0, len(events))
	var deliveries []WebhookDelivery
	for i := range events {
		e := &events[i]
		c := byID[e.ConnectionID]
		if c == nil {
			continue
		}
		msg := describe(e)
		timeline = append(timeline, &Event{ConnectionID: &c.ID, AppID: &c.AppID, Type: EventGetResponse, Message: msg, Actor: "getresponse", CreatedAt: e.ReceivedAt})
		if !hooked[c.AppID] {
			continue
		}
		body, err := json.Marshal(GetResponseEventPayload{
			ID: inboundMessageID(e.ID), Type: WebhookGetResponseEvent, CreatedAt: e.ReceivedAt,
			ConnectionID: c.ID, CustomerRef: c.CustomerRef, AccountID: c.AccountID,
			Connection: &WebhookConnection{ID: c.ID, AppID: c.AppID, CustomerRef: c.CustomerRef, AccountID: c.AccountID,
				MaxDomain: c.MaxDomain, AccountEmail: c.AccountEmail, Status: c.Status, ExpiresAt: c.ExpiresAt},
			Event: GetResponseEvent{Source: e.Source, Type: e.Type, WebhookID: e.WebhookID, AccountID: e.AccountID,
				ReceivedAt: e.ReceivedAt, Payload: json.RawMessage(e.Payload)},
			Message: msg,
		})
		if err != nil {
			return err
		}
		connID := c.ID
		deliveries = append(deliveries, WebhookDelivery{AppID: c.AppID, ConnectionID: &connID, EventID: e.ID,
			EventType: WebhookGetResponseEvent, Payload: string(body), MessageID: inboundMessageID(e.ID),
			Status: DeliveryPending, NextAttemptAt: now, CreatedAt: now})
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&InboundEvent{}).Where("id IN ? AND relay_owner = ? AND relayed_at IS NULL", ids, owner).
			Updates(map[string]any{"relayed_at": now, "relay_owner": "", "relay_until": nil})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != int64(len(events)) {
			return ErrLeaseLost
		}
		if err := insertPlainEvents(tx, timeline); err != nil {
			return err
		}
		return insertDeliveries(tx, deliveries)
	})
	return storeError(err, "relay %d inbound events", len(events))
}

// insertDeliveries queues deliveries in one multi-row INSERT (their IDs are not
// read back: their message IDs are set already).
func insertDeliveries(tx *gorm.DB, ds []WebhookDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	sql := "INSERT INTO webhook_deliveries (app_id, connection_id, event_id, event_type, payload, message_id, status, next_attempt_at, created_at) VALUES "
	args := make([]any, 0, 9*len(ds))
	for i, d := range ds {
		if i > 0 {
			sql += ", "
		}
		sql += "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
		args = append(args, d.AppID, d.ConnectionID, d.EventID, d.EventType, d.Payload, d.MessageID, d.Status, d.NextAttemptAt, d.CreatedAt)
	}
	return tx.Exec(sql, args...).Error
}

// DeleteRelayedInboundBefore deletes inbound events relayed before cutoff (their
// timeline entries and deliveries stay), and says how many.
func (s *Store) DeleteRelayedInboundBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	ctx = logWrites(ctx) // only log tables: the row caches stay
	res := s.db.WithContext(ctx).Where("relayed_at < ?", cutoff).Delete(&InboundEvent{})
	return res.RowsAffected, storeError(res.Error, "delete relayed inbound events")
}

// keys returns a set's members.
func keys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	return out
}
