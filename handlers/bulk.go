package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/tokens"
	"github.com/grconnect/grconnect/views"
)

var scopeLabels = map[string]string{
	models.ScopeFailing:  "failing connections",
	models.ScopeExpiring: "connections expiring soon",
}

// bulkOffer says what each bulk refresh would do now, for the connections page.
func (s *Server) bulkOffer(ctx context.Context) (views.BulkOffer, error) {
	p, err := s.bulk.Preview(ctx)
	if err != nil {
		return views.BulkOffer{}, err
	}
	reach := "the hour"
	if p.Window != time.Hour {
		reach = strconv.Itoa(int(p.Window.Minutes())) + " min"
	}
	return views.BulkOffer{Failing: p.Failing, Expiring: p.Expiring, ExpiringLabel: "Expiring within " + reach}, nil
}

func (s *Server) startBulkRefresh(c echo.Context) error {
	job, err := s.bulk.Start(c.Request().Context(), c.FormValue("scope"), currentOperator(c).Email)
	switch {
	case errors.Is(err, tokens.ErrNothingToDo):
		return s.redirectWithFlash(c, "/connections", "success", "Nothing to do: no "+scopeLabels[c.FormValue("scope")]+".")
	case err != nil:
		if fe, ok := models.AsFieldErrors(err); ok {
			return echo.NewHTTPError(http.StatusBadRequest, fe["scope"])
		}
		return err
	}
	s.log.Info("bulk refresh started", "job", job.ID, "scope", job.Scope, "total", job.Total, "by", currentOperator(c).ID)
	return c.Redirect(http.StatusSeeOther, "/connections/bulk/"+job.ID)
}

func (s *Server) showBulk(c echo.Context) error {
	job, err := s.bulk.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	v := views.BulkView{ID: job.ID, Scope: job.Scope, ScopeLabel: scopeLabels[job.Scope], Total: job.Total, Done: job.Done, Failed: job.Failed,
		Running: job.Status == models.BulkRunning, Started: s.clock(c).view(job.CreatedAt), By: job.CreatedBy}
	p := s.page(c, "Bulk refresh", "connections")
	if v.Running {
		p.AutoRefresh = 2
	}
	return render(c, http.StatusOK, views.BulkPage(p, v))
}
