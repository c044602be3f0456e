package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

func TestSaveRefreshesCommitsAGroup(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	now := models.Now()
	app := &models.App{ID: models.NewID("app"), Name: "A", ClientID: "c", ClientSecretEnc: "x", Edition: "standard", AuthURL: "https://a.example", APIURL: "https://a.example/v3"}
	if err := store.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	var outs []models.RefreshOutcome
	for i, st := range []models.Status{models.StatusActive, models.StatusActive, models.StatusActive, models.StatusRefreshFailing, models.StatusActive} {
		exp := now.Add(time.Minute)
		c := &models.Connection{ID: models.NewID("con"), AppID: app.ID, AccountID: models.NewID("acc"), Status: st, ConnectedAt: now, ExpiresAt: &exp, LeaseOwner: "me", FailureCount: i}
		if err := store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
		r := models.RefreshResult{LeaseOwner: "me", At: now, Event: models.Event{Type: "refresh.succeeded", Message: "ok", Actor: "system"},
			Tokens: &models.SealedTokens{AccessEnc: "v1.new", Fingerprint: "fp", ExpiresAt: now.Add(time.Hour)}, Recovered: st != models.StatusActive}
		outs = append(outs, models.RefreshOutcome{Prev: c, Result: r})
	}
	// The second's tokens were replaced meanwhile (a reconnect, or another refresh);
	// the third was disconnected; the fifth's lease expired and another worker holds
	// one now, but no newer pair was stored: its pair must still land.
	store.DB().Model(&models.Connection{}).Where("id = ?", outs[1].Prev.ID).Update("token_version", 1)
	store.DB().Model(&models.Connection{}).Where("id = ?", outs[4].Prev.ID).Update("lease_owner", "someone-else")
	if err := store.Disconnect(ctx, outs[2].Prev.ID, "ann"); err != nil {
		t.Fatal(err)
	}
	saved, errs, err := store.SaveRefreshes(ctx, outs)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || !errors.Is(errs[1], models.ErrSuperseded) || !errors.Is(errs[2], models.ErrDisconnected) || errs[3] != nil || errs[4] != nil {
		t.Fatalf("per-outcome errors = %v", errs)
	}
	for _, i := range []int{0, 3} {
		got, _ := store.ConnectionByID(ctx, outs[i].Prev.ID)
		if got.AccessTokenEnc != "v1.new" || got.Status != models.StatusActive || got.LeaseOwner != "" || got.FailureCount != 0 || got.TokenVersion != 1 || saved[i].AccessTokenEnc != "v1.new" {
			t.Fatalf("outcome %d not saved: %+v", i, got)
		}
	}
	if got, _ := store.ConnectionByID(ctx, outs[1].Prev.ID); got.AccessTokenEnc == "v1.new" {
		t.Fatal("an outcome over a replaced token pair was written")
	}
	if got, _ := store.ConnectionByID(ctx, outs[4].Prev.ID); got.AccessTokenEnc != "v1.new" || got.LeaseOwner != "someone-else" {
		t.Fatalf("a late pair: stored %q, lease %q; want the pair stored and the other worker's lease kept", got.AccessTokenEnc, got.LeaseOwner)
	}
	var types []string
	store.DB().Model(&models.Event{}).Where("connection_id = ?", outs[3].Prev.ID).Order("id").Pluck("type", &types)
	if len(types) != 2 || types[0] != "refresh.succeeded" || types[1] != "connection.recovered" {
		t.Fatalf("events of the recovered connection, in order: %v", types)
	}
	stats, _ := store.RefreshStats(ctx, now, 1)
	if stats[0].Succeeded != 3 || stats[0].Failed != 0 {
		t.Fatalf("day's counters = %+v, want 3 succeeded", stats[0])
	}
}
