package handlers

import (
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
)

var utcClock = clock{loc: time.UTC, now: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}

func TestExpiryChartData(t *testing.T) {
	t.Parallel()
	now := utcClock.now
	buckets := []models.ExpiryBucket{
		{From: now, To: now.Add(time.Hour), ByStatus: map[models.Status]int64{"active": 3, "needs_reconnect": 2}},
		{From: now.Add(time.Hour), To: now.Add(2 * time.Hour), ByStatus: map[models.Status]int64{"active": 5, "refresh_failing": 1}},
	}
	c := expiryChart(buckets, expiryRanges[4], utcClock)
	if len(c.Bars) != 2 || c.Bars[0].Total() != 5 || c.Bars[1].Total() != 6 {
		t.Fatalf("bars = %+v", c.Bars)
	}
	if c.Bars[1].Label != "11:00" || !strings.Contains(c.Bars[0].Long, "Already expired") {
		t.Fatalf("labels = %q, %q", c.Bars[1].Label, c.Bars[0].Long)
	}
	if !strings.Contains(c.Summary, "11 live connections") || !strings.Contains(c.Summary, "5 of them") || c.Title != "Access tokens expiring in the next 24 hours" {
		t.Fatalf("title %q, summary %q", c.Title, c.Summary)
	}
	// In the reader's zone.
	warsaw, _ := time.LoadLocation("Europe/Warsaw")
	c = expiryChart(buckets, expiryRanges[4], clock{loc: warsaw, now: now})
	if c.Bars[1].Label != "12:00" || !strings.Contains(c.Bars[1].Long, "CET") {
		t.Fatalf("in Warsaw: %q, %q", c.Bars[1].Label, c.Bars[1].Long)
	}
}

// TestExpiryRangeFollowsTheData: hour-long tokens get an hour of five-minute bars,
// day-long ones 24 hourly bars, and the range never cuts off the latest expiry.
func TestExpiryRangeFollowsTheData(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 10, 7, 0, 0, time.UTC)
	for _, tc := range []struct {
		latest time.Duration
		span   time.Duration
		width  time.Duration
	}{
		{0, time.Hour, 5 * time.Minute}, // no tokens
		{55 * time.Minute, time.Hour, 5 * time.Minute},
		{90 * time.Minute, 2 * time.Hour, 10 * time.Minute},
		{23 * time.Hour, 24 * time.Hour, time.Hour},
		{30 * 24 * time.Hour, 7 * 24 * time.Hour, 12 * time.Hour}, // beyond the longest: the longest
	} {
		r := pickExpiryRange(now, now.Add(tc.latest))
		if r.Span != tc.span || r.Width != tc.width {
			t.Errorf("latest expiry in %v: range %v by %v, want %v by %v", tc.latest, r.Span, r.Width, tc.span, tc.width)
		}
		if bars := int(r.Span / r.Width); bars < 7 || bars > 24 {
			t.Errorf("range %v by %v draws %d bars", r.Span, r.Width, bars)
		}
	}
}

func TestRefreshChartAndHistory(t *testing.T) {
	t.Parallel()
	c := refreshChart([]models.DailyRefreshStat{{Day: "2026-11-27", Succeeded: 10, Failed: 2}, {Day: "2026-11-28", Succeeded: 4}})
	if c.Bars[0].Label != "Fri 27" || c.Summary != "16 refreshes in 7 days: 14 succeeded, 2 failed." {
		t.Fatalf("chart = %q / %q", c.Bars[0].Label, c.Summary)
	}
	t0 := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	h, streak := historyStrip([]models.Event{ // newest first, as the store returns them
		{Type: "refresh.succeeded", CreatedAt: t0.Add(2 * time.Hour)},
		{Type: "refresh.failed", CreatedAt: t0.Add(time.Hour)},
		{Type: "refresh.succeeded", CreatedAt: t0},
	}, 0, utcClock)
	if len(h.Dots) != 3 || h.Dots[0].Frac != 0 || h.Dots[1].Frac != 0.5 || h.Dots[1].OK || h.Dots[2].Frac != 1 {
		t.Fatalf("dots = %+v", h.Dots)
	}
	if !strings.Contains(h.Summary, "2 succeeded, 1 failed") {
		t.Fatalf("summary = %q", h.Summary)
	}
	// The time axis: start, middle and end, today's as clock times.
	if strings.Join(h.Ticks, " ") != "08:00 09:00 10:00" {
		t.Fatalf("ticks = %q", h.Ticks)
	}
	if streak != "" {
		t.Fatalf("the last refresh succeeded, yet the streak says %q", streak)
	}
	if h, streak := historyStrip(nil, 0, utcClock); h.Summary != "No refreshes yet." || streak != "" {
		t.Fatal("empty history")
	}
}

// TestHistoryAndStreakAgree: the refresh history's summary and the failures in a
// row come from the same events, whatever kind of failure they record; the stored
// count is used only past the events shown.
func TestHistoryAndStreakAgree(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	for _, tc := range []struct {
		name     string
		events   []models.Event
		failures int
		summary  string
		streak   string
	}{
		{"one failure", []models.Event{{Type: models.EventRefreshFailed, CreatedAt: at(0)}}, 1,
			"One refresh so far, at 2026-11-28 08:00 UTC: it failed.", "the last refresh failed"},
		// A repeated failure records refresh.failed_again: it is a refresh too.
		{"failed again", []models.Event{{Type: models.EventRefreshFailedAgain, CreatedAt: at(5)}, {Type: models.EventRefreshFailed, CreatedAt: at(0)}}, 2,
			"2 refreshes so far, from 2026-11-28 08:00 UTC to 2026-11-28 08:05 UTC: 0 succeeded, 2 failed.", "all 2 refreshes failed"},
		{"recovered", []models.Event{{Type: models.EventRefreshSucceeded, CreatedAt: at(9)}, {Type: models.EventRefreshFailedAgain, CreatedAt: at(5)}, {Type: models.EventRefreshFailed, CreatedAt: at(0)}}, 0,
			"3 refreshes so far, from 2026-11-28 08:00 UTC to 2026-11-28 08:09 UTC: 1 succeeded, 2 failed.", ""},
		{"needs reconnect after a success", []models.Event{{Type: models.EventNeedsReconnect, CreatedAt: at(9)}, {Type: models.EventRefreshSucceeded, CreatedAt: at(0)}}, 1,
			"2 refreshes so far, from 2026-11-28 08:00 UTC to 2026-11-28 08:09 UTC: 1 succeeded, 1 failed.", "the last refresh failed"},
	} {
		h, streak := historyStrip(tc.events, tc.failures, utcClock)
		if h.Summary != tc.summary || streak != tc.streak {
			t.Errorf("%s: summary %q, streak %q; want %q, %q", tc.name, h.Summary, streak, tc.summary, tc.streak)
		}
	}
	// Every one of the 30 shown failed, and the store counts 45 in a row.
	var many []models.Event
	for i := range refreshHistory {
		many = append(many, models.Event{Type: models.EventRefreshFailedAgain, CreatedAt: at(100 - i)})
	}
	if _, streak := historyStrip(many, 45, utcClock); streak != "the last 45 refreshes failed in a row" {
		t.Errorf("a long streak reads %q", streak)
	}
}
