package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// AppHealth is an app's health: whether its refreshes can work at all.
type AppHealth string

// App health states. Connections of an unhealthy app keep their tokens and their
// state; their automatic refreshes pause (a probe at a time tests the app).
const (
	AppHealthy AppHealth = "ok"
	// AppCredentialsRejected: GetResponse rejected the client ID or secret
	// (invalid_client, unauthorized_client). The operator must act.
	AppCredentialsRejected AppHealth = "credentials_rejected"
	// AppMisconfigured: the app's settings were refused (the MAX domain, headers,
	// API access blocked). The operator must act.
	AppMisconfigured AppHealth = "misconfigured"
	// AppRefused: GetResponse refuses calls for several of the app's connections
	// (5xx, 429, maintenance, a blocked IP): waited out, probed one call at a time.
	AppRefused AppHealth = "refused"
)

// OperatorMustAct reports whether only the operator can fix the app.
func (h AppHealth) OperatorMustAct() bool {
	return h == AppCredentialsRejected || h == AppMisconfigured
}

// Healthy reports whether the app's refreshes run normally.
func (h AppHealth) Healthy() bool { return h == "" || h == AppHealthy }

// Event types of app health (app-level events: no connection).
const (
	EventAppUnhealthy EventType = "app.unhealthy"
	EventAppRecovered EventType = "app.recovered"
)

// AppHealthChange is a new health for an app.
type AppHealthChange struct {
	Health AppHealth
	Reason string
	// RetryAt is when the next probe may run (nil: now). Backoff, when set,
	// decides it instead from the probes failed in a row as stored (1 for a new
	// state): RetryAt = At + Backoff(failures).
	RetryAt *time.Time
	Backoff func(failures int) time.Duration
	// Actor is who caused the change ("system", an operator's e-mail).
	Actor string
	// Message is the event's text; Resumed the text of the refresh.resumed event of
	// each connection the episode paused, when the app is healthy again.
	Message, Resumed string
	At               time.Time
}

// SetAppHealth moves an app to a new health, recording one event per change of
// state (the alert goes to the right person once per episode, not once per
// connection). It reports whether the state changed; a repeat of the same state
// only updates its reason and retry time. A return to health also notes, on the
// timeline of each live connection whose refresh the episode paused, that its
// refreshes resume (one refresh.resumed each).
func (s *Store) SetAppHealth(ctx context.Context, appID string, ch AppHealthChange) (changed bool, err error) {
	if ch.At.IsZero() {
		ch.At = Now()
	}
	defer s.AppsWritten()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Workers and replicas meeting the same failure at once must see each
		// other's change: the row is locked for the read on PostgreSQL (SQLite's
		// write transaction already serializes), so only one records the event.
		if s.postgres {
			if err := tx.Exec("SELECT id FROM apps WHERE id = ? FOR UPDATE", appID).Error; err != nil {
				return err
			}
		}
		var app App
		if err := tx.Select("id, health, health_failures").Where("id = ? AND deleted_at IS NULL", appID).First(&app).Error; err != nil {
			return translate(err)
		}
		was := app.Health
		if was == "" {
			was = AppHealthy
		}
		failures := 1
		updates := map[string]any{"health": ch.Health, "health_reason": ch.Reason, "updated_at": ch.At}
		switch {
		case ch.Health.Healthy():
			updates["health"], updates["health_reason"], updates["health_since"], updates["health_failures"] = AppHealthy, "", nil, 0
		case was == ch.Health:
			failures = app.HealthFailures + 1
			updates["health_failures"] = failures
		default:
			updates["health_since"], updates["health_failures"] = ch.At, 1
		}
		if ch.Backoff != nil && !ch.Health.Healthy() {
			next := ch.At.Add(ch.Backoff(failures))
			ch.RetryAt = &next
		}
		updates["health_retry_at"] = ch.RetryAt
		if err := tx.Model(&App{}).Where("id = ?", appID).Updates(updates).Error; err != nil {
			return err
		}
		now := ch.Health
		if now.Healthy() {
			now = AppHealthy
		}
		changed = was != now
		if !changed {
			return nil
		}
		ev := &Event{AppID: &appID, Type: EventAppUnhealthy, Message: ch.Message, Actor: ch.Actor, CreatedAt: ch.At}
		if now == AppHealthy {
			ev.Type = EventAppRecovered
		}
		if err := addEvent(tx, ev); err != nil {
			return err
		}
		if now == AppHealthy {
			return resumePaused(tx, appID, ch)
		}
		return nil
	})
	return changed, storeError(err, "set the health of app %s", appID)
}

// resumePaused notes on the timeline of each live connection of app whose refresh
// the app paused — its latest refresh outcome is a refresh.paused — that its
// refreshes resume: one event each, in one statement however many connections
// the app has.
func resumePaused(tx *gorm.DB, appID string, ch AppHealthChange) error {
	return tx.Exec(`INSERT INTO events (connection_id, app_id, type, message, actor, created_at)
SELECT c.id, c.app_id, ?, ?, ?, ? FROM connections c
WHERE c.app_id = ? AND c.status IN (?, ?)
  AND EXISTS (SELECT 1 FROM events p WHERE p.connection_id = c.id AND p.type = ?
    AND p.id > COALESCE((SELECT MAX(o.id) FROM events o WHERE o.connection_id = c.id AND o.type IN (?, ?)), 0))`,
		EventRefreshResumed, ch.Resumed, ch.Actor, ch.At,
		appID, StatusActive, StatusRefreshFailing, EventRefreshPaused, EventRefreshResumed, EventRefreshSucceeded).Error
}

// ClaimAppProbe claims the next probe of an unhealthy app: it succeeds (true) for
// one caller of any process once the app's retry time has come, and moves the
// retry time to next, so further callers wait for that probe's outcome.
func (s *Store) ClaimAppProbe(ctx context.Context, appID string, now, next time.Time) (bool, error) {
	defer s.AppsWritten()
	res := s.db.WithContext(ctx).Model(&App{}).
		Where("id = ? AND health NOT IN (?, '') AND (health_retry_at IS NULL OR health_retry_at <= ?)", appID, AppHealthy, now).
		Update("health_retry_at", next)
	if res.Error != nil {
		return false, storeError(res.Error, "claim a probe of app %s", appID)
	}
	return res.RowsAffected == 1, nil
}

// UnhealthyApps returns the live apps that are not healthy.
func (s *Store) UnhealthyApps(ctx context.Context) ([]App, error) {
	var apps []App
	err := s.db.WithContext(ctx).Where("deleted_at IS NULL AND health NOT IN (?, '')", AppHealthy).Order("name").Find(&apps).Error
	return apps, storeError(err, "list unhealthy apps")
}
