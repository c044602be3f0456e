package models_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestEveryAppWriteIsCounted: the app cache trusts AppWrites to rise after every
// write to apps, so each method that writes one must count it.
func TestEveryAppWriteIsCounted(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	var app *models.App
	retry := models.Now().Add(-time.Minute)
	writes := []struct {
		name  string
		write func() error
	}{
		{"CreateApp", func() error { app = createApp(t, store, nil); return nil }},
		{"UpdateApp", func() error { app.Name = "B"; return store.UpdateApp(ctx, app) }},
		{"UpdateAppAudited", func() error {
			app.Name = "C"
			return store.UpdateAppAudited(ctx, app, &models.Event{AppID: &app.ID, Type: models.EventAppUpdated, Message: "edited", Actor: "test"})
		}},
		{"SetAppHealth", func() error {
			_, err := store.SetAppHealth(ctx, app.ID, models.AppHealthChange{Health: models.AppRefused, Reason: "r", RetryAt: &retry, Actor: "test", Message: "m"})
			return err
		}},
		{"ClaimAppProbe", func() error {
			_, err := store.ClaimAppProbe(ctx, app.ID, models.Now(), models.Now().Add(time.Minute))
			return err
		}},
		{"SetWebhook", func() error {
			return store.SetWebhook(ctx, app.ID, models.WebhookSetting{URL: "https://hooks.example/x", SecretEnc: "sealed"})
		}},
		{"SetAppCallbacks", func() error { _, err := store.SetAppCallbacks(ctx, app.ID, "open,click"); return err }},
		{"ResealRows", func() error {
			_, err := store.ResealRows(ctx, models.SealedTables[0], []models.Reseal{{Key: app.ID, Old: map[string]string{"client_secret_enc": "x"}, New: map[string]string{"client_secret_enc": "y"}}})
			return err
		}},
		{"DeleteApp", func() error { _, err := store.DeleteApp(ctx, app.ID, "test", true); return err }},
	}
	if models.SealedTables[0].Table != "apps" {
		t.Fatalf("SealedTables[0] is %s; this test reseals apps", models.SealedTables[0].Table)
	}
	for _, w := range writes {
		before := store.AppWrites()
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if store.AppWrites() == before {
			t.Errorf("%s wrote an app but AppWrites stayed %d: the app cache would serve the old row", w.name, before)
		}
	}
}
