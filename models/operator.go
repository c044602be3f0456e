package models

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Operator is a person who signs in to the dashboard.
type Operator struct {
	ID           string `gorm:"primaryKey"`
	Email        string
	PasswordHash string
	// SessionEpoch counts password changes (sessions themselves are operator_sessions rows).
	SessionEpoch int
	LastLoginAt  *time.Time
	// AlertEmail: the operator gets alert e-mails (when grconnect has a mail server).
	AlertEmail bool
	CreatedAt  time.Time
	UpdatedAt  time.Time

	// TimeZone is the IANA zone the dashboard shows this operator's times in ("" is UTC).
	TimeZone string
	// Role is what the operator may do (admin or viewer).
	Role Role
}

// NormalizeEmail lowercases and trims an email address for storage and lookup.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CreateOperator inserts op (ID set when empty). A taken email gives ErrDuplicate.
func (s *Store) CreateOperator(ctx context.Context, op *Operator) error {
	if op.ID == "" {
		op.ID = NewID("op")
	}
	if op.Role == "" {
		op.Role = RoleAdmin
	}
	op.Email = NormalizeEmail(op.Email)
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) { return true, translate(tx.Create(op).Error) })
	return storeError(err, "create operator %s", op.ID)
}

// CreateFirstOperator inserts op only if no operator exists yet, atomically, and
// reports ErrDuplicate when setup was already done. Concurrent calls are serialized
// (on PostgreSQL by the operator guard's lock, on SQLite by the immediate write
// transaction), so two browsers racing through /setup never make two "first" operators.
func (s *Store) CreateFirstOperator(ctx context.Context, op *Operator) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.operatorGuard(tx); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&Operator{}).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return ErrDuplicate
		}
		if op.ID == "" {
			op.ID = NewID("op")
		}
		op.Role = RoleAdmin // the first operator sets everything up
		op.Email = NormalizeEmail(op.Email)
		if err := translate(tx.Create(op).Error); err != nil {
			return err
		}
		return writeAudit(ctx, tx)
	})
	return storeError(err, "create the first operator")
}

// operatorGuard serializes, for the rest of tx, the transactions that must see a
// stable number of operators and admins (the first one's creation, a removal, a
// role change): PostgreSQL's READ COMMITTED would let two of them count the same
// rows. On SQLite the immediate write transaction serializes them.
func (s *Store) operatorGuard(tx *gorm.DB) error {
	if !s.postgres {
		return nil
	}
	return tx.Exec("SELECT pg_advisory_xact_lock(7254614)").Error
}

// CountOperators returns how many operators exist.
func (s *Store) CountOperators(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&Operator{}).Count(&n).Error
	return n, storeError(err, "count operators")
}

// OperatorByID returns one operator.
func (s *Store) OperatorByID(ctx context.Context, id string) (*Operator, error) {
	var op Operator
	err := s.db.WithContext(ctx).Where("id = ?", id).First(&op).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch operator %s", id)
	}
	return &op, nil
}

// OperatorByEmail returns the operator with that email (case-insensitive).
func (s *Store) OperatorByEmail(ctx context.Context, email string) (*Operator, error) {
	var op Operator
	err := s.db.WithContext(ctx).Where("email = ?", NormalizeEmail(email)).First(&op).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch operator by email") // the address stays out of logs
	}
	return &op, nil
}

// ListOperators returns every operator, by email.
func (s *Store) ListOperators(ctx context.Context) ([]Operator, error) {
	var ops []Operator
	err := s.db.WithContext(ctx).Order("email").Find(&ops).Error
	return ops, storeError(err, "list operators")
}

// SetOperatorPassword stores a new hash and, in the same transaction, ends every
// session of the operator except keepSessionID (the one that changed it) and
// retires the reset links of and by the operator.
func (s *Store) SetOperatorPassword(ctx context.Context, id, hash, keepSessionID string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Operator{}).Where("id = ?", id).Updates(map[string]any{
			"password_hash": hash,
			"session_epoch": gorm.Expr("session_epoch + 1"),
			"updated_at":    Now(),
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		if err := deleteSessions(tx, id, keepSessionID).Error; err != nil {
			return err
		}
		if _, err := retirePasswordResets(tx, id); err != nil {
			return err
		}
		return writeAudit(ctx, tx)
	})
	return storeError(err, "set the password of operator %s", id)
}

