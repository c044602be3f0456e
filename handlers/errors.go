package handlers

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/views"
)

// handleError is the one place errors become responses: a JSON body under /api/
// (see writeAPIError), a templ error page elsewhere. 5xx are logged; their details
// never reach the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if strings.HasPrefix(c.Request().URL.Path, "/api/") {
		s.writeAPIError(c, err)
		return
	}
	status, msg := http.StatusInternalServerError, "Something went wrong on our side. It has been logged; please try again."
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he):
		status = he.Code
		if m, ok := he.Message.(string); ok && status < 500 {
			msg = m
		} else if status < 500 {
			msg = http.StatusText(status)
		}
	case errors.Is(err, models.ErrNotFound):
		status, msg = http.StatusNotFound, "There is nothing here. It may have been deleted."
	case errors.Is(err, models.ErrStorageUnavailable):
		status, msg = http.StatusServiceUnavailable, "grconnect's database is unavailable right now ("+models.StorageProblemOf(err).Describe()+"). Nothing was changed; try again in a moment."
		c.Response().Header().Set("Retry-After", "10")
	}
	if status >= 500 {
		// The route pattern, not the path: a path may carry a connect-link token.
		s.log.Error("request failed", slog.String("method", c.Request().Method), slog.String("route", c.Path()), slog.String("error", err.Error()),
			slog.String("request_id", requestIDOf(c)))
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	v := errorView(status, msg)
	v.RequestID = requestIDOf(c)
	if rerr := render(c, status, views.ErrorPage(s.page(c, v.Heading, ""), v)); rerr != nil {
		s.log.Error("render error page", "error", rerr)
		_ = c.String(status, fmt.Sprintf("%d %s", status, http.StatusText(status)))
	}
}

func errorView(status int, msg string) views.ErrorView {
	v := views.ErrorView{Status: status, Heading: http.StatusText(status), Message: msg}
	switch status {
	case http.StatusNotFound:
		v.Heading, v.ActionURL, v.ActionLabel = "Page not found", "/", "Go to the overview"
	case http.StatusForbidden:
		v.Heading = "Request refused"
	case http.StatusTooManyRequests:
		v.Heading = "Slow down"
	case http.StatusGone:
		v.Heading = "This link no longer works"
	}
	return v
}
