package handlers

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/services/infra/metrics"
)

// metricsHandler serves the Prometheus figures from memory. Before the background
// reader's first pass (a server whose workers were not started) it reads them once.
//
// With GRCONNECT_METRICS_TOKEN set, a scrape must send it as a bearer token.
func (s *Server) metricsHandler(c echo.Context) error {
	if want := s.cfg.MetricsToken; want != "" {
		got, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="grconnect metrics"`)
			return c.String(http.StatusUnauthorized, "401 Unauthorized: send Authorization: Bearer <GRCONNECT_METRICS_TOKEN>\n")
		}
	}
	if s.metrics.Collected().IsZero() {
		if err := s.metrics.CollectFirst(c.Request().Context()); err != nil {
			return err
		}
	}
	// WritePrometheus builds the whole body before its one Write.
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, metrics.ContentType)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	return s.metrics.WritePrometheus(c.Response())
}
