package handlers

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/sessions"
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
	gs    *sessions.Session // gorilla's view of it, for saving
}

// knownBrowserAge is how long a browser is remembered as one its operator signs in from.
const knownBrowserAge = 365 * 24 * time.Hour

// loadSession finds the session a request's cookie names (through the
// database-backed gorilla store), once per request, for the CSRF check,
// requireOperator and the page's flash message.
func (s *Server) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if skipCSRF(c) {
			return next(c) // probes, assets and the API have no sessions
		}
		gs, err := s.sessionStore.Get(c.Request(), s.cookies.session)
		switch {
		case errors.Is(err, errSessionEnded):
			c.SetCookie(s.cookies.cookie(s.cookies.session, "", -1)) // ended: forget it
			return next(c)
		case err != nil:
			return err
		case gs.IsNew:
			return next(c)
		}
		rs := &requestSession{gs: gs}
		rs.token, _ = gs.Values[valueToken].(string)
		rs.sess, _ = gs.Values[valueRow].(*models.OperatorSession)
		rs.op, _ = gs.Values[valueOperator].(*models.Operator)
		c.Set(ctxSession, rs)
		actAs(c, rs.op.Email)
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
	gs := sessions.NewSession(s.sessionStore, s.cookies.session)
	opts := s.sessionStore.options
	gs.Options = &opts
	gs.IsNew = true
	gs.Values[valueOperator] = op
	gs.Values[valueClient] = sessionClient{userAgent: c.Request().UserAgent(), ip: c.RealIP()}
	if err := gs.Save(c.Request(), c.Response()); err != nil {
		return err
	}
	if knownBrowser != "" {
		c.SetCookie(s.cookies.cookie(s.cookies.browser, knownBrowser, knownBrowserAge))
	}
	rs := &requestSession{gs: gs, op: op}
	rs.token, _ = gs.Values[valueToken].(string)
	rs.sess, _ = gs.Values[valueRow].(*models.OperatorSession)
	c.Set(ctxSession, rs)
	return nil
}

// signOut ends the request's session and forgets its cookie.
func (s *Server) signOut(c echo.Context) error {
	gs := sessions.NewSession(s.sessionStore, s.cookies.session)
	if rs := currentSession(c); rs != nil {
		gs = rs.gs
		c.Set(ctxSession, nil)
	}
	opts := s.sessionStore.options
	gs.Options = &opts
	gs.Options.MaxAge = -1
	return gs.Save(c.Request(), c.Response())
}

// setFlash stores a one-time message shown on the session's next page. Without a
// session there is nobody to show it to.
func (s *Server) setFlash(c echo.Context, kind, msg string) error {
	rs := currentSession(c)
	if rs == nil {
		return nil
	}
	delete(rs.gs.Values, flashKey)   // one message a page
	rs.gs.AddFlash(kind + ":" + msg) // the kind (success, error, warning) has no colon
	return rs.gs.Save(c.Request(), c.Response())
}

// popFlash returns and removes the session's pending message, if any.
func (s *Server) popFlash(c echo.Context) (kind, msg string, err error) {
	rs := currentSession(c)
	if rs == nil {
		return "", "", nil
	}
	flashes := rs.gs.Flashes()
	if len(flashes) == 0 {
		return "", "", nil
	}
	if err := rs.gs.Save(c.Request(), c.Response()); err != nil {
		return "", "", err
	}
	flash, _ := flashes[len(flashes)-1].(string)
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
