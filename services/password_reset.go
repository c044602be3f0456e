package services

import (
	"context"
	"errors"
	"time"

	"github.com/grconnect/grconnect/models"
)

// PasswordResetTTL is how long a password reset link works.
const PasswordResetTTL = 24 * time.Hour

// ErrResetLinkInvalid is returned for a password reset link that is unknown, used,
// expired or replaced by a newer one.
var ErrResetLinkInvalid = errors.New("this password reset link is not valid: it was used, replaced or has expired")

// PasswordResetLink is a new one-time link's token, shown once; grconnect keeps
// only its hash.
type PasswordResetLink struct {
	Token     string
	Operator  *models.Operator
	ExpiresAt time.Time
}

// CreatePasswordReset makes a one-time link for the operator with that email,
// valid for PasswordResetTTL, on behalf of createdBy ("command line" or an
// operator's email). A newer link replaces an unused older one. An unknown email
// gives models.ErrNotFound.
func (o *Operators) CreatePasswordReset(ctx context.Context, email, createdBy string) (*PasswordResetLink, error) {
	op, err := o.store.OperatorByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	token := models.RandomToken(32) // 256 bits
	now := models.Now()
	r := &models.PasswordReset{OperatorID: op.ID, TokenHash: hashToken(token), CreatedBy: createdBy, ExpiresAt: now.Add(PasswordResetTTL), CreatedAt: now}
	if err := o.store.CreatePasswordReset(ctx, r); err != nil {
		return nil, err
	}
	return &PasswordResetLink{Token: token, Operator: op, ExpiresAt: r.ExpiresAt}, nil
}

// OpenPasswordReset returns the operator a still-valid link is for, or
// ErrResetLinkInvalid.
func (o *Operators) OpenPasswordReset(ctx context.Context, token string) (*models.Operator, error) {
	r, err := o.store.PasswordResetByHash(ctx, hashToken(token), models.Now())
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrResetLinkInvalid
	}
	if err != nil {
		return nil, err
	}
	return o.store.OperatorByID(ctx, r.OperatorID)
}

// ResetPassword sets a new password through a link and uses the link up; every
// session of the operator ends. Problems with the password come back as
// FieldErrors on "password" and "password_confirm"; a link that no longer works as
// ErrResetLinkInvalid.
func (o *Operators) ResetPassword(ctx context.Context, token, password, confirm string) (*models.Operator, error) {
	if _, err := o.OpenPasswordReset(ctx, token); err != nil {
		return nil, err
	}
	fe := FieldErrors{}
	hash, err := o.passwordHash(fe, password, confirm)
	if err != nil {
		return nil, err
	}
	op, err := o.store.UsePasswordReset(ctx, hashToken(token), hash, models.Now())
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrResetLinkInvalid
	}
	return op, err
}
