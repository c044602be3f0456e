package services

import (
	"context"
	"errors"
	"time"

	"github.com/grconnect/grconnect/models"
)

// ReauthWindow is how long a confirmed password covers a session's sensitive
// actions (as GitHub's sudo mode): a stolen session cookie alone cannot change an
// app's client secret or URLs, make API keys, or add, remove or reset operators.
const ReauthWindow = 10 * time.Minute

// ErrReauthRequired is returned by a sensitive change asked for without a
// confirmation of the operator's password in the last ReauthWindow.
var ErrReauthRequired = errors.New("confirm your password to make this change")

// Reauth is a signed-in operator confirming their own password in a session.
type Reauth struct {
	OperatorID, SessionID string
	Password              string
	IP                    string // the client's address (see GRCONNECT_TRUSTED_PROXIES)
}

// Reauthenticate checks a signed-in operator's password and, when it is right,
// records the confirmation on their session, which then covers sensitive actions
// until the returned time. It is throttled like a sign-in, per address and per
// operator (one count with password changes), so a stolen session cannot guess
// the password: past a limit it returns *ThrottledError without checking it. A
// wrong password returns FieldErrors on "current_password"; both are audited.
func (o *Operators) Reauthenticate(ctx context.Context, in Reauth) (time.Time, error) {
	op, err := o.store.OperatorByID(ctx, in.OperatorID)
	if err != nil {
		return time.Time{}, err
	}
	ipKey, opKey := "ip:"+throttleAddress(in.IP), "password:"+op.ID
	if err := o.reserve(ctx, ipKey, ipAttemptLimit, false); err != nil {
		return time.Time{}, err
	}
	if err := o.reserve(ctx, opKey, accountAttemptLimit, false); err != nil {
		return time.Time{}, err
	}
	if len(in.Password) > 1024 || !o.compare([]byte(op.PasswordHash), in.Password) {
		_ = RecordAudit(ctx, o.store, models.AuditReauthFailed, TargetOperator, op.ID, "Wrong password given to confirm a sensitive change")
		return time.Time{}, FieldErrors{"current_password": "This is not your password."}
	}
	if err := o.store.ClearLoginFailures(ctx, opKey); err != nil {
		return time.Time{}, err
	}
	if err := o.store.RefundLoginAttempt(ctx, ipKey); err != nil {
		return time.Time{}, err
	}
	now := models.Now()
	if err := o.store.SetSessionReauth(ctx, in.SessionID, now); err != nil {
		return time.Time{}, err
	}
	_ = RecordAudit(ctx, o.store, models.AuditReauthenticated, TargetOperator, op.ID,
		"Password confirmed for sensitive changes until "+now.Add(ReauthWindow).UTC().Format("15:04:05 UTC"))
	return now.Add(ReauthWindow), nil
}

// ReauthUntil returns when a session's last password confirmation stops covering
// sensitive actions, and whether it still does at the sessions' clock's now.
func (s *Sessions) ReauthUntil(sess *models.OperatorSession) (time.Time, bool) {
	if sess == nil || sess.ReauthAt == nil {
		return time.Time{}, false
	}
	until := sess.ReauthAt.Add(ReauthWindow)
	return until, s.Now().Before(until)
}
