package models

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Webhook delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// webhookEvents maps timeline events to the webhook events they send.
var webhookEvents = map[EventType]string{
	EventConnectionCreated:     "connection.created",
	EventConnectionReconnected: "connection.reconnected",
	EventTransferRefused:       "connection.transfer_refused",
	EventTransferred:           "connection.transferred",
	EventRefreshFailed:         "connection.refresh_failed",
	EventNeedsReconnect:        "connection.needs_reconnect",
	EventRecovered:             "connection.recovered",
	EventDisconnected:          "connection.disconnected",
	EventAppUnhealthy:          "app.unhealthy",
	EventAppRecovered:          "app.recovered",
}

// WebhookGetResponseEvent is the webhook event that relays an event GetResponse
// sent to a connection's events URL.
const WebhookGetResponseEvent = "getresponse.event"

// WebhookEventTypes lists the webhook events grconnect sends.
func WebhookEventTypes() []string {
	return []string{"connection.created", "connection.reconnected", "connection.refresh_failed",
		"connection.needs_reconnect", "connection.recovered", "connection.disconnected",
		"app.unhealthy", "app.recovered", "connection.transfer_refused", "connection.transferred",
		WebhookGetResponseEvent}
}

// WebhookSubscribed reports whether the app's webhook gets events of type typ:
// every type when WebhookEvents is empty, else those it lists.
func (a *App) WebhookSubscribed(typ string) bool {
	return a.WebhookEvents == "" || slices.Contains(strings.Split(a.WebhookEvents, ","), typ)
}

// WebhookDelivery is one webhook POST owed to an app's endpoint (the outbox), and
// afterwards its entry in the delivery log.
type WebhookDelivery struct {
	ID           int64 `gorm:"primaryKey"`
	AppID        string
	ConnectionID *string
	EventID      int64
	EventType    string
	Payload      string
	// MessageID is the Standard Webhooks webhook-id (and the payload's "id"): the
	// same for every attempt and every replay of one message. "" on deliveries
	// queued before it was stored: see WebhookID.
	MessageID string
	// ReplayOf is the delivery this one sends again (an operator's replay).
	ReplayOf       *int64
	Status         string
	Attempts       int
	NextAttemptAt  time.Time
	LastStatusCode int
	LastError      string
	LastDurationMS int // how long the last attempt took, in milliseconds
	LeaseOwner     string
	LeaseUntil     *time.Time
	CreatedAt      time.Time
	DeliveredAt    *time.Time
}

// WebhookID returns the delivery's message ID: the webhook-id header, the
// payload's "id" and X-Grconnect-Delivery.
func (d *WebhookDelivery) WebhookID() string {
	if d.MessageID != "" {
		return d.MessageID
	}
	return "whd_" + strconv.FormatInt(d.ID, 10)
}

// WebhookPayload is the JSON body of a webhook.
type WebhookPayload struct {
	ID        string    `json:"id"` // the delivery's stable ID, for deduplication
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	// Connection is set for connection events, App for app events.
	Connection *WebhookConnection `json:"connection,omitempty"`
	App        *WebhookApp        `json:"app,omitempty"`
	Message    string             `json:"message"`
	// PreviousCustomerRef is whom a connection.transferred connection belonged to.
	PreviousCustomerRef string `json:"previous_customer_ref,omitempty"`
	// AttemptedCustomerRef is the customer whose flow a connection.transfer_refused
	// refused (the connection stays with connection.customer_ref).
	AttemptedCustomerRef string `json:"attempted_customer_ref,omitempty"`
}

// WebhookApp is what an app event says about its app (never its secrets).
type WebhookApp struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Health AppHealth `json:"health"`
	Reason string    `json:"reason,omitempty"`
}

// WebhookConnection is what a webhook says about its connection (never tokens).
type WebhookConnection struct {
	ID           string     `json:"id"`
	AppID        string     `json:"app_id"`
	CustomerRef  string     `json:"customer_ref"`
	AccountID    string     `json:"account_id"`
	MaxDomain    string     `json:"max_domain,omitempty"`
	AccountEmail string     `json:"account_email"`
	Status       Status     `json:"status"`
	ExpiresAt    *time.Time `json:"expires_at"`
}

