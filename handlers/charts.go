package handlers

import (
	"fmt"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/views"
)

// expiryRange is the overview's expiry chart's reach and bar width.
type expiryRange struct {
	Span, Width time.Duration
	Words       string // "the next 6 hours"
}

// expiryRanges are the ranges the expiry chart picks from, shortest first.
var expiryRanges = []expiryRange{
	{time.Hour, 5 * time.Minute, "the next hour"},
	{2 * time.Hour, 10 * time.Minute, "the next 2 hours"},
	{6 * time.Hour, 30 * time.Minute, "the next 6 hours"},
	{12 * time.Hour, time.Hour, "the next 12 hours"},
	{24 * time.Hour, time.Hour, "the next 24 hours"},
	{48 * time.Hour, 2 * time.Hour, "the next 2 days"},
	{7 * 24 * time.Hour, 12 * time.Hour, "the next 7 days"},
}

// pickExpiryRange chooses the shortest range that reaches the latest token expiry,
// so tokens that live an hour fill twelve five-minute bars instead of one bar of
// a 24-hour chart.
func pickExpiryRange(now, latest time.Time) expiryRange {
	for _, r := range expiryRanges {
		if !latest.After(now.Truncate(r.Width).Add(r.Span)) {
			return r
		}
	}
	return expiryRanges[len(expiryRanges)-1]
}

// expiryChart shows the coming access-token expiries, by status, over r.
func expiryChart(buckets []models.ExpiryBucket, r expiryRange, k clock) views.BarChart {
	c := views.BarChart{
		ID: "expiry-chart", Title: "Access tokens expiring in " + r.Words,
		Legend: []views.Segment{
			{Key: string(models.StatusActive), Label: "Active"},
			{Key: string(models.StatusRefreshFailing), Label: "Refresh failing"},
			{Key: string(models.StatusNeedsReconnect), Label: "Needs reconnect"},
		},
	}
	var total, soon int64
	for i, b := range buckets {
		from, to := b.From.In(k.loc), b.To.In(k.loc)
		bar := views.Bar{Label: from.Format("15:04"), Long: from.Format("Jan 2 15:04") + "–" + to.Format("15:04 MST")}
		if i == 0 {
			bar.Long = "Already expired or expiring by " + to.Format("15:04 MST")
		}
		for _, l := range c.Legend {
			n := b.ByStatus[models.Status(l.Key)]
			bar.Segments = append(bar.Segments, views.Segment{Key: l.Key, Label: l.Label, Count: n})
			total += n
			if i == 0 {
				soon += n
			}
		}
		c.Bars = append(c.Bars, bar)
	}
	first := "the first bar"
	if len(buckets) > 0 {
		first = "the first " + shortDuration(r.Width)
	}
	c.Summary = fmt.Sprintf("%s an access token expiring in %s; %d of them within %s or already expired. The refresher renews them before they expire.",
		plural(total, "live connection has", "live connections have"), r.Words, soon, first)
	return c
}

// shortDuration says "5 min", "2 h", "12 h".
func shortDuration(d time.Duration) string {
	if d < time.Hour {
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	if d == time.Hour {
		return "hour"
	}
	return fmt.Sprintf("%d h", int(d.Hours()))
}

// refreshChart shows the last days' refresh outcomes.
func refreshChart(stats []models.DailyRefreshStat) views.BarChart {
	c := views.BarChart{
		ID: "refresh-chart", Title: "Refreshes over the last 7 days", LabelEvery: 1,
		Legend: []views.Segment{{Key: "succeeded", Label: "Succeeded"}, {Key: "failed", Label: "Failed"}},
	}
	var ok, failed int64
	for _, s := range stats {
		day, _ := time.Parse("2006-01-02", s.Day)
		c.Bars = append(c.Bars, views.Bar{Label: day.Format("Mon 2"), Long: day.Format("Monday, Jan 2") + " (UTC)", Segments: []views.Segment{
			{Key: "succeeded", Label: "Succeeded", Count: s.Succeeded}, {Key: "failed", Label: "Failed", Count: s.Failed},
		}})
		ok += s.Succeeded
		failed += s.Failed
	}
	c.Summary = fmt.Sprintf("%s in 7 days: %d succeeded, %d failed.", plural(ok+failed, "refresh", "refreshes"), ok, failed)
	return c
}

// refreshHistory is how many refresh outcomes a connection's page shows.
const refreshHistory = 30

// refreshFailed reports whether a refresh outcome event is a failure.
func refreshFailed(t models.EventType) bool { return t != models.EventRefreshSucceeded }

// historyStrip draws a connection's recent refresh outcomes (newest first, at most
// limit) as dots on a time line, with a summary, and says how many failed in a row
// — both from the same events, so the page never says one thing in one place and
// another beside it. failures is the stored count of failures in a row, used only
// when every event shown failed and there were more.
func historyStrip(events []models.Event, failures int, k clock) (views.HistoryStrip, string) {
	h := views.HistoryStrip{Summary: "No refreshes yet."}
	if len(events) == 0 {
		return h, ""
	}
	first, last := events[len(events)-1].CreatedAt, events[0].CreatedAt
	span := last.Sub(first)
	var failed int
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		ok := !refreshFailed(e.Type)
		if !ok {
			failed++
		}
		frac := 0.5
		if span > 0 {
			frac = float64(e.CreatedAt.Sub(first)) / float64(span)
		}
		h.Dots = append(h.Dots, views.Dot{Frac: frac, OK: ok, Title: k.text(e.CreatedAt) + ": " + e.Message})
	}
	tick := k.short
	if span < 10*time.Minute {
		tick = func(t time.Time) string { return t.In(k.loc).Format("15:04:05") } // refreshes minutes apart
	}
	if span > 0 {
		h.Ticks = []string{tick(first), tick(first.Add(span / 2)), tick(last)}
	} else {
		h.Ticks = []string{"", tick(first), ""}
	}
	outcome := func(n int, verb string) string { return fmt.Sprintf("%d %s", n, verb) }
	switch {
	case len(events) == 1 && failed == 1:
		h.Summary = "One refresh so far, at " + k.text(first) + ": it failed."
	case len(events) == 1:
		h.Summary = "One refresh so far, at " + k.text(first) + ": it succeeded."
	case len(events) < refreshHistory:
		h.Summary = fmt.Sprintf("%d refreshes so far, from %s to %s: %s, %s.", len(events), k.text(first), k.text(last), outcome(len(events)-failed, "succeeded"), outcome(failed, "failed"))
	default:
		h.Summary = fmt.Sprintf("The last %d refreshes, from %s to %s: %s, %s.", len(events), k.text(first), k.text(last), outcome(len(events)-failed, "succeeded"), outcome(failed, "failed"))
	}
	streak := 0
	for _, e := range events {
		if !refreshFailed(e.Type) {
			break
		}
		streak++
	}
	if streak == len(events) && len(events) == refreshHistory && failures > streak {
		streak = failures // every one shown failed, and more before them
	}
	switch {
	case streak == 0:
		return h, ""
	case streak == 1:
		return h, "the last refresh failed"
	case streak == len(events) && len(events) < refreshHistory:
		return h, fmt.Sprintf("all %d refreshes failed", streak)
	}
	return h, fmt.Sprintf("the last %d refreshes failed in a row", streak)
}

// plural says "1 thing is" or "3 things are".
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