// TouchOperatorLogin records a successful sign-in.
func (s *Store) TouchOperatorLogin(ctx context.Context, id string) error {
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) {
		res := tx.Model(&Operator{}).Where("id = ?", id).Update("last_login_at", Now())
		return res.RowsAffected > 0, res.Error
	})
	return storeError(err, "record sign-in of operator %s", id)
}

// DeleteOperator removes an operator, ends their sessions and retires the reset
// links of and by them and the invitations they made, unless it is the last
// operator (ErrLastOperator) or the last admin (ErrLastAdmin). Removals and role
// changes are serialized (see operatorGuard): two admins removing or demoting each
// other at once leave one admin.
func (s *Store) DeleteOperator(ctx context.Context, id string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.operatorGuard(tx); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&Operator{}).Count(&n).Error; err != nil {
			return err
		}
		if n <= 1 {
			return ErrLastOperator
		}
		if err := lastAdminCheck(tx, id); err != nil {
			return err
		}
		if err := deleteSessions(tx, id, "").Error; err != nil {
			return err
		}
		if _, err := retirePasswordResets(tx, id); err != nil {
			return err
		}
		if err := revokeInvitationsBy(tx, id, "their maker was removed"); err != nil {
			return err
		}
		res := tx.Where("id = ?", id).Delete(&Operator{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return writeAudit(ctx, tx)
	})
	return storeError(err, "delete operator %s", id)
}

// SetOperatorTimeZoneIfUnset stores a zone only for an operator who has none yet
// (a browser's report never replaces a zone chosen meanwhile).
func (s *Store) SetOperatorTimeZoneIfUnset(ctx context.Context, id, zone string) error {
	err := s.db.WithContext(ctx).Model(&Operator{}).Where("id = ? AND time_zone = ''", id).
		Updates(map[string]any{"time_zone": zone, "updated_at": Now()}).Error
	return storeError(err, "set the time zone of operator %s", id)
}

// SetOperatorTimeZone stores the IANA zone an operator's times are shown in.
func (s *Store) SetOperatorTimeZone(ctx context.Context, id, zone string) error {
	res := s.db.WithContext(ctx).Model(&Operator{}).Where("id = ?", id).Updates(map[string]any{"time_zone": zone, "updated_at": Now()})
	if res.Error == nil && res.RowsAffected == 0 {
		return storeError(ErrNotFound, "set the time zone of operator %s", id)
	}
	return storeError(res.Error, "set the time zone of operator %s", id)
}

// lastAdminCheck returns ErrLastAdmin when operator id is an admin and no other
// operator is; call it inside the operator guard.
func lastAdminCheck(tx *gorm.DB, id string) error {
	var others int64
	if err := tx.Model(&Operator{}).Where("role = ? AND id <> ?", RoleAdmin, id).Count(&others).Error; err != nil {
		return err
	}
	if others > 0 {
		return nil
	}
	var self int64
	if err := tx.Model(&Operator{}).Where("role = ? AND id = ?", RoleAdmin, id).Count(&self).Error; err != nil {
		return err
	}
	if self > 0 {
		return ErrLastAdmin
	}
	return nil
}

// SetOperatorRole gives operator id the role, unless that would leave no admin
// (ErrLastAdmin), and reports whether it changed. In the same transaction it
// retires the reset links of and by the operator (a link made before must not
// outlive a change of access), revokes the invitations they made when they stop
// being an admin, and writes ctx's audit entry. Serialized with removals (see
// operatorGuard), so two admins demoting each other at once leave one admin.
func (s *Store) SetOperatorRole(ctx context.Context, id string, role Role) (bool, error) {
	changed := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.operatorGuard(tx); err != nil {
			return err
		}
		var op Operator
		if err := tx.Where("id = ?", id).First(&op).Error; err != nil {
			return translate(err)
		}
		if op.Role == role {
			return nil
		}
		if role != RoleAdmin {
			if err := lastAdminCheck(tx, id); err != nil {
				return err
			}
			if err := revokeInvitationsBy(tx, id, "their maker is no longer an admin"); err != nil {
				return err
			}
		}
		if err := tx.Model(&Operator{}).Where("id = ?", id).Updates(map[string]any{"role": role, "updated_at": Now()}).Error; err != nil {
			return err
		}
		if _, err := retirePasswordResets(tx, id); err != nil {
			return err
		}
		changed = true
		return writeAudit(ctx, tx)
	})
	return changed, storeError(err, "set the role of operator %s", id)
}

// CountAdmins returns how many operators are admins.
func (s *Store) CountAdmins(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&Operator{}).Where("role = ?", RoleAdmin).Count(&n).Error
	return n, storeError(err, "count admins")
}
