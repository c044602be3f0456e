package handlers

import (
	"fmt"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/views"
)

// expiryChart shows the next 24 hours of access-token expiries, by status.
func expiryChart(buckets []models.ExpiryBucket) views.BarChart {
	c := views.BarChart{
		ID: "expiry-chart", Title: "Access tokens expiring in the next 24 hours", LabelEvery: 3,
		Legend: []views.Segment{
			{Key: string(models.StatusActive), Label: "Active"},
			{Key: string(models.StatusRefreshFailing), Label: "Refresh failing"},
			{Key: string(models.StatusNeedsReconnect), Label: "Needs reconnect"},
		},
	}
	var total, soon int64
	for i, b := range buckets {
		bar := views.Bar{Label: b.From.UTC().Format("15:00"), Long: b.From.UTC().Format("Jan 2 15:04") + "–" + b.To.UTC().Format("15:04 UTC")}
		if i == 0 {
			bar.Long = "Already expired or within the hour (until " + b.To.UTC().Format("15:04 UTC") + ")"
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
	c.Summary = fmt.Sprintf("%s an access token expiring within 24 hours; %d of them within the next hour or already expired. The refresher renews them before they expire.",
		plural(total, "live connection has", "live connections have"), soon)
	return c
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
		c.Bars = append(c.Bars, views.Bar{Label: day.Format("Mon 2"), Long: day.Format("Monday, Jan 2"), Segments: []views.Segment{
			{Key: "succeeded", Label: "Succeeded", Count: s.Succeeded}, {Key: "failed", Label: "Failed", Count: s.Failed},
		}})
		ok += s.Succeeded
		failed += s.Failed
	}
	c.Summary = fmt.Sprintf("%d refreshes in 7 days: %d succeeded, %d failed.", ok+failed, ok, failed)
	return c
}

// historyStrip places a connection's recent refreshes (newest first) on a time line.
func historyStrip(events []models.Event) views.HistoryStrip {
	h := views.HistoryStrip{Summary: "No refreshes yet."}
	if len(events) == 0 {
		return h
	}
	first, last := events[len(events)-1].CreatedAt, events[0].CreatedAt
	span := last.Sub(first)
	var failed int
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		ok := e.Type == "refresh.succeeded"
		if !ok {
			failed++
		}
		frac := 0.5
		if span > 0 {
			frac = float64(e.CreatedAt.Sub(first)) / float64(span)
		}
		h.Dots = append(h.Dots, views.Dot{Frac: frac, OK: ok, Title: formatTime(e.CreatedAt) + ": " + e.Message})
	}
	h.From, h.To = formatTime(first), formatTime(last)
	h.Summary = fmt.Sprintf("The last %d refreshes, from %s to %s: %d succeeded, %d failed.", len(events), h.From, h.To, len(events)-failed, failed)
	if len(events) == 1 {
		h.Summary = "One refresh so far, at " + h.From + ": " + map[bool]string{true: "it failed.", false: "it succeeded."}[failed == 1]
	}
	return h
}

// plural says "1 thing is" or "3 things are".
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
