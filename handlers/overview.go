package handlers

import (
	"net/http"

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
	for _, st := range models.DisplayStatuses {
		v.Statuses = append(v.Statuses, views.StatusCount{Status: string(st), Label: statusLabels[st], Count: counts[st]})
		v.Total += counts[st]
	}
	k := s.clock(c)
	now := k.now
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
		horizon, err := s.queries.TokenHorizon(ctx)
		if err != nil {
			return err
		}
		r := pickExpiryRange(now, horizon.LatestExpiry)
		buckets, err := s.expiry.histogram(ctx, s.queries, now, r.Span, r.Width)
		if err != nil {
			return err
		}
		stats, err := s.queries.RefreshStats(ctx, now, 7)
		if err != nil {
			return err
		}
		v.ExpiryChart, v.RefreshChart = expiryChart(buckets, r, k), refreshChart(stats)
		v.ShowCharts = true
	}
	for _, r := range expiring {
		v.Expiring = append(v.Expiring, connectionRow(r, k))
	}
	for _, r := range attention {
		v.Attention = append(v.Attention, connectionRow(r, k))
	}
	for _, e := range events {
		ev := views.OverviewEvent{EventRow: views.EventRow{Type: string(e.Type), Message: e.Message, Actor: e.Actor, At: k.view(e.CreatedAt)}, Account: e.AccountEmail}
		if e.ConnectionID != nil {
			ev.ConnectionID = *e.ConnectionID
		}
		v.Events = append(v.Events, ev)
	}
	return render(c, http.StatusOK, views.OverviewPage(s.page(c, "Overview", "overview"), v))
}
