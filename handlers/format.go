package handlers

import (
	"fmt"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// formatTime renders a time for people, in UTC.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// statusLabels names each connection state in words.
var statusLabels = map[models.Status]string{
	models.StatusActive:         "Active",
	models.StatusRefreshFailing: "Refresh failing",
	models.StatusNeedsReconnect: "Needs reconnect",
	models.StatusDisconnected:   "Disconnected",
}

// connectionRow prepares one connection for a table.
func connectionRow(r models.ConnectionRow, now time.Time) views.ConnectionRow {
	row := views.ConnectionRow{
		ID: r.ID, AccountEmail: r.AccountEmail, AccountName: r.AccountName, AccountID: r.AccountID, CustomerRef: r.CustomerRef,
		AppName: r.AppName, Status: string(r.Status), StatusLabel: statusLabels[r.Status],
	}
	if r.Status != models.StatusDisconnected && r.ExpiresAt != nil {
		row.Expiry = timeView(*r.ExpiresAt, now)
	}
	if r.LastRefreshAt != nil {
		row.LastRefresh = timeView(*r.LastRefreshAt, now)
	}
	return row
}

// timeView shows a time as both a timestamp and a relative phrase.
func timeView(t, now time.Time) views.TimeView {
	return views.TimeView{ISO: t.UTC().Format(time.RFC3339), Text: formatTime(t), Relative: relative(t, now)}
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
	AccountBudget(apiURL, accountID string) (services.Budget, bool)
}, apiURL, accountID string, now time.Time) string {
	b, ok := t.AccountBudget(apiURL, accountID)
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
