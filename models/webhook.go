package models

import (
	"context"
	"encoding/json"
	"strconv"
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

// WebhookEventTypes lists the webhook events grconnect sends.
func WebhookEventTypes() []string {
	return []string{"connection.created", "connection.reconnected", "connection.refresh_failed",
		"connection.needs_reconnect", "connection.recovered", "connection.disconnected",
		"app.unhealthy", "app.recovered", "connection.transfer_refused", "connection.transferred"}
}

// WebhookDelivery is one webhook POST owed to an app's endpoint (the outbox).
type WebhookDelivery struct {
	ID             int64 `gorm:"primaryKey"`
	AppID          string
	ConnectionID   *string
	EventID        int64
	EventType      string
	Payload        string
	Status         string
	Attempts       int
	NextAttemptAt  time.Time
	LastStatusCode int
	LastError      string
	LeaseOwner     string
	LeaseUntil     *time.Time
	CreatedAt      time.Time
	DeliveredAt    *time.Time
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
	if err := tx.Select("id, name, webhook_url, health, health_reason").Where("id = ?", appID).First(&app).Error; err != nil {
		return err
	}
	if app.WebhookURL == "" {
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
	payload.ID = "whd_" + strconv.FormatInt(d.ID, 10)
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	return tx.Model(d).Update("payload", string(body)).Error
}

// SetWebhook stores an app's webhook URL and, when secretEnc is not empty, its new
// sealed signing secret. An empty url turns webhooks off.
func (s *Store) SetWebhook(ctx context.Context, appID, url, secretEnc string) error {
	defer s.AppsWritten()
	updates := map[string]any{"webhook_url": url, "updated_at": Now()}
	if secretEnc != "" || url == "" {
		updates["webhook_secret_enc"] = secretEnc
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
// oldest first and at most one per connection (its oldest pending one), so each
// connection's events arrive in order; an app's own events (no connection) are
// ordered among themselves the same way.
func (s *Store) DueDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]WebhookDelivery, error) {
	var candidates []WebhookDelivery
	err := s.db.WithContext(ctx).Raw(`SELECT d.* FROM webhook_deliveries d
		WHERE d.status = ? AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until < ?)
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.status = ? AND p.id < d.id AND
			((d.connection_id IS NOT NULL AND p.connection_id = d.connection_id) OR
			 (d.connection_id IS NULL AND p.connection_id IS NULL AND p.app_id = d.app_id)))
		ORDER BY d.id LIMIT ?`, DeliveryPending, now, now, DeliveryPending, limit).Scan(&candidates).Error
	if err != nil {
		return nil, storeError(err, "list due webhook deliveries")
	}
	var leased []WebhookDelivery
	for _, d := range candidates {
		res := s.db.WithContext(ctx).Model(&WebhookDelivery{}).
			Where("id = ? AND status = ? AND (lease_until IS NULL OR lease_until < ?)", d.ID, DeliveryPending, now).
			Updates(map[string]any{"lease_owner": owner, "lease_until": now.Add(lease)})
		if res.Error != nil {
			return leased, storeError(res.Error, "lease webhook delivery %d", d.ID)
		}
		if res.RowsAffected == 1 {
			leased = append(leased, d)
		}
	}
	return leased, nil
}

// DeliveryOutcome is the result of one delivery attempt.
type DeliveryOutcome struct {
	Delivered  bool
	Failed     bool // gave up: no more attempts
	StatusCode int
	Error      string
	NextAt     time.Time
	At         time.Time
	Event      *Event // the timeline entry for the attempt
}

// SaveDelivery records an attempt's outcome, releasing owner's lease.
func (s *Store) SaveDelivery(ctx context.Context, id int64, owner string, o DeliveryOutcome) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		updates := map[string]any{"attempts": gorm.Expr("attempts + 1"), "last_status_code": o.StatusCode,
			"last_error": o.Error, "lease_owner": "", "lease_until": nil}
		switch {
		case o.Delivered:
			updates["status"], updates["delivered_at"] = DeliveryDelivered, o.At
		case o.Failed:
			updates["status"] = DeliveryFailed
		default:
			updates["next_attempt_at"] = o.NextAt
		}
		res := tx.Model(&WebhookDelivery{}).Where("id = ? AND lease_owner = ?", id, owner).Updates(updates)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrDeliveryLeaseLost
		}
		if o.Event != nil {
			return addEvent(tx, o.Event)
		}
		return nil
	})
	return storeError(err, "save webhook delivery %d", id)
}

// RecentDeliveries returns an app's newest deliveries.
func (s *Store) RecentDeliveries(ctx context.Context, appID string, limit int) ([]WebhookDelivery, error) {
	var ds []WebhookDelivery
	err := s.db.WithContext(ctx).Where("app_id = ?", appID).Order("id DESC").Limit(limit).Find(&ds).Error
	return ds, storeError(err, "list webhook deliveries of app %s", appID)
}
