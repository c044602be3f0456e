package handlers

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
)

// ctxSession is the echo.Context key of the request's *requestSession, and
// ctxOperator of the signed-in *models.Operator (set by requireOperator).
const (
	ctxSession  = "grconnect.session"
	ctxOperator = "grconnect.operator"
)

// sessionService is what the handlers need of the server-side sessions.
type sessionService interface {
	Start(ctx context.Context, op *models.Operator, userAgent, ip string) (string, *models.OperatorSession, error)
	Resume(ctx context.Context, token string) (*models.OperatorSession, *models.Operator, error)
	End(ctx context.Context, operatorID, id string) error
	SignOut(ctx context.Context, operatorID, id string) error
	EndAll(ctx context.Context, operatorID, keepID string) (int64, error)
	List(ctx context.Context, operatorID string) ([]models.OperatorSession, error)
	SetFlash(ctx context.Context, id, flash string) error
	ReauthUntil(sess *models.OperatorSession) (time.Time, bool)
}

// cookieNames are the names of grconnect's cookies: on an https base URL with the
// __Host- prefix, which browsers accept only from this host, Secure, for path /, so
// a sibling subdomain cannot plant one (a forged CSRF cookie, a fixed session).
type cookieNames struct {
	secure                        bool
	session, csrf, browser, oauth string
	oauthPath                     string
}

func newCookieNames(https bool) cookieNames {
	if https {
		return cookieNames{secure: true, session: "__Host-grconnect_session", csrf: "__Host-grconnect_csrf",
			browser: "__Host-grconnect_browser", oauth: "__Host-grconnect_oauth", oauthPath: "/"}
	}
	return cookieNames{session: "grconnect_session", csrf: "grconnect_csrf", browser: "grconnect_browser",
		oauth: "grconnect_oauth", oauthPath: "/oauth"}
}

// cookie returns an HttpOnly, SameSite=Lax cookie for path / (Secure on https).
func (n cookieNames) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: n.secure, SameSite: http.SameSiteLaxMode}
	switch {
	case maxAge < 0:
		ck.MaxAge = -1
	case maxAge > 0:
		ck.MaxAge = int(maxAge.Seconds())
	}
	return ck
}

// requestSession is the valid session a request's cookie names.
type requestSession struct {
	token string // the cookie's secret token
	sess  *models.OperatorSession
	op    *models.Operator
}

// knownBrowserAge is how long a browser is remembered as one its operator signs in from.
const knownBrowserAge = 365 * 24 * time.Hour

// loadSession finds the session a request's cookie names, once per request, for
// the CSRF check, requireOperator and the page's flash message.
func (s *Server) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if skipCSRF(c) {
			return next(c) // probes, assets and the API have no sessions
		}
		ck, err := c.Cookie(s.cookies.session)
		if err != nil || ck.Value == "" {
			return next(c)
		}
		sess, op, err := s.sessions.Resume(c.Request().Context(), ck.Value)
		if err != nil {
			return err
		}
		if sess == nil {
			c.SetCookie(s.cookies.cookie(s.cookies.session, "", -1)) // ended: forget it
			return next(c)
		}
		c.Set(ctxSession, &requestSession{token: ck.Value, sess: sess, op: op})
		actAs(c, op.Email)
		return next(c)
	}
}

// currentSession returns the request's valid session, or nil.
func currentSession(c echo.Context) *requestSession {
	rs, _ := c.Get(ctxSession).(*requestSession)
	return rs
}

// signIn starts a new session for op (ending the browser's previous one) and
// remembers the browser as one op signs in from.
func (s *Server) signIn(c echo.Context, op *models.Operator, knownBrowser string) error {
	ctx := c.Request().Context()
	if old := currentSession(c); old != nil {
		if err := s.sessions.End(ctx, old.op.ID, old.sess.ID); err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
	}
	token, sess, err := s.sessions.Start(ctx, op, c.Request().UserAgent(), c.RealIP())
	if err != nil {
		return err
	}
	// The row decides when the session ends; the cookie only lasts as long.
	c.SetCookie(s.cookies.cookie(s.cookies.session, token, sess.ExpiresAt.Sub(sess.CreatedAt)))
	if knownBrowser != "" {
		c.SetCookie(s.cookies.cookie(s.cookies.browser, knownBrowser, knownBrowserAge))
	}
	c.Set(ctxSession, &requestSession{token: token, sess: sess, op: op})
	return nil
}

