package handlers

import (
	"fmt"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// formatTime renders a time for people, in UTC (customer pages, logs).
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// clock shows times to one reader: in the signed-in operator's time zone (UTC for
// everyone else), relative to one moment, so a page says the same "now" throughout.
type clock struct {
	loc *time.Location
	now time.Time
}

// zoneCache keeps loaded time zones by name: time.LoadLocation parses zone data
// each time.
type zoneCache struct{ m sync.Map } // string → *time.Location

// location returns the location of an operator's zone name, UTC when it is empty
// or unknown.
func (z *zoneCache) location(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	if loc, ok := z.m.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := services.LoadTimeZone(name)
	if err != nil {
		return time.UTC
	}
	z.m.Store(name, loc)
	return loc
}

// clock returns the request's clock: the operator's zone, now.
func (s *Server) clock(c echo.Context) clock {
	k := clock{loc: time.UTC, now: time.Now()}
	if op := currentOperator(c); op != nil {
		k.loc = s.zones.location(op.TimeZone)
	}
	return k
}

// text renders t in the reader's zone: "2026-11-30 14:05 CET".
func (k clock) text(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(k.loc).Format("2006-01-02 15:04 MST")
}

// short renders t compactly for axes: "14:05" today, "Nov 29 14:05" otherwise.
func (k clock) short(t time.Time) string {
	lt, ln := t.In(k.loc), k.now.In(k.loc)
	if lt.YearDay() == ln.YearDay() && lt.Year() == ln.Year() {
		return lt.Format("15:04")
	}
	return lt.Format("Jan 2 15:04")
}

// view shows t both as a timestamp in the reader's zone (UTC on hover) and as a
// relative phrase.
func (k clock) view(t time.Time) views.TimeView {
	return views.TimeView{ISO: t.UTC().Format(time.RFC3339), Text: k.text(t), UTC: formatTime(t), Relative: relative(t, k.now)}
}

// statusLabels names each connection state in words.
var statusLabels = map[models.Status]string{
	models.StatusActive:         "Active",
	models.StatusPaused:         "Paused by app",
	models.StatusRefreshFailing: "Refresh failing",
	models.StatusNeedsReconnect: "Needs reconnect",
	models.StatusDisconnected:   "Disconnected",
}

// connectionRow prepares one connection for a table, in the state the dashboard
// shows (a live connection of an unhealthy app reads "Paused — app <name>"). A
// token that cannot be used (the connection needs a reconnect, or was
// disconnected) shows no expiry.
func connectionRow(r models.ConnectionRow, k clock) views.ConnectionRow {
	shown := r.Displayed()
	row := views.ConnectionRow{
		ID: r.ID, AccountEmail: r.AccountEmail, AccountName: r.AccountName, AccountID: r.AccountID, CustomerRef: r.CustomerRef,
		AppName: r.AppName, Status: string(shown), StatusLabel: statusLabels[shown],
	}
	if shown == models.StatusPaused {
		row.StatusLabel = "Paused — app " + r.AppName
	}
	switch {
	case r.Status == models.StatusNeedsReconnect:
		row.ExpiryNote = "unusable: needs a reconnect"
	case r.Status == models.StatusDisconnected:
		row.ExpiryNote = "none: disconnected"
	case r.ExpiresAt != nil:
		row.Expiry = k.view(*r.ExpiresAt)
	}
	if r.LastRefreshAt != nil {
		row.LastRefresh = k.view(*r.LastRefreshAt)
	}
	return row
}

// relative says "in 42 min" or "3 h ago" (with "expired" for a past expiry in the view).
func relative(t, now time.Time) string {
	d := t.Sub(now)
	past := d < 0
	if past {
		d = -d
	}
	var s string
	switch mins, hours := int(d.Round(time.Minute).Minutes()), int(d.Round(time.Hour).Hours()); {
	case d < time.Minute:
		s = fmt.Sprintf("%d s", int(d.Seconds()))
	case mins < 60:
		s = fmt.Sprintf("%d min", mins)
	case hours < 48:
		s = fmt.Sprintf("%d h", hours)
	default:
		s = fmt.Sprintf("%d d", int(d.Round(24*time.Hour).Hours()/24))
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}

// appName names a connection's app, saying when it was deleted.
func appName(app *models.App) string {
	if app == nil || app.ID == "" {
		return "(deleted app)"
	}
	if app.DeletedAt != nil {
		return app.Name + " (deleted)"
	}
	return app.Name
}

// budgetText says what GetResponse last reported of an account's rate limit.
func budgetText(t interface {
	AccountBudget(apiURL, maxDomain, accountID string) (services.Budget, bool)
}, apiURL, maxDomain, accountID string, now time.Time) string {
	b, ok := t.AccountBudget(apiURL, maxDomain, accountID)
	if !ok {
		return ""
	}
	var out string
	if b.RateLimit.Limit > 0 {
		out = fmt.Sprintf("%d of %d calls left in this 10-minute window, as of %s", b.RateLimit.Remaining, b.RateLimit.Limit, relative(b.Seen, now))
	}
	if b.BlockedUntil.After(now) {
		if out != "" {
			out += "; "
		}
		out += "GetResponse asked to wait until " + formatTime(b.BlockedUntil) + " (refreshes wait too)"
	}
	return out
}

// appHealth is an app's health; a deleted or unknown app pauses nothing.
func appHealth(app *models.App) models.AppHealth {
	if app == nil || app.DeletedAt != nil {
		return models.AppHealthy
	}
	return app.Health
}
