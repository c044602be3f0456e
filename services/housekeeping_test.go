package services_test

import (
	"context"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/tokens/tokenstest"
)

// TestHousekeepingSweeps: the hourly pass deletes authorizations expired over an
// hour ago, throttle rows whose window passed and ended sessions, and nothing else.
func TestHousekeepingSweeps(t *testing.T) {
	t.Parallel()
	e := tokenstest.New(t, getresponsetest.Options{})
	ctx := context.Background()
	now := models.Now()
	db := e.Store.DB()
	for i, exp := range []time.Time{now.Add(-2 * time.Hour), now.Add(-10 * time.Minute), now.Add(5 * time.Minute)} {
		if err := e.Store.CreateAuthState(ctx, &models.AuthState{ID: models.NewID("ast"), StateHash: "s" + string(rune('a'+i)), BrowserHash: "b",
			AppID: e.App.ID, ExpiresAt: exp, CreatedAt: exp.Add(-10 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Exec("INSERT INTO login_throttles (key, failures, window_start) VALUES ('ip:old', 3, ?), ('ip:new', 3, ?)",
		now.Add(-time.Hour), now.Add(-time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	op := &models.Operator{Email: "ann@example.com", PasswordHash: "h"}
	if err := e.Store.CreateOperator(ctx, op); err != nil {
		t.Fatal(err)
	}
	for i, s := range []models.OperatorSession{
		{CreatedAt: now.Add(-8 * 24 * time.Hour), LastSeenAt: now.Add(-time.Minute), ExpiresAt: now.Add(-24 * time.Hour)},   // too old
		{CreatedAt: now.Add(-24 * time.Hour), LastSeenAt: now.Add(-13 * time.Hour), ExpiresAt: now.Add(6 * 24 * time.Hour)}, // idle
		{CreatedAt: now.Add(-time.Hour), LastSeenAt: now.Add(-time.Minute), ExpiresAt: now.Add(6 * 24 * time.Hour)},         // live
	} {
		s.TokenHash, s.OperatorID = "t"+string(rune('a'+i)), op.ID
		if err := e.Store.CreateSession(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	h := services.NewHousekeeping(e.Store, tokenstest.Discard())
	swept, err := h.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if swept != (services.Swept{AuthStates: 1, Throttles: 1, Sessions: 2}) {
		t.Fatalf("swept %+v, want 1 authorization, 1 throttle row, 2 sessions", swept)
	}
	var states, throttles, sessions int64
	db.Model(&models.AuthState{}).Count(&states)
	db.Model(&models.LoginThrottle{}).Count(&throttles)
	db.Model(&models.OperatorSession{}).Count(&sessions)
	if states != 2 || throttles != 1 || sessions != 1 {
		t.Fatalf("left %d authorizations, %d throttle rows, %d sessions; want 2, 1, 1", states, throttles, sessions)
	}
}

// TestHousekeepingSweepsOldTimelineEvents: with no timeline retention every event
// stays; with one, a connection's events past it go but its newest. Hourly sweeps
// walk from the last cutoff: an event that crosses the cutoff goes at the next one,
// and an old newest event that a newer one has followed goes at the daily walk of
// all old events.
func TestHousekeepingSweepsOldTimelineEvents(t *testing.T) {
	t.Parallel()
	e := tokenstest.New(t, getresponsetest.Options{})
	ctx := context.Background()
	now := models.Now()
	day := 24 * time.Hour
	busy, idle := e.Seed(models.StatusActive, now.Add(time.Hour), nil), e.Seed(models.StatusActive, now.Add(time.Hour), nil)
	add := func(conn *models.Connection, at time.Time) {
		t.Helper()
		if err := e.Store.AddEvent(ctx, &models.Event{ConnectionID: &conn.ID, AppID: &e.App.ID, Type: models.EventRefreshSucceeded, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	add(busy, now.Add(-120*day))
	add(busy, now.Add(-100*day))
	add(busy, now.Add(-90*day+30*time.Minute)) // past the retention in an hour
	add(busy, now.Add(-10*day))
	add(idle, now.Add(-95*day)) // its newest
	clock := now
	h := services.NewHousekeeping(e.Store, tokenstest.Discard())
	h.Now = func() time.Time { return clock }
	sweep := func(want int64) {
		t.Helper()
		if s, err := h.RunOnce(ctx); err != nil || s.TimelineEvents != want {
			t.Fatalf("at %v swept %d, %v; want %d", clock.Sub(now), s.TimelineEvents, err, want)
		}
	}
	sweep(0) // retention 0: for ever
	h.TimelineRetention = 90 * day
	sweep(2)
	clock = clock.Add(time.Hour)
	add(idle, now) // idle's old event is no longer its newest
	sweep(1)       // busy's third crossed the cutoff; idle's old one is before the last cutoff
	clock = clock.Add(time.Hour)
	sweep(0)
	clock = now.Add(day) // the daily walk of all old events
	sweep(1)
	for conn, want := range map[*models.Connection]time.Time{busy: now.Add(-10 * day), idle: now} {
		events, _, err := e.Store.ConnectionEvents(ctx, conn.ID, 0, 10)
		if err != nil || len(events) != 1 || !events[0].CreatedAt.Equal(want) {
			t.Fatalf("left %+v, %v; want one event at %v", events, err, want)
		}
	}
}

// TestHousekeepingFoldsTheCountsEveryInterval: Run folds the rows the connection
// counts gather (one per change) every CountsEvery, long before its first sweep.
func TestHousekeepingFoldsTheCountsEveryInterval(t *testing.T) {
	t.Parallel()
	e := tokenstest.New(t, getresponsetest.Options{})
	for range 5 {
		e.Seed(models.StatusActive, models.Now().Add(time.Hour), nil)
	}
	rows := func() (n int64) {
		t.Helper()
		if err := e.Store.DB().Raw("SELECT COUNT(*) FROM connection_counts").Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := rows(); n < 5 {
		t.Fatalf("%d count rows before folding, want one a connection", n)
	}
	h := services.NewHousekeeping(e.Store, tokenstest.Discard())
	h.CountsEvery = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for start := time.Now(); rows() > 1; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the counts were not folded: %d rows", rows())
		}
	}
	if byStatus, err := e.Store.CountByStatus(ctx); err != nil || byStatus[models.StatusActive] != 5 {
		t.Fatalf("after folding: %+v, %v; want 5 active", byStatus, err)
	}
}
