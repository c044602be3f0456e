package demo

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/tokens"
)

// history is the made-up past of a seeded connection: when it connected (spread
// over the last 29 days), how it refreshed every 50 minutes since, what went
// wrong and when, as it is to look now, its timeline (its connection, the last
// day of refreshes, every failure, its disconnection) and every refresh outcome,
// for the daily counts. Messages are worded as grconnect words them, with
// GetResponse's own answers.
func history(s seeded, total int, now time.Time) (models.DemoPast, []models.Event, []outcome) {
	c, i := s.conn, s.index
	id, appID := c.ID, c.AppID
	ev := func(at time.Time, typ models.EventType, msg, actor string) models.Event {
		return models.Event{ConnectionID: &id, AppID: &appID, Type: typ, Message: msg, Actor: actor, CreatedAt: at}
	}
	// The people connected since the start of the UTC day 29 days ago (so that each
	// of the 30 days the chart counts has a whole day of refreshes), in an order
	// unrelated to their fate.
	y, m, d := now.Add(-29 * 24 * time.Hour).UTC().Date()
	span := now.Sub(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
	slot := (i * 17) % total
	connected := now.Add(-time.Duration(float64(span) * (1 - float64(slot)/float64(total)))).Add(-time.Duration(mix(i, 1)%170) * time.Minute)
	past := models.DemoPast{ID: id, Status: models.StatusActive}
	var events []models.Event
	var outcomes []outcome
	var last time.Time // the last refresh that worked
	fail := func(at time.Time, typ models.EventType, msg string) {
		events = append(events, ev(at, typ, "Refresh failed after "+fmt.Sprint(90+mix(i, len(events))%400)+" ms: "+msg, "system"))
		outcomes = append(outcomes, outcome{at: at})
	}
	switch s.fate {
	case fateActive:
		last = now.Add(-time.Duration(mix(i, 2)%48+2) * time.Minute)
	case fateNeedsReconnect:
		at := now.Add(-3*time.Hour - time.Duration(i%4)*7*time.Hour - time.Duration(mix(i, 3)%40)*time.Minute)
		last = at.Add(-refreshEvery)
		const msg = "GetResponse rejected the refresh token (invalid_grant); the customer must reconnect"
		fail(at, models.EventNeedsReconnect, msg)
		past.Status, past.LastError, past.FailureCount = models.StatusNeedsReconnect, msg, 1
	case fateBlocked:
		at := now.Add(-5*time.Hour - 13*time.Minute)
		last = at.Add(-refreshEvery)
		const what = "HTTP 403, code 1016: Your access to the API has been temporarily blocked"
		next := now.Add(2 * time.Minute)
		for n := 1; at.Before(now); n++ {
			after := min(30*time.Second<<(n-1), time.Hour)
			following := at.Add(after)
			if !following.Before(now) {
				following = next // the last one so far: its retry is the stored one
			}
			typ := models.EventRefreshFailedAgain
			if n == 1 {
				typ = models.EventRefreshFailed
			}
			msg := "GetResponse did not refresh the token (" + what + "); next attempt " + following.UTC().Format("15:04:05 UTC")
			fail(at, typ, msg)
			past.LastError, past.FailureCount = msg, n
			at = following
		}
		past.Status, past.NextAttemptAt = models.StatusRefreshFailing, &next
	case fateOutage:
		at := now.Add(-5 * time.Minute)
		last = at.Add(-refreshEvery)
		const what = "HTTP 503, code 1: GetResponse is temporarily unavailable, please try again later (simulated outage)"
		next := now.Add(outageLeft) // GetResponse's Retry-After: the outage's end
		fail(at, models.EventRefreshFailed, "GetResponse did not refresh the token ("+what+"); next attempt "+at.Add(30*time.Second).UTC().Format("15:04:05 UTC"))
		msg := "GetResponse did not refresh the token (" + what + "); next attempt " + next.UTC().Format("15:04:05 UTC")
		fail(at.Add(30*time.Second), models.EventRefreshFailedAgain, msg)
		past.Status, past.LastError, past.FailureCount, past.NextAttemptAt = models.StatusRefreshFailing, msg, 2, &next
	case fateDisconnected:
		at := now.Add(-now.Sub(connected) / 3)
		last = at.Add(-time.Duration(mix(i, 4)%45+3) * time.Minute)
		events = append(events, ev(at, models.EventDisconnected, "Disconnected; tokens erased", "api"))
		past.Status, past.DisconnectedAt = models.StatusDisconnected, &at
	case fatePaused:
		at := now.Add(-brokenSince + time.Duration(i%SeedConnections)*7*time.Minute)
		last = at.Add(-refreshEvery)
		msg := "Refreshes of this app are paused: " + tokens.AppHealthAdvice(models.AppCredentialsRejected, "invalid_client")
		fail(at, models.EventRefreshPaused, msg)
		past.LastError = msg
	}
	// Connected well before anything happened to it.
	if earliest := last.Add(-6 * time.Hour); connected.After(earliest) {
		connected = earliest
	}
	past.ConnectedAt = connected
	events = append(events, ev(connected, models.EventConnectionCreated, fmt.Sprintf("Connected GetResponse account %s (%s)", c.AccountEmail, c.AccountID), "customer"))
	// Every 50 minutes from the connection to the last one that worked; the last
	// day's are on the timeline.
	var refreshes []time.Time
	for at := last; at.After(connected.Add(refreshEvery / 2)); at = at.Add(-refreshEvery) {
		refreshes = append(refreshes, at)
	}
	for k, at := range refreshes {
		outcomes = append(outcomes, outcome{at: at, ok: true})
		if now.Sub(at) <= 24*time.Hour {
			events = append(events, ev(at, models.EventRefreshSucceeded, fmt.Sprintf("Refreshed in %d ms; access token valid until %s",
				110+mix(i, k)%380, at.Add(tokenLife).UTC().Format("2006-01-02 15:04:05 UTC")), "system"))
		}
	}
	// Now and then GetResponse failed for a minute, days ago: two failures, then it
	// worked again.
	if i%5 == 2 {
		at := now.Add(-time.Duration(2+i%9)*24*time.Hour - time.Duration(mix(i, 5)%1200)*time.Minute)
		if at.After(connected) {
			outcomes = append(outcomes, outcome{at: at}, outcome{at: at.Add(30 * time.Second)})
		}
	}
	past.LastRefreshAt = &last
	expires := last.Add(tokenLife)
	past.ExpiresAt = &expires
	return past, events, outcomes
}

// outcome is one refresh of the demo's past: when, and whether it worked.
type outcome struct {
	at time.Time
	ok bool
}

// dailyCounts adds the outcomes up per UTC day, for the last 30 days.
func dailyCounts(outcomes []outcome, now time.Time) []models.DailyRefreshStat {
	first := now.UTC().AddDate(0, 0, -29).Format("2006-01-02")
	byDay := map[string]*models.DailyRefreshStat{}
	for _, o := range outcomes {
		day := o.at.UTC().Format("2006-01-02")
		if day < first {
			continue
		}
		d := byDay[day]
		if d == nil {
			d = &models.DailyRefreshStat{Day: day}
			byDay[day] = d
		}
		if o.ok {
			d.Succeeded++
		} else {
			d.Failed++
		}
	}
	out := make([]models.DailyRefreshStat, 0, len(byDay))
	for _, d := range byDay {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b models.DailyRefreshStat) int { return strings.Compare(a.Day, b.Day) })
	return out
}

// mix is a small deterministic scramble of two numbers, for the demo's jitter.
func mix(a, b int) int {
	x := uint32(a*7919 + b*104729 + 1)
	x ^= x >> 13
	x *= 0x5bd1e995
	x ^= x >> 15
	return int(x & 0x7fffffff)
}
