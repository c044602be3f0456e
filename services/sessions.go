package services

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/grconnect/grconnect/models"
)

// Session lifetimes: a session ends SessionLifetime after sign-in whatever happens
// (activity never extends it), or after SessionIdle without a request.
const (
	SessionLifetime = 7 * 24 * time.Hour
	SessionIdle     = 12 * time.Hour
	// sessionTouchEvery bounds the writes that record a session's last use.
	sessionTouchEvery = time.Minute
)

// Sessions keeps operator sessions in the database: the browser holds a random
// token, the table its hash, so a session can be ended from anywhere, at once.
type Sessions struct {
	store *models.Store
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewSessions returns the session service.
func NewSessions(store *models.Store) *Sessions {
	return &Sessions{store: store, Now: models.Now}
}

// Start begins a session for op and returns the token for the browser's cookie
// (shown only here) and the session.
func (s *Sessions) Start(ctx context.Context, op *models.Operator, userAgent, ip string) (string, *models.OperatorSession, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	now := s.Now()
	sess := &models.OperatorSession{
		TokenHash: hashToken(token), OperatorID: op.ID, UserAgent: clip(userAgent, 300), IP: clip(ip, 64),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(SessionLifetime),
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", nil, err
	}
	return token, sess, nil
}

// Resume returns the valid session a browser's token names and its operator, or
// nils when there is none (unknown, ended, expired, idle, or the operator removed).
func (s *Sessions) Resume(ctx context.Context, token string) (*models.OperatorSession, *models.Operator, error) {
	if token == "" || len(token) > 100 {
		return nil, nil, nil
	}
	now := s.Now()
	sess, err := s.store.SessionByTokenHash(ctx, hashToken(token), now, now.Add(-SessionIdle))
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	op, err := s.store.OperatorByID(ctx, sess.OperatorID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if now.Sub(sess.LastSeenAt) >= sessionTouchEvery {
		// Best effort: a database refusing writes must not fail every page (the
		// dashboard's storage banner says what is wrong); the idle clock only
		// starts a minute late.
		if err := s.store.TouchSession(ctx, sess.ID, now); err == nil {
			sess.LastSeenAt = now
		} else if !errors.Is(err, models.ErrStorageUnavailable) {
			return nil, nil, err
		}
	}
	return sess, op, nil
}

// End ends one session of an operator (models.ErrNotFound when it is not theirs).
func (s *Sessions) End(ctx context.Context, operatorID, id string) error {
	ctx = models.Auditing(ctx, models.AuditSessionsEnded, TargetOperator, operatorID, "One session signed out from the sessions page")
	return s.store.DeleteSession(ctx, operatorID, id)
}

// SignOut ends the session an operator signs out of.
func (s *Sessions) SignOut(ctx context.Context, operatorID, id string) error {
	ctx = models.Auditing(ctx, models.AuditSignedOut, TargetOperator, operatorID, "Signed out")
	return s.store.DeleteSession(ctx, operatorID, id)
}

// EndAll ends every session of an operator except keepID ("" for all of them)
// and returns how many ended.
func (s *Sessions) EndAll(ctx context.Context, operatorID, keepID string) (int64, error) {
	details := "Signed out everywhere"
	if keepID != "" {
		details = "Every other session signed out"
	}
	ctx = models.Auditing(ctx, models.AuditSessionsEnded, TargetOperator, operatorID, details)
	return s.store.DeleteOperatorSessions(ctx, operatorID, keepID)
}

// List returns an operator's valid sessions, newest first.
func (s *Sessions) List(ctx context.Context, operatorID string) ([]models.OperatorSession, error) {
	now := s.Now()
	return s.store.OperatorSessions(ctx, operatorID, now, now.Add(-SessionIdle))
}

// SetFlash stores a one-time message for the session's next page.
func (s *Sessions) SetFlash(ctx context.Context, id, flash string) error {
	return s.store.SetSessionFlash(ctx, id, flash)
}

// Sweep deletes ended sessions (expired or idle).
func (s *Sessions) Sweep(ctx context.Context) (int64, error) {
	now := s.Now()
	return s.store.DeleteStaleSessions(ctx, now, now.Add(-SessionIdle))
}

// CSRFToken returns the CSRF token of the session a browser's token opens: a MAC of
// that secret token, so it is tied to the session, changes with it, and cannot be
// made by anyone who does not hold the session cookie.
func CSRFToken(sessionToken string) string {
	m := hmac.New(sha256.New, []byte(sessionToken))
	m.Write([]byte("grconnect/csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// clip shortens s to at most n bytes on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
