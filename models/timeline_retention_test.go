package models_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// TestTimelineSweepKeepsEachConnectionsNewestEvent: the events older than the
// cutoff go, in as many batches as it takes, except each connection's newest
// (however old) and the apps' own events; newer events stay.
func TestTimelineSweepKeepsEachConnectionsNewestEvent(t *testing.T) {
	t.Parallel()
	store := modelstest.New(t)
	ctx := context.Background()
	app := createApp(t, store, nil)
	now := models.Now()
	old, older, recent := now.Add(-100*24*time.Hour), now.Add(-200*24*time.Hour), now.Add(-10*24*time.Hour)
	add := func(connID *string, typ models.EventType, at time.Time) {
		t.Helper()
		if err := store.AddEvent(ctx, &models.Event{ConnectionID: connID, AppID: &app.ID, Type: typ, Actor: "system", CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	busy, idle, quiet, bulk := newConn(t, store, app.ID), newConn(t, store, app.ID), newConn(t, store, app.ID), newConn(t, store, app.ID)
	add(&busy.ID, models.EventTestCall, older)
	add(&busy.ID, models.EventRefreshPaused, old)
	add(&busy.ID, models.EventRefreshSucceeded, old)
	add(&busy.ID, models.EventRefreshSucceeded, recent)
	add(&idle.ID, models.EventRefreshSucceeded, older)
	add(&idle.ID, models.EventRefreshPaused, old) // its newest, though old
	add(&quiet.ID, models.EventTestCall, older)   // its only one
	add(nil, models.EventAppUpdated, older)       // the app's own
	// More old events than two batches hold, then one recent.
	const many = 2*5000 + 7
	if err := store.DB().Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO events (connection_id, app_id, type, message, actor, created_at) SELECT ?, ?, ?, '', 'system', ? FROM n`,
		many, bulk.ID, app.ID, models.EventRefreshSucceeded, old).Error; err != nil {
		t.Fatal(err)
	}
	add(&bulk.ID, models.EventRefreshSucceeded, recent)

	deleted, err := store.DeleteTimelineBefore(ctx, time.Time{}, now.Add(-90*24*time.Hour))
	if err != nil || deleted != 3+1+many {
		t.Fatalf("deleted %d, %v; want %d", deleted, err, 3+1+many)
	}
	left := func() map[string][]models.EventType {
		t.Helper()
		var rows []models.Event
		if err := store.DB().Order("id").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		m := map[string][]models.EventType{}
		for _, e := range rows {
			key := "app"
			if e.ConnectionID != nil {
				key = *e.ConnectionID
			}
			m[key] = append(m[key], e.Type)
		}
		return m
	}
	want := map[string][]models.EventType{
		busy.ID: {models.EventRefreshSucceeded}, idle.ID: {models.EventRefreshPaused}, quiet.ID: {models.EventTestCall},
		bulk.ID: {models.EventRefreshSucceeded}, "app": {models.EventAppUpdated},
	}
	if got := left(); !maps.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("left %v, want %v", got, want)
	}
	// A second sweep finds nothing more to delete.
	if deleted, err := store.DeleteTimelineBefore(ctx, time.Time{}, now.Add(-90*24*time.Hour)); err != nil || deleted != 0 {
		t.Fatalf("a second sweep deleted %d, %v", deleted, err)
	}
}
