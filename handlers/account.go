package handlers

import (
	"context"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// accountService is what the account page needs of the operators.
type accountService interface {
	SetTimeZone(ctx context.Context, id, zone string) error
	ReportTimeZone(ctx context.Context, id, zone string) error
}

// showAccount shows the signed-in operator's time zone and password links.
func (s *Server) showAccount(c echo.Context) error {
	return s.renderAccount(c, http.StatusOK, currentOperator(c).TimeZone, "")
}

func (s *Server) renderAccount(c echo.Context, status int, zone, problem string) error {
	op := currentOperator(c)
	zones := timeZones
	if zone != "" && !slices.Contains(zones, zone) {
		zones = append([]string{zone}, zones...) // a zone the browser reported that zone.tab lacks
	}
	k := clock{loc: s.zones.location(zone), now: s.clock(c).now}
	v := views.AccountView{Email: op.Email, Role: string(op.Role), RoleLabel: op.Role.Label(), RoleCan: op.Role.YouCan(),
		TimeZone: zone, Zones: zones, Error: problem, Now: k.text(k.now)}
	return render(c, status, views.AccountPage(s.page(c, "Your account", ""), v))
}

// setTimeZone stores the operator's time zone: chosen on the account page, or
// reported by the browser's script (auto=1, answered 204), which never replaces a
// zone already stored.
func (s *Server) setTimeZone(c echo.Context) error {
	op := currentOperator(c)
	zone, auto := c.FormValue("time_zone"), c.FormValue("auto") == "1"
	if auto && op.TimeZone != "" {
		return c.NoContent(http.StatusNoContent)
	}
	set := s.accounts.SetTimeZone
	if auto {
		set = s.accounts.ReportTimeZone
	}
	err := set(c.Request().Context(), op.ID, zone)
	if fe, ok := services.AsFieldErrors(err); ok {
		if auto {
			return c.NoContent(http.StatusUnprocessableEntity)
		}
		return s.renderAccount(c, http.StatusUnprocessableEntity, op.TimeZone, fe["time_zone"])
	}
	if err != nil {
		return err
	}
	if auto {
		return c.NoContent(http.StatusNoContent)
	}
	return s.redirectWithFlash(c, "/account", "success", "Times are now shown in "+zone+".")
}
