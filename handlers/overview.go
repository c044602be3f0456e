package handlers

import (
	"context"
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
	counts, err := s.store.CountByStatus(ctx)
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
	// The healthy connections whose tokens expire next (the others are above).
	expiring, err := s.store.ListConnections(ctx, models.ConnectionFilter{Status: string(models.StatusActive), Sort: models.SortExpiry, Limit: 5})
	if err != nil {
		return err
	}
	// Who must act first, as the connections list orders them.
	attention, err := s.store.ListConnections(ctx, models.ConnectionFilter{Status: "live", Sort: models.SortAttention, Limit: 10})
	if err != nil {
		return err
	}
	events, err := s.store.RecentEvents(ctx, 10)
	if err != nil {
		return err
	}
	if v.Total > 0 {
		horizon, err := s.store.TokenHorizon(ctx)
		if err != nil {
			return err
		}
		r := pickExpiryRange(now, horizon.LatestExpiry)
		buckets, err := s.expiry.histogram(ctx, s.store.ExpiryHistogram, now, r.Span, r.Width)
		if err != nil {
			return err
		}
		stats, err := s.store.RefreshStats(ctx, now, 7)
		if err != nil {
			return err
		}
		v.ExpiryChart, v.RefreshChart = expiryChart(buckets, r, k), refreshChart(stats)
		v.ShowCharts = true
	}
	for _, r := range expiring.Rows {
		v.Expiring = append(v.Expiring, connectionRow(r, k))
	}
	for _, r := range attention.Rows {
		if r.Attention() == models.AttentionHealthy {
			break
		}
		row := connectionRow(r, k)
		_, row.Reason = rowReason(r, k)
		v.Attention = append(v.Attention, row)
	}
	if v.Setup, v.SetupOpen, err = s.setupSteps(ctx, apps); err != nil {
		return err
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

// setupSteps is the overview's first-run checklist, ticked from the install's real
// state (nil once every step is done), and whether it is unfolded: while the first
// three steps are to do. In demo mode the demo app counts as registered.
func (s *Server) setupSteps(ctx context.Context, apps []models.AppSummary) ([]views.SetupStep, bool, error) {
	facts, err := s.store.SetupFacts(ctx)
	if err != nil {
		return nil, false, err
	}
	app := views.SetupStep{Key: "app", Title: "Register your GetResponse app", URL: "/apps/new", Action: "Register an app",
		Detail: "Add an application in GetResponse (Integrations & API → OAuth), then its client ID and secret here."}
	link := views.SetupStep{Key: "link", Title: "Make a first connect link", URL: "/apps", Action: "Open your apps",
		Detail: "Send it to a customer; when they approve access, their account appears under Connections."}
	if len(apps) > 0 {
		app.Done, app.Detail = true, "Registered: "+apps[0].Name
		if len(apps) > 1 {
			app.Detail += " and " + plural(int64(len(apps)-1), "other", "others")
		}
		app.Detail += "."
		link.URL = "/apps/" + apps[0].ID + "#new-link"
	}
	link.Done = facts.Links
	if link.Done {
		link.Detail = "Customers connect through connect links, or your backend makes them with the API."
	}
	key := views.SetupStep{Key: "api-key", Title: "Create an API key", Done: facts.APIKeys, URL: "/api-keys", Action: "Create a key",
		Detail: "Your backend asks grconnect for fresh access tokens, or calls GetResponse through it, with this key."}
	base := views.SetupStep{Key: "base-url", Title: "Give grconnect its public address", Done: !isLocalURL(s.cfg.BaseURL),
		Detail: "Set GRCONNECT_BASE_URL to the https address customers reach grconnect at: GetResponse refuses localhost redirect URLs. Now: " + s.cfg.BaseURL + "."}
	if base.Done {
		base.Detail = "Redirect URL: " + s.cfg.RedirectURL() + "."
	} else if s.demo {
		base.Detail += " The demo's simulated GetResponse takes it; a real app needs the public address."
	}
	st := s.backups.Status()
	backups := views.SetupStep{Key: "backups", Title: "Turn on backups", Done: st.Enabled, URL: "/backups", Action: "Backups",
		Detail: "Set GRCONNECT_BACKUP_DIR for a copy of the database every few hours; the secret key is needed to read one."}
	switch {
	case st.Postgres:
		backups.Done, backups.Detail = true, "On PostgreSQL, the database's own backups (pg_dump) keep the data; keep the secret key with them."
	case st.Enabled:
		backups.Detail = "Scheduled backups go to " + st.Dir + "."
	}
	mail := views.SetupStep{Key: "mail", Title: "Set up alert e-mail", Done: s.cfg.SMTPURL != nil, URL: "/operators", Action: "Alert settings",
		Detail: "Set GRCONNECT_SMTP_URL, so operators hear when an app needs them or customers must reconnect."}
	if mail.Done {
		mail.Detail = "Operators choose their alerts on the Operators page."
	}
	steps := []views.SetupStep{app, key, link, base, backups, mail}
	done := 0
	for _, st := range steps {
		if st.Done {
			done++
		}
	}
	if done == len(steps) {
		return nil, false, nil
	}
	return steps, !(app.Done && key.Done && link.Done), nil
}
