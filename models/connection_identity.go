package models

import (
	"context"

	"gorm.io/gorm"
)

// Timeline events of connection identity and links (those in webhookEvents also
// send a webhook).
const (
	// EventTransferRefused is recorded on a customer's connection when a flow for
	// another customer authorized the same account without allow_transfer.
	EventTransferRefused EventType = "connection.transfer_refused"
	// EventTransferred is recorded when a link with allow_transfer moved a
	// connection from one customer to another.
	EventTransferred EventType = "connection.transferred"
	// EventReconnectLinkRevoked records that an operator withdrew a reconnect link.
	EventReconnectLinkRevoked EventType = "reconnect_link.revoked"
	// EventParentLoginChanged records a new X-Parent-Login for a connection.
	EventParentLoginChanged EventType = "connection.parent_login_changed"
)

// SetParentLogin stores the X-Parent-Login sent with a connection's API calls
// ("" sends none), with an event when it changed.
func (s *Store) SetParentLogin(ctx context.Context, id, login, actor string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var c Connection
		if err := tx.Select("id, app_id, parent_login").Where("id = ?", id).First(&c).Error; err != nil {
			return translate(err)
		}
		if c.ParentLogin == login {
			return nil
		}
		now := Now()
		if err := tx.Exec("UPDATE connections SET parent_login = ?, updated_at = ? WHERE id = ?", login, now, id).Error; err != nil {
			return err
		}
		msg := "X-Parent-Login set to " + login
		if login == "" {
			msg = "X-Parent-Login removed"
		}
		if err := writeAudit(ctx, tx); err != nil {
			return err
		}
		return addEvent(tx, &Event{ConnectionID: &c.ID, AppID: &c.AppID, Type: EventParentLoginChanged, Message: msg, Actor: actor, CreatedAt: now})
	})
	return storeError(err, "set the parent login of connection %s", id)
}
