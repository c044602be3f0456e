package services

import (
	"context"
	"errors"
	"time"

	"github.com/grconnect/grconnect/models"
)

// PasswordResetTTL is how long a password reset link works: long enough to pass
// it on to a colleague and use it, short enough that a link seen in a chat log
// or a browser history tomorrow opens nothing.
const PasswordResetTTL = time.Hour

// ErrResetLinkInvalid is returned for a password reset link that is unknown, used,
// expired, replaced by a newer one, or retired by a change of its operator's access.
var ErrResetLinkInvalid = errors.New("this password reset link is not valid: it was used, replaced or has expired")

// PasswordResetLink is a new one-time link's token, shown once; grconnect keeps
// only its hash.
type PasswordResetLink struct {
	Token     string
	Operator  *models.Operator
	ExpiresAt time.Time
}

// CreatePasswordReset makes a one-time link for the operator with that email,
// valid for PasswordResetTTL, on behalf of by (nil: the command line). A newer
// link replaces an unused older one. The link's creation is audited with ctx's
// actor. An unknown email gives models.ErrNotFound.
func (o *Operators) CreatePasswordReset(ctx context.Context, email string, by *models.Operator) (*PasswordResetLink, error) {
	op, err := o.store.OperatorByEmail(ctx, models.NormalizeEmail(email))
	if err != nil {
		return nil, err
	}
	token := models.RandomToken(32) // 256 bits
	now := models.Now()
	r := &models.PasswordReset{OperatorID: op.ID, TokenHash: hashToken(token), CreatedBy: CLIActor, ExpiresAt: now.Add(PasswordResetTTL), CreatedAt: now}
	if by != nil {
		r.CreatedBy, r.CreatedByID = by.Email, by.ID
	}
	ctx = auditing(ctx, models.AuditResetLinkCreated, TargetOperator, op.ID,
		"Password reset link made for "+op.Email+", valid until "+r.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")+"; older unused links of theirs retired")
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
// session of the operator ends and their other links are retired. The use is
// audited: the holder of the link acts as its operator, from ctx's address.
// Problems with the password come back as FieldErrors on "password" and
// "password_confirm"; a link that no longer works as ErrResetLinkInvalid.
func (o *Operators) ResetPassword(ctx context.Context, token, password, confirm string) (*models.Operator, error) {
	op, err := o.OpenPasswordReset(ctx, token)
	if err != nil {
		return nil, err
	}
	fe := FieldErrors{}
	hash, err := o.passwordHash(fe, password, confirm)
	if err != nil {
		return nil, err
	}
	if a, ok := ActorOf(ctx); ok {
		ctx = WithActor(ctx, Actor{Name: op.Email, IP: a.IP})
	}
	ctx = auditing(ctx, models.AuditResetLinkUsed, TargetOperator, op.ID,
		"Password of "+op.Email+" set through a reset link; their sessions ended and other links retired")
	used, err := o.store.UsePasswordReset(ctx, hashToken(token), hash, models.Now())
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrResetLinkInvalid
	}
	return used, err
}

// RetireResetLinks retires every outstanding reset link of operator id and every
// one they made. Password changes, "sign out everywhere", removals and role
// changes (SetRole) do it in their own transaction; a change of an operator's
// access made elsewhere calls this.
func (o *Operators) RetireResetLinks(ctx context.Context, id string) (int64, error) {
	return o.store.RetirePasswordResets(ctx, id)
}
