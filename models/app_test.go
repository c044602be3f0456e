package models_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// createApp stores a standard app for a test; change adjusts it first.
func createApp(t *testing.T, store *models.Store, change func(*models.App)) *models.App {
	t.Helper()
	app := &models.App{ID: models.NewID("app"), Name: "A", ClientID: "c", ClientSecretEnc: "x", Edition: "standard",
		AuthURL: "https://a.example", APIURL: "https://a.example/v3"}
	if change != nil {
		change(app)
	}
	if err := store.CreateApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	return app
}

// TestAppEditKeepsItsHealth: an operator's edit saves the app as it was read; a
// health change that landed meanwhile (the engine's) stays.
func TestAppEditKeepsItsHealth(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	app := createApp(t, store, nil)
	read, err := store.AppByID(ctx, app.ID) // the edit form's copy
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetAppHealth(ctx, app.ID, models.AppHealthChange{Health: models.AppCredentialsRejected, Reason: "invalid_client", Message: "rejected", Actor: "system"}); err != nil {
		t.Fatal(err)
	}
	read.Name = "B"
	if err := store.UpdateAppAudited(ctx, read, &models.Event{AppID: &read.ID, Type: "app.updated", Message: "renamed", Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	got, err := store.AppByID(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "B" || got.Health != models.AppCredentialsRejected || got.HealthReason != "invalid_client" || got.HealthSince == nil {
		t.Fatalf("after the edit: name %q, health %q (%q, since %v); want the new name and the engine's health", got.Name, got.Health, got.HealthReason, got.HealthSince)
	}
}

// TestAppHealthChangesOnceUnderConcurrency: 30 workers meeting the same failure at
// once move the app once, with one event (one alert), on either database.
func TestAppHealthChangesOnceUnderConcurrency(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	app := createApp(t, store, nil)
	var changes atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 30 {
		wg.Go(func() {
			<-start
			changed, err := store.SetAppHealth(ctx, app.ID, models.AppHealthChange{Health: models.AppCredentialsRejected, Reason: "invalid_client", Message: "rejected", Actor: "system"})
			if err != nil {
				t.Error(err)
			}
			if changed {
				changes.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	var events int64
	store.DB().Model(&models.Event{}).Where("app_id = ? AND type = ?", app.ID, models.EventAppUnhealthy).Count(&events)
	if changes.Load() != 1 || events != 1 {
		t.Fatalf("30 concurrent failures: %d changes, %d app.unhealthy events; want 1 and 1", changes.Load(), events)
	}
}
