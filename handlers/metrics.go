package handlers

import (
	"bytes"
	"net/http"

	"github.com/labstack/echo/v4"
)

// metricsHandler serves the Prometheus figures from memory. Before the background
// reader's first pass (a server whose workers were not started) it reads them once.
func (s *Server) metricsHandler(c echo.Context) error {
	if s.metrics.Collected().IsZero() {
		if err := s.metrics.Collect(c.Request().Context()); err != nil {
			return err
		}
	}
	var b bytes.Buffer
	if err := s.metrics.WritePrometheus(&b); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", b.Bytes())
}
