package models

import (
	"context"
	"slices"
	"time"

	"gorm.io/gorm"
)

// DemoPast is how a demo connection, made through the real connect flow a moment
// ago, is to look: connected days ago, its tokens last refreshed some time ago,
// in the state its history led to.
type DemoPast struct {
	ID            string
	ConnectedAt   time.Time
	Status        Status
	LastRefreshAt *time.Time
	ExpiresAt     *time.Time
	LastError     string
	FailureCount  int
	NextAttemptAt *time.Time
	// DisconnectedAt, for a disconnected connection: its tokens are erased.
	DisconnectedAt *time.Time
}

// DemoHistory is demo mode's made-up past: its connections as they are to look,
// their timelines (events in any order, without webhooks: they are history) and
// the daily refresh counts the overview's chart reads.
type DemoHistory struct {
	Connections []DemoPast
	Events      []Event
	Days        []DailyRefreshStat
	// Apps are apps made unhealthy in the past (their app.unhealthy event is
	// among Events).
	Apps []DemoAppHealth
}

// DemoAppHealth is an app's health since some time, with its next probe.
type DemoAppHealth struct {
	AppID   string
	Health  AppHealth
	Reason  string
	Since   time.Time
	RetryAt time.Time
}

// WriteDemoHistory gives demo connections their past in one transaction: each
// connection's dates and state, its connect link's dates, a timeline replacing
// the one the connect flow wrote (all events written oldest first, so that the
// timelines' order by ID is their order in time), and the daily refresh counts
// (added to what today already counted).
func (s *Store) WriteDemoHistory(ctx context.Context, h DemoHistory) error {
	events := slices.Clone(h.Events)
	slices.SortStableFunc(events, func(a, b Event) int { return a.CreatedAt.Compare(b.CreatedAt) })
	defer s.AppsWritten()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, a := range h.Apps {
			if err := tx.Model(&App{}).Where("id = ?", a.AppID).Updates(map[string]any{"health": a.Health, "health_reason": a.Reason,
				"health_since": a.Since, "health_retry_at": a.RetryAt, "health_failures": 1}).Error; err != nil {
				return err
			}
		}
		ids := make([]string, 0, len(h.Connections))
		for _, c := range h.Connections {
			ids = append(ids, c.ID)
			updates := map[string]any{
				"connected_at": c.ConnectedAt, "created_at": c.ConnectedAt, "updated_at": Now(), "status": c.Status,
				"last_refresh_at": c.LastRefreshAt, "expires_at": c.ExpiresAt, "last_error": c.LastError,
				"failure_count": c.FailureCount, "next_attempt_at": c.NextAttemptAt, "disconnected_at": c.DisconnectedAt,
			}
			if c.Status == StatusDisconnected {
				updates["access_token_enc"], updates["refresh_token_enc"], updates["token_fingerprint"] = "", "", ""
				updates["token_version"] = gorm.Expr("token_version + 1")
			}
			if err := tx.Model(&Connection{}).Where("id = ?", c.ID).Updates(updates).Error; err != nil {
				return err
			}
			if err := tx.Model(&ConnectLink{}).Where("used_connection_id = ?", c.ID).
				Updates(map[string]any{"created_at": c.ConnectedAt.Add(-20 * time.Minute), "used_at": c.ConnectedAt}).Error; err != nil {
				return err
			}
		}
		if len(ids) > 0 {
			if err := tx.Where("connection_id IN ?", ids).Delete(&Event{}).Error; err != nil {
				return err
			}
		}
		for len(events) > 0 {
			n := min(len(events), 200)
			batch := make([]*Event, n)
			for i := range batch {
				batch[i] = &events[i]
			}
			if err := insertPlainEvents(tx, batch); err != nil {
				return err
			}
			events = events[n:]
		}
		for _, d := range h.Days {
			if err := countRefreshes(tx, d.Day, int(d.Succeeded), int(d.Failed)); err != nil {
				return err
			}
		}
		return nil
	})
	return storeError(err, "write the demo's history")
}

// DemoApps returns demo mode's apps, the first-made (the demo app) first.
func (s *Store) DemoApps(ctx context.Context) ([]App, error) {
	var apps []App
	err := s.db.WithContext(ctx).Where("demo = ? AND deleted_at IS NULL", true).Order("created_at, id").Find(&apps).Error
	return apps, storeError(err, "list the demo apps")
}
