package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/views"
)

// listSessions shows the operator's own active sessions.
func (s *Server) listSessions(c echo.Context) error {
	op, rs := currentOperator(c), currentSession(c)
	list, err := s.sessions.List(c.Request().Context(), op.ID)
	if err != nil {
		return err
	}
	k := s.clock(c)
	var v views.SessionsView
	for _, sess := range list {
		v.Sessions = append(v.Sessions, views.SessionRow{
			ID: sess.ID, Browser: browserName(sess.UserAgent), Agent: sess.UserAgent, IP: sess.IP,
			Started: k.view(sess.CreatedAt), LastSeen: k.view(sess.LastSeenAt), Ends: k.view(sess.ExpiresAt),
			Current: sess.ID == rs.sess.ID,
		})
	}
	return render(c, http.StatusOK, views.SessionsPage(s.page(c, "Your sessions", ""), v))
}

// endSession signs out one of the operator's other sessions.
func (s *Server) endSession(c echo.Context) error {
	op, rs := currentOperator(c), currentSession(c)
	id := c.Param("id")
	if id == rs.sess.ID {
		return s.logout(c)
	}
	err := s.sessions.End(c.Request().Context(), op.ID, id)
	if errors.Is(err, models.ErrNotFound) {
		return s.redirectWithFlash(c, "/account/sessions", "error", "That session had already ended.")
	}
	if err != nil {
		return err
	}
	s.log.Info("session ended", "operator", op.ID, "session", id)
	return s.redirectWithFlash(c, "/account/sessions", "success", "That session was signed out.")
}

// endAllSessions signs the operator out everywhere, this browser included.
func (s *Server) endAllSessions(c echo.Context) error {
	op := currentOperator(c)
	n, err := s.sessions.EndAll(c.Request().Context(), op.ID, "")
	if err != nil {
		return err
	}
	s.log.Info("signed out everywhere", "operator", op.ID, "sessions", n)
	if err := s.signOut(c); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

// browserName describes a user agent in a few words ("Firefox on Linux").
func browserName(ua string) string {
	name := "A browser"
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"},
	} {
		if strings.Contains(ua, b.token) {
			name = b.name
			break
		}
	}
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			return name + " on " + o.name
		}
	}
	return name
}