// signOut ends the request's session.
func (s *Server) signOut(c echo.Context) error {
	if rs := currentSession(c); rs != nil {
		if err := s.sessions.SignOut(c.Request().Context(), rs.op.ID, rs.sess.ID); err != nil && !errors.Is(err, models.ErrNotFound) {
			return err
		}
		c.Set(ctxSession, nil)
	}
	c.SetCookie(s.cookies.cookie(s.cookies.session, "", -1))
	return nil
}

// setFlash stores a one-time message shown on the session's next page. Without a
// session there is nobody to show it to.
func (s *Server) setFlash(c echo.Context, kind, msg string) error {
	rs := currentSession(c)
	if rs == nil {
		return nil
	}
	flash := kind + ":" + msg // the kind (success, error, warning) has no colon
	if err := s.sessions.SetFlash(c.Request().Context(), rs.sess.ID, flash); err != nil {
		return err
	}
	rs.sess.Flash = flash
	return nil
}

// popFlash returns and removes the session's pending message, if any.
func (s *Server) popFlash(c echo.Context) (kind, msg string, err error) {
	rs := currentSession(c)
	if rs == nil || rs.sess.Flash == "" {
		return "", "", nil
	}
	flash := rs.sess.Flash
	if err := s.sessions.SetFlash(c.Request().Context(), rs.sess.ID, ""); err != nil {
		return "", "", err
	}
	rs.sess.Flash = ""
	kind, msg, _ = strings.Cut(flash, ":")
	return kind, msg, nil
}

// csrf refuses a state-changing request that a page of grconnect did not send:
// one a browser marks as coming from another site, even a sibling subdomain
// (Sec-Fetch-Site: same-site or cross-site), or without the page's token. With a
// session the token is derived from the session's secret (services.CSRFToken), so
// it changes at every sign-in and no cookie planted by a sibling site can match
// it; without one (sign-in, setup, the customer's connect page) it is a random
// value double-submitted in a cookie.
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if skipCSRF(c) {
			return next(c)
		}
		var token string
		if rs := currentSession(c); rs != nil {
			token = services.CSRFToken(rs.token)
		} else if ck, err := c.Cookie(s.cookies.csrf); err == nil && len(ck.Value) >= 32 && len(ck.Value) <= 64 {
			token = ck.Value
		} else {
			token = models.RandomToken(24)
			c.SetCookie(s.cookies.cookie(s.cookies.csrf, token, 0))
		}
		c.Set(ctxCSRF, token)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			return next(c)
		}
		if site := c.Request().Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			return echo.NewHTTPError(http.StatusForbidden, "This request came from another site, so it was refused. Use grconnect's own pages.")
		}
		sent := c.Request().Header.Get("X-CSRF-Token")
		if sent == "" {
			sent = c.FormValue("_csrf")
		}
		if subtle.ConstantTimeCompare([]byte(sent), []byte(token)) != 1 {
			return echo.NewHTTPError(http.StatusForbidden, "This form has expired or did not come from grconnect. Go back, reload the page and try again.")
		}
		return next(c)
	}
}

// ctxCSRF is the echo.Context key of the request's CSRF token, for the page's forms.
const ctxCSRF = "grconnect.csrf"

// requireOperator lets only signed-in operators through; others go to the sign-in
// page (or to /setup on a fresh install) and come back afterwards.
func (s *Server) requireOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rs := currentSession(c)
		if rs == nil {
			return s.redirectToLogin(c)
		}
		c.Set(ctxOperator, rs.op)
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
