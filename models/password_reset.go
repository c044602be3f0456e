package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// PasswordReset is a one-time link that lets an operator who forgot their password
// choose a new one. Only a hash of its token is stored.
type PasswordReset struct {
	ID         string `gorm:"primaryKey"`
	OperatorID string
	TokenHash  string
	CreatedBy  string // who made it, in words: an operator's e-mail or "cli"
	// CreatedByID is the operator who made it ("" for the command line).
	CreatedByID string
	ExpiresAt   time.Time
	UsedAt      *time.Time
	CreatedAt   time.Time
}

// CreatePasswordReset stores r and retires every other unused link of the same
// operator: only the newest link works. ctx's audit entry is written with it.
func (s *Store) CreatePasswordReset(ctx context.Context, r *PasswordReset) error {
	if r.ID == "" {
		r.ID = NewID("pwr")
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("operator_id = ? AND used_at IS NULL", r.OperatorID).Delete(&PasswordReset{}).Error; err != nil {
			return err
		}
		if err := translate(tx.Create(r).Error); err != nil {
			return err
		}
		return writeAudit(ctx, tx)
	})
	return storeError(err, "create a password reset link for operator %s", r.OperatorID)
}

// RetirePasswordResets retires every unused reset link of operator id, and every
// one they made, and returns how many. Call it whenever an operator's access
// changes (a new password, signing out everywhere, removal, a new role): a link
// made before must not outlive the change.
func (s *Store) RetirePasswordResets(ctx context.Context, id string) (int64, error) {
	var n int64
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) {
		var err error
		n, err = retirePasswordResets(tx, id)
		return n > 0, err
	})
	return n, storeError(err, "retire the password reset links of operator %s", id)
}

// retirePasswordResets is RetirePasswordResets inside a transaction of the change
// that calls for it. Used links stay as history; unused ones are deleted.
func retirePasswordResets(tx *gorm.DB, id string) (int64, error) {
	res := tx.Where("used_at IS NULL AND (operator_id = ? OR created_by_id = ?)", id, id).Delete(&PasswordReset{})
	return res.RowsAffected, res.Error
}

// PasswordResetByHash returns the unused, unexpired link with that token hash, or
// ErrNotFound.
func (s *Store) PasswordResetByHash(ctx context.Context, hash string, now time.Time) (*PasswordReset, error) {
	var r PasswordReset
	err := s.db.WithContext(ctx).Where("token_hash = ? AND used_at IS NULL AND expires_at > ?", hash, now).First(&r).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch a password reset link")
	}
	return &r, nil
}

// UsePasswordReset consumes the link with that token hash and sets its operator's
// password in one transaction, ending every session of the operator and retiring
// their other links; ctx's audit entry is written with it. A link that is unknown,
// used or expired gives ErrNotFound; of two concurrent uses, one wins.
func (s *Store) UsePasswordReset(ctx context.Context, hash, passwordHash string, now time.Time) (*Operator, error) {
	var op Operator
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var r PasswordReset
		if err := tx.Where("token_hash = ? AND used_at IS NULL AND expires_at > ?", hash, now).First(&r).Error; err != nil {
			return translate(err)
		}
		res := tx.Model(&PasswordReset{}).Where("id = ? AND used_at IS NULL", r.ID).Update("used_at", now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return ErrNotFound
		}
		res = tx.Model(&Operator{}).Where("id = ?", r.OperatorID).Updates(map[string]any{
			"password_hash": passwordHash,
			"session_epoch": gorm.Expr("session_epoch + 1"),
			"updated_at":    now,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		// Every session the operator had ends: whoever holds them no longer should.
		if err := deleteSessions(tx, r.OperatorID, "").Error; err != nil {
			return err
		}
		if _, err := retirePasswordResets(tx, r.OperatorID); err != nil {
			return err
		}
		if err := tx.Where("id = ?", r.OperatorID).First(&op).Error; err != nil {
			return err
		}
		return writeAudit(ctx, tx)
	})
	if err != nil {
		return nil, storeError(err, "use a password reset link")
	}
	return &op, nil
}
