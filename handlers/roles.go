package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// selfServiceRoutes are the state-changing operator routes a viewer may use: they
// change only the viewer's own account, never what the install does. A viewer
// keeps their own password and sessions safe (a stolen session must be endable by
// its owner, whatever their role), and chooses how times are shown and whether
// alerts reach them by e-mail.
var selfServiceRoutes = map[string]bool{
	"/account/password":         true,
	"/account/time-zone":        true,
	"/account/alerts":           true,
	"/account/sessions/end-all": true,
	"/account/sessions/:id/end": true,
}

// viewerRefusal is what a viewer is told when they try to change something.
const viewerRefusal = "Viewers cannot change anything here: they see every page, and change only their own password, time zone, alert e-mails and sessions. Ask an admin to make this change, or to make you an admin."

// requireAdminToChange refuses every state-changing request of a viewer with 403,
// for every route of the operator group but the self-service ones: one check for
// the whole dashboard (test calls, bulk refreshes and the rest included), so a
// route added later is covered without a line of its own.
func (s *Server) requireAdminToChange(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if op := currentOperator(c); op != nil && !op.IsAdmin() && !selfServiceRoutes[c.Path()] {
			s.log.Info("viewer's change refused", "operator", op.ID, "route", c.Path())
			return echo.NewHTTPError(http.StatusForbidden, viewerRefusal)
		}
		return next(c)
	}
}
