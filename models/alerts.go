package models

import (
	"context"

	"gorm.io/gorm"
)

// AlertEvents are the events that need a person: an app's health changing, and a
// customer who must reconnect.
var AlertEvents = []EventType{EventAppUnhealthy, EventAppRecovered, EventNeedsReconnect}

// AlertRow is an alert event with its connection's and app's names.
type AlertRow struct {
	Event
	AppName      string
	AccountEmail string
	CustomerRef  string
}

// PendingAlerts returns the alert events after the mailer's cursor, oldest first, at
// most limit, and the cursor they were read after.
func (s *Store) PendingAlerts(ctx context.Context, limit int) ([]AlertRow, int64, error) {
	var cursor int64
	if err := s.db.WithContext(ctx).Raw("SELECT last_event_id FROM alert_cursor WHERE id = 1").Scan(&cursor).Error; err != nil {
		return nil, 0, storeError(err, "read the alert cursor")
	}
	var rows []AlertRow
	err := s.db.WithContext(ctx).Table("events AS e").
		Select("e.*, COALESCE(a.name, '') AS app_name, COALESCE(c.account_email, '') AS account_email, COALESCE(c.customer_ref, '') AS customer_ref").
		Joins("LEFT JOIN apps a ON a.id = e.app_id").Joins("LEFT JOIN connections c ON c.id = e.connection_id").
		Where("e.id > ? AND e.type IN ?", cursor, AlertEvents).Order("e.id").Limit(limit).Scan(&rows).Error
	return rows, cursor, storeError(err, "list pending alerts")
}

// AdvanceAlerts moves the mailer's cursor from from to to, if nobody moved it
// meanwhile (another replica's mailer): true means these alerts are this caller's
// to send.
func (s *Store) AdvanceAlerts(ctx context.Context, from, to int64) (bool, error) {
	res := s.db.WithContext(ctx).Exec("UPDATE alert_cursor SET last_event_id = ?, updated_at = ? WHERE id = 1 AND last_event_id = ?", to, Now(), from)
	if res.Error != nil {
		return false, storeError(res.Error, "advance the alert cursor")
	}
	return res.RowsAffected == 1, nil
}

// AlertRecipients returns the e-mail addresses of operators who want alerts.
func (s *Store) AlertRecipients(ctx context.Context) ([]string, error) {
	var emails []string
	err := s.db.WithContext(ctx).Model(&Operator{}).Where("alert_email = ?", true).Order("email").Pluck("email", &emails).Error
	return emails, storeError(err, "list alert recipients")
}

// SetAlertEmail turns an operator's alert e-mails on or off.
func (s *Store) SetAlertEmail(ctx context.Context, operatorID string, on bool) error {
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) {
		res := tx.Model(&Operator{}).Where("id = ?", operatorID).Updates(map[string]any{"alert_email": on, "updated_at": Now()})
		if res.Error == nil && res.RowsAffected == 0 {
			return false, ErrNotFound
		}
		return true, res.Error
	})
	return storeError(err, "set the alert e-mails of operator %s", operatorID)
}
