package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/secrets"
)

const (
	sessionCookie = "grconnect_session"
	sessionMaxAge = 12 * 60 * 60 // seconds; a signed-in session lasts 12 hours
	// ctxOperator is the echo.Context key of the signed-in *models.Operator.
	ctxOperator = "grconnect.operator"
)

// operatorLookup finds the operator a session belongs to.
type operatorLookup interface {
	Get(ctx context.Context, id string) (*models.Operator, error)
}

// sessionManager keeps the operator's signed, encrypted session cookie. Its keys
// derive from the secret key, so every replica sharing the key accepts the cookie.
type sessionManager struct {
	store *sessions.CookieStore
	ops   operatorLookup
}

func newSessionManager(box *secrets.Box, secure bool, ops operatorLookup) *sessionManager {
	store := sessions.NewCookieStore(box.Derive("session-auth"), box.Derive("session-enc"))
	store.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   sessionMaxAge,
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	store.MaxAge(sessionMaxAge)
	return &sessionManager{store: store, ops: ops}
}

func (m *sessionManager) get(c echo.Context) *sessions.Session {
	// A cookie that no longer decodes (keys changed, tampered) gives a new, empty session.
	sess, _ := m.store.Get(c.Request(), sessionCookie)
	return sess
}

// signIn starts a session for op.
func (m *sessionManager) signIn(c echo.Context, op *models.Operator) error {
	sess := m.get(c)
	for k := range sess.Values {
		delete(sess.Values, k)
	}
	sess.Values["op"] = op.ID
	sess.Values["epoch"] = op.SessionEpoch
	return sess.Save(c.Request(), c.Response())
}

// setEpoch keeps the current session alive across the operator's own password change.
func (m *sessionManager) setEpoch(c echo.Context, epoch int) error {
	sess := m.get(c)
	sess.Values["epoch"] = epoch
	return sess.Save(c.Request(), c.Response())
}

// signOut ends the session.
func (m *sessionManager) signOut(c echo.Context) error {
	sess := m.get(c)
	sess.Options.MaxAge = -1
	return sess.Save(c.Request(), c.Response())
}

// setFlash stores a one-time message shown on the next page.
func (m *sessionManager) setFlash(c echo.Context, kind, msg string) error {
	sess := m.get(c)
	sess.AddFlash(kind + "\x00" + msg)
	return sess.Save(c.Request(), c.Response())
}

// popFlash returns and removes the pending message, if any.
func (m *sessionManager) popFlash(c echo.Context) (kind, msg string, err error) {
	sess := m.get(c)
	flashes := sess.Flashes()
	if len(flashes) == 0 {
		return "", "", nil
	}
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		return "", "", err
	}
	s, _ := flashes[len(flashes)-1].(string)
	kind, msg, _ = strings.Cut(s, "\x00")
	return kind, msg, nil
}

// operator returns the operator of a valid session, or nil.
func (m *sessionManager) operator(c echo.Context) (*models.Operator, error) {
	sess := m.get(c)
	id, _ := sess.Values["op"].(string)
	epoch, _ := sess.Values["epoch"].(int)
	if id == "" {
		return nil, nil
	}
	op, err := m.ops.Get(c.Request().Context(), id)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil // removed operators are signed out at once
	}
	if err != nil {
		return nil, err
	}
	if op.SessionEpoch != epoch {
		return nil, nil // the password changed since this session began
	}
	return op, nil
}

// requireOperator lets only signed-in operators through; others go to the sign-in
// page (or to /setup on a fresh install) and come back afterwards.
func (s *Server) requireOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		op, err := s.sessions.operator(c)
		if err != nil {
			return err
		}
		if op == nil {
			return s.redirectToLogin(c)
		}
		c.Set(ctxOperator, op)
		return next(c)
	}
}

func (s *Server) redirectToLogin(c echo.Context) error {
	ctx := c.Request().Context()
	if fresh, err := s.operators.NeedsSetup(ctx); err != nil {
		return err
	} else if fresh {
		return c.Redirect(http.StatusSeeOther, "/setup")
	}
	target := "/login"
	if r := c.Request(); r.Method == http.MethodGet && r.URL.Path != "/" {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	return c.Redirect(http.StatusSeeOther, target)
}

// currentOperator returns the signed-in operator set by requireOperator.
func currentOperator(c echo.Context) *models.Operator {
	op, _ := c.Get(ctxOperator).(*models.Operator)
	return op
}

// safeNext accepts only a local path as a post-sign-in destination: it parses with
// no scheme and no host, starts with exactly one "/", and holds no control byte,
// space, DEL or backslash (browsers drop tabs and newlines and read "\" as "/", so
// "/\t/evil.example" would become "//evil.example"). Anything else gives "/".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if b := next[i]; b < 0x21 || b == 0x7f || b == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	return next
}
