package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// OperatorSession is one signed-in browser of an operator. The browser's cookie
// holds a random token; only its SHA-256 is stored.
type OperatorSession struct {
	ID         string `gorm:"primaryKey"`
	TokenHash  string
	OperatorID string
	UserAgent  string
	IP         string
	// Flash is a one-time message for the next page ("kind:text"), or "".
	Flash      string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is fixed when the session starts: activity never extends it.
	ExpiresAt time.Time
	// ReauthAt is when the operator last confirmed their password in this session
	// (nil: never); sensitive actions need a recent one.
	ReauthAt *time.Time
}

// CreateSession inserts a session (ID set when empty).
func (s *Store) CreateSession(ctx context.Context, sess *OperatorSession) error {
	if sess.ID == "" {
		sess.ID = NewID("ses")
	}
	return storeError(translate(s.db.WithContext(ctx).Create(sess).Error), "create session of operator %s", sess.OperatorID)
}

// SessionByTokenHash returns the session with that token hash that is still valid
// at now: not past its expiry and seen since idleSince.
func (s *Store) SessionByTokenHash(ctx context.Context, hash string, now, idleSince time.Time) (*OperatorSession, error) {
	var sess OperatorSession
	err := s.db.WithContext(ctx).Where("token_hash = ? AND expires_at > ? AND last_seen_at > ?", hash, now, idleSince).First(&sess).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch session by token")
	}
	return &sess, nil
}

// TouchSession records that a session was used at at.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	err := s.db.WithContext(ctx).Model(&OperatorSession{}).Where("id = ?", id).Update("last_seen_at", at).Error
	return storeError(err, "touch session %s", id)
}

// SetSessionReauth records that a session's operator confirmed their password at at.
func (s *Store) SetSessionReauth(ctx context.Context, id string, at time.Time) error {
	res := s.db.WithContext(ctx).Model(&OperatorSession{}).Where("id = ?", id).Update("reauth_at", at)
	if res.Error == nil && res.RowsAffected == 0 {
		return storeError(ErrNotFound, "record the re-authentication of session %s", id)
	}
	return storeError(res.Error, "record the re-authentication of session %s", id)
}

// SetSessionFlash stores the next page's one-time message.
func (s *Store) SetSessionFlash(ctx context.Context, id, flash string) error {
	err := s.db.WithContext(ctx).Model(&OperatorSession{}).Where("id = ?", id).Update("flash", flash).Error
	return storeError(err, "set the flash of session %s", id)
}

// DeleteSession ends one session of an operator (ErrNotFound when it is not theirs
// or already ended).
func (s *Store) DeleteSession(ctx context.Context, operatorID, id string) error {
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) {
		res := tx.Where("id = ? AND operator_id = ?", id, operatorID).Delete(&OperatorSession{})
		if res.Error == nil && res.RowsAffected == 0 {
			return false, ErrNotFound
		}
		return true, res.Error
	})
	return storeError(err, "end session %s", id)
}

// DeleteOperatorSessions ends every session of an operator except keepID ("" ends
// them all) and returns how many ended. Every outstanding reset link of the
// operator, and every one they made, is retired with them.
func (s *Store) DeleteOperatorSessions(ctx context.Context, operatorID, keepID string) (int64, error) {
	var n int64
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) {
		res := deleteSessions(tx, operatorID, keepID)
		n = res.RowsAffected
		if res.Error != nil {
			return false, res.Error
		}
		// Whoever held one of those sessions may have made reset links: they die too.
		retired, err := retirePasswordResets(tx, operatorID)
		return n > 0 || retired > 0, err
	})
	return n, storeError(err, "end the sessions of operator %s", operatorID)
}

func deleteSessions(tx *gorm.DB, operatorID, keepID string) *gorm.DB {
	return tx.Where("operator_id = ? AND id <> ?", operatorID, keepID).Delete(&OperatorSession{})
}

// OperatorSessions returns an operator's sessions still valid at now, newest first.
func (s *Store) OperatorSessions(ctx context.Context, operatorID string, now, idleSince time.Time) ([]OperatorSession, error) {
	var out []OperatorSession
	err := s.db.WithContext(ctx).Where("operator_id = ? AND expires_at > ? AND last_seen_at > ?", operatorID, now, idleSince).
		Order("created_at DESC, id").Find(&out).Error
	return out, storeError(err, "list the sessions of operator %s", operatorID)
}

// DeleteStaleSessions removes sessions expired at now or idle since idleSince.
func (s *Store) DeleteStaleSessions(ctx context.Context, now, idleSince time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("expires_at <= ? OR last_seen_at <= ?", now, idleSince).Delete(&OperatorSession{})
	return res.RowsAffected, storeError(res.Error, "delete stale sessions")
}
