package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// ConnectLink is a link an operator hands a customer to connect (or reconnect) a
// GetResponse account. Only a hash of its token is looked up; the token itself is
// kept sealed so the operator can copy the link again later.
type ConnectLink struct {
	ID           string `gorm:"primaryKey"`
	TokenHash    string
	TokenEnc     string
	AppID        string
	CustomerRef  string
	ReturnURL    string
	ConnectionID *string // set for a reconnect link
	// MaxDomain is the customer's GetResponse MAX domain when the operator knows
	// it; "" asks the customer (or takes the app's default).
	MaxDomain string
	// AllowTransfer lets the flow move a connection of the same account that
	// belongs to another customer.
	AllowTransfer bool
	CreatedBy     string
	ExpiresAt     time.Time
	UsedAt        *time.Time
	// UsedConnectionID and UsedAccount say what completed the link.
	UsedConnectionID *string
	UsedAccount      string
	RevokedAt        *time.Time
	RevokedBy        string
	// DeniedAt is when the customer last declined access on GetResponse through
	// the link, which stays usable.
	DeniedAt  *time.Time
	CreatedAt time.Time
}

// AuthState is one pending authorization: the hashed OAuth state sent to
// GetResponse, bound to the browser that started it, valid briefly and once.
type AuthState struct {
	ID           string `gorm:"primaryKey"`
	StateHash    string
	BrowserHash  string
	AppID        string
	LinkID       *string
	CustomerRef  string
	ConnectionID *string
	ReturnURL    string
	MaxDomain    string
	// PopupOrigin is the opener page's origin (one of the app's return origins)
	// when the flow runs in a popup; the result pages report to it.
	PopupOrigin string
	ExpiresAt   time.Time
	UsedAt      *time.Time
	// Superseded marks a pending authorization ended because another flow
	// completed its link first.
	Superseded bool
	CreatedAt  time.Time
}

// CreateConnectLink inserts a link (ID set by the caller) and, in the same
// transaction, the events that record it.
func (s *Store) CreateConnectLink(ctx context.Context, l *ConnectLink, events ...*Event) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(l).Error; err != nil {
			return err
		}
		if err := writeAudit(ctx, tx); err != nil {
			return err
		}
		return addEvents(tx, events)
	})
	return storeError(translate(err), "create connect link %s", l.ID)
}

// ConnectLinkByTokenHash returns the link with that token hash.
func (s *Store) ConnectLinkByTokenHash(ctx context.Context, hash string) (*ConnectLink, error) {
	var l ConnectLink
	err := s.db.WithContext(ctx).Where("token_hash = ?", hash).First(&l).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch connect link by token")
	}
	return &l, nil
}

// ConnectLinkByID returns one link.
func (s *Store) ConnectLinkByID(ctx context.Context, id string) (*ConnectLink, error) {
	var l ConnectLink
	err := s.db.WithContext(ctx).Where("id = ?", id).First(&l).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch connect link %s", id)
	}
	return &l, nil
}

// RecentConnectLinks returns the newest links of an app, or of a connection when
// connectionID is set.
func (s *Store) RecentConnectLinks(ctx context.Context, appID, connectionID string, limit int) ([]ConnectLink, error) {
	q := s.db.WithContext(ctx).Order("created_at DESC").Limit(limit)
	if connectionID != "" {
		q = q.Where("connection_id = ?", connectionID)
	} else {
		q = q.Where("app_id = ?", appID)
	}
	var links []ConnectLink
	if err := q.Find(&links).Error; err != nil {
		if connectionID != "" {
			return links, storeError(err, "list connect links of connection %s", connectionID)
		}
		return links, storeError(err, "list connect links of app %s", appID)
	}
	return links, nil
}

// UsableReconnectLinks returns the reconnect links of the connections that can
// still be used at now (not used, revoked or expired), newest first.
func (s *Store) UsableReconnectLinks(ctx context.Context, connectionIDs []string, now time.Time) ([]ConnectLink, error) {
	var links []ConnectLink
	err := s.db.WithContext(ctx).Where("connection_id IN ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?", connectionIDs, now).
		Order("created_at DESC").Find(&links).Error
	return links, storeError(err, "list the usable reconnect links of %d connections", len(connectionIDs))
}

// MarkLinkDenied notes that the customer declined access through an unused link.
func (s *Store) MarkLinkDenied(ctx context.Context, id string, at time.Time) error {
	err := s.db.WithContext(ctx).Model(&ConnectLink{}).Where("id = ? AND used_at IS NULL", id).Update("denied_at", at).Error
	return storeError(err, "mark connect link %s denied", id)
}

// CreateAuthState inserts a pending authorization.
func (s *Store) CreateAuthState(ctx context.Context, a *AuthState) error {
	return storeError(translate(s.db.WithContext(ctx).Create(a).Error), "create authorization %s", a.ID)
}