func enqueueWebhook(tx *gorm.DB, e *Event) error {
	typ, ok := webhookEvents[e.Type]
	if !ok || (e.ConnectionID == nil && e.AppID == nil) {
		return nil
	}
	payload := WebhookPayload{Type: typ, CreatedAt: e.CreatedAt, Message: e.Message,
		PreviousCustomerRef: e.PreviousCustomerRef, AttemptedCustomerRef: e.AttemptedCustomerRef}
	appID := ""
	if e.ConnectionID != nil {
		var c Connection
		if err := tx.Where("id = ?", *e.ConnectionID).First(&c).Error; err != nil {
			return err
		}
		appID = c.AppID
		payload.Connection = &WebhookConnection{ID: c.ID, AppID: c.AppID, CustomerRef: c.CustomerRef, AccountID: c.AccountID,
			MaxDomain: c.MaxDomain, AccountEmail: c.AccountEmail, Status: c.Status, ExpiresAt: c.ExpiresAt}
	} else {
		appID = *e.AppID
	}
	var app App
	if err := tx.Select("id, name, webhook_url, webhook_events, health, health_reason").Where("id = ?", appID).First(&app).Error; err != nil {
		return err
	}
	if app.WebhookURL == "" || !app.WebhookSubscribed(typ) {
		return nil
	}
	if e.ConnectionID == nil {
		payload.App = &WebhookApp{ID: app.ID, Name: app.Name, Health: app.Health, Reason: app.HealthReason}
	}
	d := &WebhookDelivery{AppID: app.ID, ConnectionID: e.ConnectionID, EventID: e.ID, EventType: typ,
		Status: DeliveryPending, NextAttemptAt: e.CreatedAt, CreatedAt: e.CreatedAt}
	if err := tx.Create(d).Error; err != nil {
		return err
	}
	payload.ID = d.WebhookID()
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	return tx.Model(d).Updates(map[string]any{"payload": string(body), "message_id": payload.ID}).Error
}

// WebhookSetting is an app's webhook as an operator saves it.
type WebhookSetting struct {
	URL string // "" turns webhooks off (and forgets the secrets)
	// Events are the event types sent, comma-separated ("" for all).
	Events string
	// SecretEnc, when set, is a new sealed signing secret. PreviousEnc is the one
	// it replaces (sealed as webhook_previous_secret), signing beside it until
	// PreviousUntil ("" when there is none).
	SecretEnc, PreviousEnc string
	PreviousUntil          *time.Time
}

// SetWebhook stores an app's webhook setting.
func (s *Store) SetWebhook(ctx context.Context, appID string, w WebhookSetting) error {
	defer s.AppsWritten()
	updates := map[string]any{"webhook_url": w.URL, "webhook_events": w.Events, "updated_at": Now()}
	if w.SecretEnc != "" || w.URL == "" {
		updates["webhook_secret_enc"] = w.SecretEnc
		updates["webhook_previous_secret_enc"], updates["webhook_previous_until"] = w.PreviousEnc, w.PreviousUntil
	}
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) {
		res := tx.Model(&App{}).Where("id = ? AND deleted_at IS NULL", appID).Updates(updates)
		if res.Error == nil && res.RowsAffected == 0 {
			return false, ErrNotFound
		}
		return true, res.Error
	})
	return storeError(err, "set the webhook of app %s", appID)
}

