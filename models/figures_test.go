package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// TestRefreshBacklog counts connections due for longer than the grace: active ones
// inside the margin, failing ones past their retry time; not the ones just due,
// being refreshed (a live lease), or of a paused app.
func TestRefreshBacklog(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	now := models.Now()
	for _, id := range []string{"app_ok", "app_paused"} {
		health := "ok"
		if id == "app_paused" {
			health = "credentials_rejected"
		}
		if err := store.DB().Exec(`INSERT INTO apps (id, name, client_id, client_secret_enc, edition, auth_url, api_url, health, created_at, updated_at)
			VALUES (?, ?, 'c', '', 'standard', 'https://a.example', 'https://b.example', ?, ?, ?)`, id, id, health, now, now).Error; err != nil {
			t.Fatal(err)
		}
	}
	const margin, grace = 10 * time.Minute, time.Minute
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	conns := []struct {
		id, app string
		status  models.Status
		expires *time.Time
		next    *time.Time
		lease   *time.Time
		overdue bool
	}{
		{"con_due_long", "app_ok", models.StatusActive, at(-time.Hour), nil, nil, true},        // due since 70 min
		{"con_due_inside", "app_ok", models.StatusActive, at(5 * time.Minute), nil, nil, true}, // due since 5 min
		{"con_just_due", "app_ok", models.StatusActive, at(9*time.Minute + 30*time.Second), nil, nil, false},
		{"con_fresh", "app_ok", models.StatusActive, at(time.Hour), nil, nil, false},
		{"con_leased", "app_ok", models.StatusActive, at(-time.Hour), nil, at(time.Minute), false},
		{"con_paused", "app_paused", models.StatusActive, at(-time.Hour), nil, nil, false},
		{"con_failing_due", "app_ok", models.StatusRefreshFailing, at(-time.Hour), at(-5 * time.Minute), nil, true},
		{"con_failing_wait", "app_ok", models.StatusRefreshFailing, at(-time.Hour), at(5 * time.Minute), nil, false},
		{"con_reconnect", "app_ok", models.StatusNeedsReconnect, at(-time.Hour), nil, nil, false},
	}
	want := int64(0)
	for i, c := range conns {
		row := models.Connection{ID: c.id, AppID: c.app, AccountID: c.id, Status: c.status, ExpiresAt: c.expires, NextAttemptAt: c.next,
			LeaseUntil: c.lease, ConnectedAt: now, CreatedAt: now, UpdatedAt: now}
		if c.lease != nil {
			row.LeaseOwner = "worker"
		}
		if err := store.DB().Create(&row).Error; err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if c.overdue {
			want++
		}
	}
	b, err := store.RefreshBacklog(ctx, now, margin, grace)
	if err != nil {
		t.Fatal(err)
	}
	if b.Overdue != want {
		t.Errorf("%d overdue, want %d", b.Overdue, want)
	}
	if b.Since == nil || !b.Since.Equal(now.Add(-time.Hour-margin)) {
		t.Errorf("longest due since %v, want %v", b.Since, now.Add(-time.Hour-margin))
	}
	if empty, err := modelstest.New(t).RefreshBacklog(ctx, now, margin, grace); err != nil || empty.Overdue != 0 || empty.Since != nil {
		t.Errorf("an empty database: %+v, %v", empty, err)
	}
	states, err := store.AppStates(ctx)
	if err != nil || len(states) != 2 || states[1].Health != models.AppCredentialsRejected {
		t.Errorf("app states = %+v, %v", states, err)
	}
}

func TestOutboxTotals(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	if f, err := store.OutboxTotals(ctx); err != nil || f.Pending != 0 || f.Oldest != nil {
		t.Fatalf("empty outbox = %+v, %v", f, err)
	}
	now := models.Now()
	store.DB().Exec(`INSERT INTO apps (id, name, client_id, client_secret_enc, edition, auth_url, api_url, created_at, updated_at)
		VALUES ('app_1', 'a', 'c', '', 'standard', 'https://a.example', 'https://b.example', ?, ?)`, now, now)
	for i, st := range []string{"delivered", "pending", "pending", "failed"} {
		if err := store.DB().Exec(`INSERT INTO webhook_deliveries (app_id, event_id, event_type, payload, status, next_attempt_at, created_at)
			VALUES ('app_1', ?, 'connection.created', '{}', ?, ?, ?)`, i, st, now, now.Add(-time.Duration(10-i)*time.Minute)).Error; err != nil {
			t.Fatal(err)
		}
	}
	f, err := store.OutboxTotals(ctx)
	if err != nil || f.Pending != 2 || f.Oldest == nil || !f.Oldest.Equal(now.Add(-9*time.Minute)) {
		t.Fatalf("outbox = %+v, %v (want 2 pending, the oldest 9 minutes old)", f, err)
	}
}
