package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// reauthService checks a signed-in operator's own password for sensitive actions.
type reauthService interface {
	Reauthenticate(ctx context.Context, in services.Reauth) (time.Time, error)
}

// reauthField is the form field that carries the operator's password on the same
// POST as the sensitive change (PRODUCT.md: one POST carries both).
const reauthField = "current_password"

// ctxReauthError is the echo.Context key of why this request's re-authentication
// failed, which s.page hands to views.ReauthField.
const ctxReauthError = "grconnect.reauth_error"

// reauth is the outcome of a sensitive request's re-authentication.
type reauth struct {
	// confirmed: the session confirmed the password within services.ReauthWindow,
	// or this request carried it (the session now has, from this moment).
	confirmed bool
	// typed: the request carried a password (confirmed or not).
	typed bool
	// problem says why not, for views.ReauthField; status is the answer of a
	// refusal: 403 (no or a wrong password), 429 (too many attempts).
	problem string
	status  int
}

// refuse keeps r's problem for the page's views.ReauthField and returns the
// status to answer with; the handler renders its own form.
func (r reauth) refuse(c echo.Context) int {
	c.Set(ctxReauthError, r.problem)
	return r.status
}

// reauthenticate is the one check of sensitive actions (as GitHub's sudo mode):
// the signed-in operator's session confirmed their password in the last
// services.ReauthWindow, or the form carries it in current_password, checked
// (throttled like a sign-in) and then good for the window. A password typed is
// checked even within the window, so a wrong one is refused. Handlers of changes
// that always need it answer !r.confirmed with their form, r.refuse(c) as status.
func (s *Server) reauthenticate(c echo.Context) (reauth, error) {
	rs := currentSession(c)
	if rs == nil {
		return reauth{problem: "Sign in again.", status: http.StatusForbidden}, nil
	}
	password := c.FormValue(reauthField)
	if password == "" {
		if _, fresh := s.sessions.ReauthUntil(rs.sess); fresh {
			return reauth{confirmed: true}, nil
		}
		return reauth{problem: "Enter your password to confirm this change.", status: http.StatusForbidden}, nil
	}
	at, err := s.reauth.Reauthenticate(c.Request().Context(), services.Reauth{
		OperatorID: rs.op.ID, SessionID: rs.sess.ID, Password: password, IP: c.RealIP(),
	})
	var throttled *services.ThrottledError
	switch {
	case errors.As(err, &throttled):
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(throttled.RetryAfter.Seconds())+1))
		s.log.Warn("re-authentication throttled", "operator", rs.op.ID, "ip", c.RealIP())
		return reauth{typed: true, problem: throttled.Error(), status: http.StatusTooManyRequests}, nil
	case err != nil:
		if fe, ok := services.AsFieldErrors(err); ok {
			s.log.Info("re-authentication failed", "operator", rs.op.ID, "ip", c.RealIP())
			return reauth{typed: true, problem: fe[reauthField], status: http.StatusForbidden}, nil
		}
		return reauth{}, err
	}
	confirmedAt := at.Add(-services.ReauthWindow)
	rs.sess.ReauthAt = &confirmedAt // the page this request renders says so
	return reauth{confirmed: true, typed: true}, nil
}

// reauthView is the page's views.Reauth: how long the session's confirmation lasts
// and why this request's was refused.
func (s *Server) reauthView(c echo.Context) views.Reauth {
	var v views.Reauth
	v.Error, _ = c.Get(ctxReauthError).(string)
	if rs := currentSession(c); rs != nil {
		if until, fresh := s.sessions.ReauthUntil(rs.sess); fresh {
			v.Until = s.clock(c).text(until)
		}
	}
	return v
}