// DueDeliveries leases up to limit pending deliveries whose time has come, the
// longest due first (the order of the due index: no sort), to owner (unique to this call: SaveDeliveries checks it). Events
// about a connection go out in order: at most one per connection (its oldest
// pending one), and an app's own events (no connection) are ordered among
// themselves the same way. Relayed GetResponse events (getresponse.event) are
// not ordered: GetResponse itself retries out of order, and a busy account must
// not wait one delivery at a time.
func (s *Store) DueDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]WebhookDelivery, error) {
	ctx = logWrites(ctx) // only log tables: the row caches stay
	var ids []int64
	err := s.db.WithContext(ctx).Raw(`SELECT d.id FROM webhook_deliveries d
		WHERE d.status = ? AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until < ?)
		AND (d.event_type = ? OR NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.status = ? AND p.id < d.id AND p.event_type <> ? AND
			((d.connection_id IS NOT NULL AND p.connection_id = d.connection_id) OR
			 (d.connection_id IS NULL AND p.connection_id IS NULL AND p.app_id = d.app_id))))
		ORDER BY d.next_attempt_at LIMIT ?`, DeliveryPending, now, now, WebhookGetResponseEvent, DeliveryPending, WebhookGetResponseEvent, limit).Scan(&ids).Error
	if err != nil {
		return nil, storeError(err, "list due webhook deliveries")
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// One statement leases them all; a row another worker leased meanwhile fails
	// its conditions (PostgreSQL checks them again after waiting for the row).
	res := s.db.WithContext(ctx).Model(&WebhookDelivery{}).
		Where("id IN ? AND status = ? AND (lease_until IS NULL OR lease_until < ?)", ids, DeliveryPending, now).
		Updates(map[string]any{"lease_owner": owner, "lease_until": now.Add(lease)})
	if res.Error != nil {
		return nil, storeError(res.Error, "lease webhook deliveries")
	}
	var leased []WebhookDelivery
	if res.RowsAffected > 0 {
		err = s.db.WithContext(ctx).Where("id IN ? AND lease_owner = ?", ids, owner).Order("id").Find(&leased).Error
	}
	return leased, storeError(err, "read leased webhook deliveries")
}

// DeliveryOutcome is the result of one delivery attempt.
type DeliveryOutcome struct {
	ID         int64 // the delivery
	Delivered  bool
	Failed     bool // gave up: no more attempts
	StatusCode int
	Error      string
	Duration   time.Duration
	NextAt     time.Time
	At         time.Time
	Event      *Event // the timeline entry for the attempt, if any
}

// SaveDeliveries records attempts' outcomes, releasing owner's leases: the
// deliveries that went through without a timeline entry (relayed GetResponse
// events) in one statement, the others with their timeline entries in one
// transaction. An outcome whose lease another worker took over meanwhile is left
// out (that worker records its own); it reports how many were recorded.
func (s *Store) SaveDeliveries(ctx context.Context, owner string, outcomes []DeliveryOutcome) (int, error) {
	ctx = logWrites(ctx) // only log tables: the row caches stay
	var plain, rest []DeliveryOutcome
	for _, o := range outcomes {
		if o.Delivered && o.Event == nil {
			plain = append(plain, o)
		} else {
			rest = append(rest, o)
		}
	}
	saved := 0
	if len(plain) > 0 {
		n, err := s.saveDelivered(ctx, owner, plain)
		if err != nil {
			return 0, storeError(err, "save %d webhook deliveries", len(plain))
		}
		saved = n
	}
	if len(rest) == 0 {
		return saved, nil
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var events []*Event
		for _, o := range rest {
			updates := map[string]any{"attempts": gorm.Expr("attempts + 1"), "last_status_code": o.StatusCode,
				"last_error": o.Error, "last_duration_ms": o.Duration.Milliseconds(), "lease_owner": "", "lease_until": nil}
			switch {
			case o.Delivered:
				updates["status"], updates["delivered_at"] = DeliveryDelivered, o.At
			case o.Failed:
				updates["status"] = DeliveryFailed
			default:
				updates["next_attempt_at"] = o.NextAt
			}
			res := tx.Model(&WebhookDelivery{}).Where("id = ? AND lease_owner = ?", o.ID, owner).Updates(updates)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				continue
			}
			saved++
			if o.Event != nil {
				events = append(events, o.Event)
			}
		}
		return addEvents(tx, events)
	})
	return saved, storeError(err, "save %d webhook delivery outcomes", len(rest))
}

// saveDelivered marks deliveries delivered in one UPDATE, each with its own
// answer, duration and time.
func (s *Store) saveDelivered(ctx context.Context, owner string, os []DeliveryOutcome) (int, error) {
	// PostgreSQL types a CASE's parameters as text unless told.
	num, at := "?", "?"
	if s.postgres {
		num, at = "CAST(? AS INTEGER)", "CAST(? AS TIMESTAMPTZ)"
	}
	ids := make([]int64, len(os))
	var code, ms, when strings.Builder
	args := make([]any, 0, 6*len(os)+3)
	for i, o := range os {
		ids[i] = o.ID
		code.WriteString(" WHEN ? THEN " + num)
		ms.WriteString(" WHEN ? THEN " + num)
		when.WriteString(" WHEN ? THEN " + at)
	}
	for _, o := range os {
		args = append(args, o.ID, o.StatusCode)
	}
	for _, o := range os {
		args = append(args, o.ID, o.Duration.Milliseconds())
	}
	for _, o := range os {
		args = append(args, o.ID, o.At)
	}
	args = append(args, DeliveryDelivered, ids, owner)
	res := s.db.WithContext(ctx).Exec(`UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = '', lease_owner = '', lease_until = NULL,
		last_status_code = CASE id`+code.String()+` END, last_duration_ms = CASE id`+ms.String()+` END,
		delivered_at = CASE id`+when.String()+` END, status = ? WHERE id IN ? AND lease_owner = ?`, args...)
	return int(res.RowsAffected), res.Error
}