// CreatePendingAuthState inserts a pending authorization unless its link already
// has max unexpired, unused ones (ErrTooMany). The link's row is locked for the
// count on PostgreSQL (SQLite's write transaction already serializes).
func (s *Store) CreatePendingAuthState(ctx context.Context, a *AuthState, max int) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if a.LinkID != nil {
			if s.postgres {
				if err := tx.Exec("SELECT id FROM connect_links WHERE id = ? FOR UPDATE", *a.LinkID).Error; err != nil {
					return err
				}
			}
			var n int64
			if err := tx.Model(&AuthState{}).Where("link_id = ? AND used_at IS NULL AND expires_at > ?", *a.LinkID, a.CreatedAt).
				Count(&n).Error; err != nil {
				return err
			}
			if n >= int64(max) {
				return ErrTooMany
			}
		}
		return translate(tx.Create(a).Error)
	})
	return storeError(err, "create authorization %s", a.ID)
}

// AuthStateByHash returns the pending authorization with that state hash.
func (s *Store) AuthStateByHash(ctx context.Context, hash string) (*AuthState, error) {
	var a AuthState
	err := s.db.WithContext(ctx).Where("state_hash = ?", hash).First(&a).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch authorization by state")
	}
	return &a, nil
}

// ConsumeAuthState marks a state used, once: a second call (a replay, or a
// concurrent callback) gets ErrAlreadyUsed.
func (s *Store) ConsumeAuthState(ctx context.Context, id string) error {
	res := s.db.WithContext(ctx).Model(&AuthState{}).Where("id = ? AND used_at IS NULL", id).Update("used_at", Now())
	if res.Error != nil {
		return storeError(res.Error, "consume authorization %s", id)
	}
	if res.RowsAffected == 0 {
		return ErrAlreadyUsed
	}
	return nil
}

// DeleteExpiredAuthStates removes authorizations that expired before cutoff.
func (s *Store) DeleteExpiredAuthStates(ctx context.Context, cutoff time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("expires_at < ?", cutoff).Delete(&AuthState{})
	return res.RowsAffected, storeError(res.Error, "delete expired authorizations")
}

// claimLink marks a link used inside the transaction that saves its authorization:
// exactly one flow of a link completes. A link used or revoked meanwhile gives
// ErrAlreadyUsed or ErrRevoked, and the caller's transaction rolls back.
func claimLink(tx *gorm.DB, linkID string, at time.Time) error {
	res := tx.Exec("UPDATE connect_links SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL", at, linkID)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 1 {
		return nil
	}
	var l ConnectLink
	if err := tx.Where("id = ?", linkID).First(&l).Error; err != nil {
		return translate(err)
	}
	if l.RevokedAt != nil && l.UsedAt == nil {
		return ErrRevoked
	}
	return ErrAlreadyUsed
}

// finishLink records what completed a claimed link and ends its other pending
// authorizations: their callbacks then say the link was used.
func finishLink(tx *gorm.DB, linkID, connectionID, account string, at time.Time) error {
	err := tx.Exec("UPDATE connect_links SET used_connection_id = ?, used_account = ? WHERE id = ?", connectionID, account, linkID).Error
	if err != nil {
		return err
	}
	return supersedeAuthStates(tx, linkID, at)
}

// supersedeAuthStates ends a link's pending authorizations.
func supersedeAuthStates(tx *gorm.DB, linkID string, at time.Time) error {
	return tx.Exec("UPDATE auth_states SET used_at = ?, superseded = ? WHERE link_id = ? AND used_at IS NULL", at, true, linkID).Error
}

// RevokeConnectLink withdraws an unused link and ends its pending authorizations.
// Revoking a revoked link again changes nothing; a used one gives ErrAlreadyUsed.
func (s *Store) RevokeConnectLink(ctx context.Context, id, actor string) (*ConnectLink, error) {
	var l ConnectLink
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("id = ?", id).First(&l).Error; err != nil {
			return translate(err)
		}
		switch {
		case l.UsedAt != nil:
			return ErrAlreadyUsed
		case l.RevokedAt != nil:
			return nil
		}
		now := Now()
		res := tx.Exec("UPDATE connect_links SET revoked_at = ?, revoked_by = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL", now, actor, id)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrAlreadyUsed
		}
		l.RevokedAt, l.RevokedBy = &now, actor
		if err := supersedeAuthStates(tx, id, now); err != nil {
			return err
		}
		if err := writeAudit(ctx, tx); err != nil {
			return err
		}
		if l.ConnectionID != nil {
			return addEvent(tx, &Event{ConnectionID: l.ConnectionID, AppID: &l.AppID, Type: EventReconnectLinkRevoked,
				Message: "Reconnect link revoked", Actor: actor, CreatedAt: now})
		}
		return nil
	})
	if err != nil {
		return nil, storeError(err, "revoke connect link %s", id)
	}
	return &l, nil
}
