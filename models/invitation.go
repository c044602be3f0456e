package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Invitation is a single-use link with which a new operator joins: they choose
// their own password, and get the role the invitation carries. Only a hash of
// the link's token is stored. Used and revoked invitations stay as history.
type Invitation struct {
	ID        string `gorm:"primaryKey"`
	Email     string
	Role      Role
	TokenHash string
	CreatedBy string // who made it, in words: an operator's e-mail
	// CreatedByID is the operator who made it: when they stop being an admin,
	// their open invitations are revoked.
	CreatedByID string
	ExpiresAt   time.Time
	UsedAt      *time.Time
	// OperatorID is the operator the invitation made, once used.
	OperatorID string
	RevokedAt  *time.Time
	RevokedBy  string // who revoked it, or why ("replaced by a newer invitation")
	CreatedAt  time.Time
}

// TableName names the table.
func (Invitation) TableName() string { return "operator_invitations" }

// Open reports whether the invitation can still be used at now.
func (i *Invitation) Open(now time.Time) bool {
	return i.UsedAt == nil && i.RevokedAt == nil && now.Before(i.ExpiresAt)
}

// openInvitation selects the invitations neither used nor revoked.
const openInvitation = "used_at IS NULL AND revoked_at IS NULL"

// CreateInvitation stores inv, revoking an open invitation to the same address (a
// new one replaces it), unless an operator already has the address (ErrDuplicate).
// ctx's audit entry is written with it.
func (s *Store) CreateInvitation(ctx context.Context, inv *Invitation) error {
	if inv.ID == "" {
		inv.ID = NewID("inv")
	}
	inv.Email = NormalizeEmail(inv.Email)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.operatorGuard(tx); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&Operator{}).Where("email = ?", inv.Email).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return ErrDuplicate
		}
		if err := tx.Model(&Invitation{}).Where("email = ? AND "+openInvitation, inv.Email).
			Updates(map[string]any{"revoked_at": inv.CreatedAt, "revoked_by": "replaced by a newer invitation"}).Error; err != nil {
			return err
		}
		if err := translate(tx.Create(inv).Error); err != nil {
			return err
		}
		return writeAudit(ctx, tx)
	})
	return storeError(err, "create an invitation")
}

// PendingInvitations returns the invitations that can still be used at now, newest first.
func (s *Store) PendingInvitations(ctx context.Context, now time.Time) ([]Invitation, error) {
	var out []Invitation
	err := s.db.WithContext(ctx).Where(openInvitation+" AND expires_at > ?", now).Order("created_at DESC, id").Find(&out).Error
	return out, storeError(err, "list pending invitations")
}

// InvitationByID returns one invitation, whatever its state.
func (s *Store) InvitationByID(ctx context.Context, id string) (*Invitation, error) {
	var inv Invitation
	if err := s.db.WithContext(ctx).Where("id = ?", id).First(&inv).Error; err != nil {
		return nil, storeError(translate(err), "fetch invitation %s", id)
	}
	return &inv, nil
}

// OpenInvitationByHash returns the invitation with that token hash when it can
// still be used at now, else ErrNotFound.
func (s *Store) OpenInvitationByHash(ctx context.Context, hash string, now time.Time) (*Invitation, error) {
	var inv Invitation
	err := s.db.WithContext(ctx).Where("token_hash = ? AND "+openInvitation+" AND expires_at > ?", hash, now).First(&inv).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch an invitation")
	}
	return &inv, nil
}

// RevokeInvitation revokes an open invitation; one used, revoked or unknown gives
// ErrNotFound. ctx's audit entry is written with it.
func (s *Store) RevokeInvitation(ctx context.Context, id, by string, now time.Time) error {
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) {
		res := tx.Model(&Invitation{}).Where("id = ? AND "+openInvitation, id).Updates(map[string]any{"revoked_at": now, "revoked_by": by})
		if res.Error == nil && res.RowsAffected == 0 {
			return false, ErrNotFound
		}
		return true, res.Error
	})
	return storeError(err, "revoke invitation %s", id)
}

// revokeInvitationsBy revokes the open invitations operator id made, inside the
// transaction of the change of their access.
func revokeInvitationsBy(tx *gorm.DB, id, why string) error {
	return tx.Model(&Invitation{}).Where("created_by_id = ? AND "+openInvitation, id).
		Updates(map[string]any{"revoked_at": Now(), "revoked_by": why}).Error
}

// AcceptInvitation uses the invitation with that token hash and creates op (its
// ID, password hash and time zone set by the caller) with the invitation's
// address and role, in one transaction with ctx's audit entry. An invitation that
// is unknown, used, revoked or expired gives ErrNotFound (of two concurrent uses,
// one wins); an address taken meanwhile, ErrDuplicate.
func (s *Store) AcceptInvitation(ctx context.Context, hash string, op *Operator, now time.Time) (*Invitation, error) {
	var inv Invitation
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("token_hash = ? AND "+openInvitation+" AND expires_at > ?", hash, now).First(&inv).Error; err != nil {
			return translate(err)
		}
		res := tx.Model(&Invitation{}).Where("id = ? AND "+openInvitation, inv.ID).
			Updates(map[string]any{"used_at": now, "operator_id": op.ID})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return ErrNotFound
		}
		op.Email, op.Role = inv.Email, inv.Role
		op.CreatedAt, op.UpdatedAt = now, now
		if err := translate(tx.Create(op).Error); err != nil {
			return err
		}
		inv.UsedAt, inv.OperatorID = &now, op.ID
		return writeAudit(ctx, tx)
	})
	if err != nil {
		return nil, storeError(err, "accept an invitation")
	}
	return &inv, nil
}
