package handlers

import (
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
)

func TestExpiryChartData(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	buckets := []models.ExpiryBucket{
		{From: now, To: now.Add(time.Hour), ByStatus: map[models.Status]int64{"active": 3, "needs_reconnect": 2}},
		{From: now.Add(time.Hour), To: now.Add(2 * time.Hour), ByStatus: map[models.Status]int64{"active": 5, "refresh_failing": 1}},
	}
	c := expiryChart(buckets)
	if len(c.Bars) != 2 || c.Bars[0].Total() != 5 || c.Bars[1].Total() != 6 {
		t.Fatalf("bars = %+v", c.Bars)
	}
	if c.Bars[1].Label != "11:00" || !strings.Contains(c.Bars[0].Long, "Already expired") {
		t.Fatalf("labels = %q, %q", c.Bars[1].Label, c.Bars[0].Long)
	}
	if !strings.Contains(c.Summary, "11 live connections") || !strings.Contains(c.Summary, "5 of them") {
		t.Fatalf("summary = %q", c.Summary)
	}
}

func TestRefreshChartAndHistory(t *testing.T) {
	c := refreshChart([]models.DailyRefreshStat{{Day: "2026-11-27", Succeeded: 10, Failed: 2}, {Day: "2026-11-28", Succeeded: 4}})
	if c.Bars[0].Label != "Fri 27" || c.Summary != "16 refreshes in 7 days: 14 succeeded, 2 failed." {
		t.Fatalf("chart = %q / %q", c.Bars[0].Label, c.Summary)
	}
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	h := historyStrip([]models.Event{ // newest first, as the store returns them
		{Type: "refresh.succeeded", CreatedAt: t0.Add(2 * time.Hour)},
		{Type: "refresh.failed", CreatedAt: t0.Add(time.Hour)},
		{Type: "refresh.succeeded", CreatedAt: t0},
	})
	if len(h.Dots) != 3 || h.Dots[0].Frac != 0 || h.Dots[1].Frac != 0.5 || h.Dots[1].OK || h.Dots[2].Frac != 1 {
		t.Fatalf("dots = %+v", h.Dots)
	}
	if !strings.Contains(h.Summary, "2 succeeded, 1 failed") {
		t.Fatalf("summary = %q", h.Summary)
	}
	if historyStrip(nil).Summary != "No refreshes yet." {
		t.Fatal("empty history")
	}
}
