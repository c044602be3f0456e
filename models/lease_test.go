package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// A killed server's leases end at once when the next one starts alone: the
// connection it was refreshing is leased again with its interruption recorded,
// its webhook delivery is sent again, and nothing else changes.
func TestExpireOrphanLeases(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	now := models.Now()
	app := createApp(t, store, func(a *models.App) { a.WebhookURL = "https://hooks.example" })
	until := now.Add(time.Minute)
	exp := now.Add(time.Hour)
	leased := &models.Connection{ID: models.NewID("con"), AppID: app.ID, AccountID: "a1", Status: models.StatusActive, ConnectedAt: now,
		ExpiresAt: &exp, LeaseOwner: "dead", LeaseUntil: &until}
	free := &models.Connection{ID: models.NewID("con"), AppID: app.ID, AccountID: "a2", Status: models.StatusActive, ConnectedAt: now, ExpiresAt: &exp}
	for _, c := range []*models.Connection{leased, free} {
		if err := store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
	}
	d := &models.WebhookDelivery{AppID: app.ID, ConnectionID: &leased.ID, EventID: 1, EventType: "connection.created", Payload: "{}",
		Status: models.DeliveryPending, NextAttemptAt: now.Add(-time.Minute), CreatedAt: now, LeaseOwner: "dead", LeaseUntil: &until}
	if err := store.DB().Create(d).Error; err != nil {
		t.Fatal(err)
	}
	if got, err := store.AcquireLeases(ctx, []string{leased.ID}, "next", now, now.Add(time.Minute)); err != nil || len(got) != 0 {
		t.Fatalf("a held lease was taken before it ended: %v, %v", got, err)
	}
	if got, err := store.DueDeliveries(ctx, "next", now, time.Minute, 10); err != nil || len(got) != 0 {
		t.Fatalf("a leased delivery was due before its lease ended: %v, %v", got, err)
	}

	refreshes, webhooks, err := store.ExpireOrphanLeases(ctx, now)
	if err != nil || refreshes != 1 || webhooks != 1 {
		t.Fatalf("ExpireOrphanLeases = %d, %d, %v; want 1 refresh lease and 1 webhook lease", refreshes, webhooks, err)
	}
	got, err := store.AcquireLeases(ctx, []string{leased.ID, free.ID}, "next", now, now.Add(time.Minute))
	if err != nil || len(got) != 2 {
		t.Fatalf("leases after the orphans ended: %d rows, %v", len(got), err)
	}
	for _, c := range got {
		want := map[string]string{leased.ID: "dead", free.ID: ""}[c.ID]
		if c.InterruptedBy != want {
			t.Errorf("%s interrupted by %q, want %q", c.ID, c.InterruptedBy, want)
		}
	}
	if ds, err := store.DueDeliveries(ctx, "next", now, time.Minute, 10); err != nil || len(ds) != 1 || ds[0].ID != d.ID {
		t.Fatalf("the orphaned delivery is not due again: %v, %v", ds, err)
	}
}
