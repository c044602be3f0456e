package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/views"
)

func (s *Server) overview(c echo.Context) error {
	ctx := c.Request().Context()
	apps, err := s.apps.List(ctx)
	if err != nil {
		return err
	}
	counts, err := s.queries.CountByStatus(ctx)
	if err != nil {
		return err
	}
	v := views.OverviewView{Apps: len(apps)}
	for _, st := range models.Statuses {
		v.Statuses = append(v.Statuses, views.StatusCount{Status: string(st), Label: statusLabels[st], Count: counts[st]})
		v.Total += counts[st]
	}
	now := time.Now()
	expiring, err := s.queries.ConnectionsBy(ctx, []models.Status{models.StatusActive, models.StatusRefreshFailing}, 5)
	if err != nil {
		return err
	}
	attention, err := s.queries.ConnectionsBy(ctx, []models.Status{models.StatusRefreshFailing, models.StatusNeedsReconnect}, 10)
	if err != nil {
		return err
	}
	events, err := s.queries.RecentEvents(ctx, 10)
	if err != nil {
		return err
	}
	if v.Total > 0 {
		buckets, err := s.queries.ExpiryHistogram(ctx, now.UTC().Truncate(time.Hour), 24*time.Hour, time.Hour)
		if err != nil {
			return err
		}
		stats, err := s.queries.RefreshStats(ctx, now, 7)
		if err != nil {
			return err
		}
		v.ExpiryChart, v.RefreshChart = expiryChart(buckets), refreshChart(stats)
		v.ShowCharts = true
	}
	for _, r := range expiring {
		v.Expiring = append(v.Expiring, connectionRow(r, now))
	}
	for _, r := range attention {
		v.Attention = append(v.Attention, connectionRow(r, now))
	}
	for _, e := range events {
		ev := views.OverviewEvent{EventRow: views.EventRow{Type: string(e.Type), Message: e.Message, Actor: e.Actor, At: timeView(e.CreatedAt, now)}, Account: e.AccountEmail}
		if e.ConnectionID != nil {
			ev.ConnectionID = *e.ConnectionID
		}
		v.Events = append(v.Events, ev)
	}
	return render(c, http.StatusOK, views.OverviewPage(s.page(c, "Overview", "overview"), v))
}