// DeliveryFilter picks deliveries for the delivery log, newest first.
type DeliveryFilter struct {
	AppID, ConnectionID, Status, EventType string
	// Before pages: only deliveries with a smaller ID (0 for the newest).
	Before int64
	Limit  int
}

// deliveryLogColumns are what the log shows: everything but the payload, which
// may be large (a relayed GetResponse event).
var deliveryLogColumns = []string{"id", "app_id", "connection_id", "event_id", "event_type", "message_id", "replay_of", "status",
	"attempts", "next_attempt_at", "last_status_code", "last_error", "last_duration_ms", "created_at", "delivered_at"}

// ListDeliveries returns a page of the delivery log (without payloads) and
// whether older deliveries match too.
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]WebhookDelivery, bool, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	q := s.db.WithContext(ctx).Select(deliveryLogColumns)
	for col, v := range map[string]string{"app_id": f.AppID, "connection_id": f.ConnectionID, "status": f.Status, "event_type": f.EventType} {
		if v != "" {
			q = q.Where(col+" = ?", v)
		}
	}
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	var ds []WebhookDelivery
	if err := q.Order("id DESC").Limit(f.Limit + 1).Find(&ds).Error; err != nil {
		return nil, false, storeError(err, "list webhook deliveries")
	}
	if len(ds) > f.Limit {
		return ds[:f.Limit], true, nil
	}
	return ds, false, nil
}

// DeliveryByID returns one delivery with its payload.
func (s *Store) DeliveryByID(ctx context.Context, id int64) (*WebhookDelivery, error) {
	var d WebhookDelivery
	if err := s.db.WithContext(ctx).Where("id = ?", id).First(&d).Error; err != nil {
		return nil, storeError(translate(err), "fetch webhook delivery %d", id)
	}
	return &d, nil
}

// ReplayDelivery queues the message of delivery id again, as a new delivery with
// the same webhook-id and body (a receiver that deduplicates on webhook-id sees
// the same message). A delivery still pending gives ErrDeliveryPending; an app
// without a webhook, ErrWebhookOff.
func (s *Store) ReplayDelivery(ctx context.Context, id int64, now time.Time) (*WebhookDelivery, error) {
	ctx = logWrites(ctx) // only log tables: the row caches stay
	var replay *WebhookDelivery
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var d WebhookDelivery
		if err := tx.Where("id = ?", id).First(&d).Error; err != nil {
			return translate(err)
		}
		if d.Status == DeliveryPending {
			return ErrDeliveryPending
		}
		var app App
		if err := tx.Select("id, webhook_url").Where("id = ? AND deleted_at IS NULL", d.AppID).First(&app).Error; err != nil {
			return translate(err)
		}
		if app.WebhookURL == "" {
			return ErrWebhookOff
		}
		orig := d.ID
		replay = &WebhookDelivery{AppID: d.AppID, ConnectionID: d.ConnectionID, EventID: d.EventID, EventType: d.EventType,
			Payload: d.Payload, MessageID: d.WebhookID(), ReplayOf: &orig, Status: DeliveryPending, NextAttemptAt: now, CreatedAt: now}
		if err := tx.Create(replay).Error; err != nil {
			return err
		}
		return writeAudit(ctx, tx)
	})
	if err != nil {
		return nil, storeError(err, "replay webhook delivery %d", id)
	}
	return replay, nil
}

// DeleteFinishedDeliveriesBefore deletes delivered and given-up deliveries
// queued before cutoff (the log's retention), and says how many.
func (s *Store) DeleteFinishedDeliveriesBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	ctx = logWrites(ctx) // only log tables: the row caches stay
	res := s.db.WithContext(ctx).Where("created_at < ? AND status <> ?", cutoff, DeliveryPending).Delete(&WebhookDelivery{})
	return res.RowsAffected, storeError(res.Error, "delete old webhook deliveries")
}
