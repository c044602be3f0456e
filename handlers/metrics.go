package handlers

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
)

// statusCounter counts connections per state.
type statusCounter interface {
	CountByStatus(ctx context.Context) (map[models.Status]int64, error)
}

// metrics exposes counters in the Prometheus text format, without a dependency.
type metrics struct {
	db        statusCounter
	responses [6]atomic.Int64 // by status class: index 1 = 1xx … 5 = 5xx
}

func newMetrics(db statusCounter) *metrics { return &metrics{db: db} }

func (m *metrics) observe(status int) {
	if c := status / 100; c >= 1 && c <= 5 {
		m.responses[c].Add(1)
	}
}

func (m *metrics) statusCounts(ctx context.Context) (map[models.Status]int64, error) {
	return m.db.CountByStatus(ctx)
}

func (s *Server) metricsHandler(c echo.Context) error {
	counts, err := s.metrics.statusCounts(c.Request().Context())
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# HELP grconnect_http_responses_total HTTP responses by status class.\n# TYPE grconnect_http_responses_total counter\n")
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&b, "grconnect_http_responses_total{class=\"%dxx\"} %d\n", i, s.metrics.responses[i].Load())
	}
	b.WriteString("# HELP grconnect_connections Connections by status.\n# TYPE grconnect_connections gauge\n")
	statuses := slices.Sorted(slices.Values(models.Statuses))
	for _, st := range statuses {
		fmt.Fprintf(&b, "grconnect_connections{status=%q} %d\n", st, counts[st])
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", []byte(b.String()))
}
