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
	CreatedBy    string
	ExpiresAt    time.Time
	UsedAt       *time.Time
	CreatedAt    time.Time
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
	ExpiresAt    time.Time
	UsedAt       *time.Time
	CreatedAt    time.Time
}

// CreateConnectLink inserts a link (ID set by the caller) and, in the same
// transaction, the events that record it.
func (s *Store) CreateConnectLink(ctx context.Context, l *ConnectLink, events ...*Event) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(l).Error; err != nil {
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

// markLinkUsed records that a link completed a connection.
func markLinkUsed(tx *gorm.DB, linkID string, at time.Time) error {
	return tx.Model(&ConnectLink{}).Where("id = ? AND used_at IS NULL", linkID).Update("used_at", at).Error
}
