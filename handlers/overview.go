package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/views"
)

var statusLabels = map[string]string{
	models.StatusActive:         "Active",
	models.StatusRefreshFailing: "Refresh failing",
	models.StatusNeedsReconnect: "Needs reconnect",
	models.StatusDisconnected:   "Disconnected",
}

func (s *Server) overview(c echo.Context) error {
	ctx := c.Request().Context()
	apps, err := s.apps.List(ctx)
	if err != nil {
		return err
	}
	counts, err := s.metrics.statusCounts(ctx)
	if err != nil {
		return err
	}
	v := views.OverviewView{Apps: len(apps)}
	for _, st := range models.Statuses {
		v.Statuses = append(v.Statuses, views.StatusCount{Status: st, Label: statusLabels[st], Count: counts[st]})
		v.Total += counts[st]
	}
	return render(c, http.StatusOK, views.OverviewPage(s.page(c, "Overview", "overview"), v))
}
