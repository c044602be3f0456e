package models_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// seedConnection inserts an active connection with a pair (version 0).
func seedConnection(t *testing.T, store *models.Store, app *models.App, account string, mutate func(*models.Connection)) *models.Connection {
	t.Helper()
	now := models.Now()
	exp := now.Add(time.Hour)
	c := &models.Connection{ID: models.NewID("con"), AppID: app.ID, AccountID: account, Status: models.StatusActive, ConnectedAt: now,
		ExpiresAt: &exp, AccessTokenEnc: "old-access", RefreshTokenEnc: "old-refresh"}
	if mutate != nil {
		mutate(c)
	}
	if err := store.DB().Create(c).Error; err != nil {
		t.Fatal(err)
	}
	return c
}

func storedConnection(t *testing.T, store *models.Store, id string) *models.Connection {
	t.Helper()
	c, err := store.ConnectionByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func eventTypes(t *testing.T, store *models.Store, id string) []models.EventType {
	t.Helper()
	evs, _, err := store.ConnectionEvents(context.Background(), id, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	var out []models.EventType
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// A lease is renewed only by its owner; one that ended is taken over only with a
// cutoff (the zero time takes released leases alone).
func TestLeaseRenewalAndCutoff(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	app := createApp(t, store, nil)
	c := seedConnection(t, store, app, "a1", nil)
	now := models.Now()
	if rows, err := store.AcquireLeases(ctx, []string{c.ID}, "p1/1", now, now.Add(10*time.Second)); err != nil || len(rows) != 1 {
		t.Fatalf("first lease: %d rows, %v", len(rows), err)
	}
	if held, err := store.RenewLease(ctx, c.ID, "p2/1", now.Add(time.Hour)); err != nil || held {
		t.Fatalf("another owner renewed the lease: %v, %v", held, err)
	}
	later := now.Add(20 * time.Second) // the lease ended at now+10s
	if rows, err := store.AcquireLeases(ctx, []string{c.ID}, "p2/1", time.Time{}, later.Add(10*time.Second)); err != nil || len(rows) != 0 {
		t.Fatalf("an ended lease was taken with the zero cutoff: %d rows, %v", len(rows), err)
	}
	// Its owner renews it even after it ended, as long as nobody took it.
	if held, err := store.RenewLease(ctx, c.ID, "p1/1", later.Add(10*time.Second)); err != nil || !held {
		t.Fatalf("the owner could not renew its ended lease: %v, %v", held, err)
	}
	if rows, err := store.AcquireLeases(ctx, []string{c.ID}, "p2/1", later, later.Add(10*time.Second)); err != nil || len(rows) != 0 {
		t.Fatalf("a renewed lease was taken: %d rows, %v", len(rows), err)
	}
	muchLater := later.Add(time.Minute)
	rows, err := store.AcquireLeases(ctx, []string{c.ID}, "p2/1", muchLater, muchLater.Add(10*time.Second))
	if err != nil || len(rows) != 1 || rows[0].InterruptedBy != "p1/1" {
		t.Fatalf("the ended lease was not taken over with its interruption: %+v, %v", rows, err)
	}
	if held, err := store.RenewLease(ctx, c.ID, "p1/1", muchLater.Add(time.Hour)); err != nil || held {
		t.Fatalf("the old owner renewed a lease taken over: %v, %v", held, err)
	}
	if err := store.ReleaseLease(ctx, c.ID, "p2/1"); err != nil {
		t.Fatal(err)
	}
	if rows, err := store.AcquireLeases(ctx, []string{c.ID}, "p3/1", time.Time{}, muchLater.Add(10*time.Second)); err != nil || len(rows) != 1 {
		t.Fatalf("a released lease was not taken with the zero cutoff: %d rows, %v", len(rows), err)
	}
}

// A pair received under a lease lands over a failure another process wrote on the
// same pair meanwhile (its refresh presented the refresh token this pair made
// dead): the state is recomputed from what is stored — active, error cleared, a
// recovery on the timeline — never left as the stale copy's.
func TestNewPairRecomputesStateFromStored(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	app := createApp(t, store, nil)
	c := seedConnection(t, store, app, "a1", nil)
	now := models.Now()
	rows, err := store.AcquireLeases(ctx, []string{c.ID}, "a/1", now, now.Add(time.Minute))
	if err != nil || len(rows) != 1 {
		t.Fatalf("lease: %v", err)
	}
	held := rows[0] // process A's copy, clean and active
	// Process B, later, presents the dead token and records needs_reconnect.
	later := now.Add(2 * time.Minute)
	brows, err := store.AcquireLeases(ctx, []string{c.ID}, "b/1", later, later.Add(time.Minute))
	if err != nil || len(brows) != 1 {
		t.Fatalf("B's lease: %v", err)
	}
	if _, err := store.SaveRefresh(ctx, &brows[0], models.RefreshResult{Status: models.StatusNeedsReconnect, Error: "invalid_grant",
		Event: models.Event{Type: models.EventNeedsReconnect, Message: "rejected"}, LeaseOwner: "b/1", At: later}); err != nil {
		t.Fatalf("B's failure: %v", err)
	}
	exp := later.Add(time.Hour)
	saved, evs, err := store.StoreRefreshTokens(ctx, &held, models.RefreshResult{
		Tokens: &models.SealedTokens{AccessEnc: "new-access", RefreshEnc: "new-refresh", ExpiresAt: exp},
		Event:  models.Event{Type: models.EventRefreshSucceeded, Message: "refreshed"}, LeaseOwner: "a/1", At: later.Add(time.Second)})
	if err != nil {
		t.Fatalf("A's pair did not land: %v", err)
	}
	if err := store.RecordRefreshEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	got := storedConnection(t, store, c.ID)
	if got.Status != models.StatusActive || got.LastError != "" || got.FailureCount != 0 || got.AccessTokenEnc != "new-access" ||
		got.RefreshTokenEnc != "new-refresh" || got.TokenVersion != 1 || saved.Status != models.StatusActive {
		t.Fatalf("after A's pair: %s %q failures %d version %d access %q", got.Status, got.LastError, got.FailureCount, got.TokenVersion, got.AccessTokenEnc)
	}
	types := eventTypes(t, store, c.ID)
	if !slices.Contains(types, models.EventRecovered) || !slices.Contains(types, models.EventRefreshSucceeded) {
		t.Fatalf("events %v: want a recovery after the pair", types)
	}

	// A clean write over a clean row stays one UPDATE with no recovery.
	d := seedConnection(t, store, app, "a2", nil)
	rows, _ = store.AcquireLeases(ctx, []string{d.ID}, "a/2", now, now.Add(time.Minute))
	if _, evs, err := store.StoreRefreshTokens(ctx, &rows[0], models.RefreshResult{Tokens: &models.SealedTokens{AccessEnc: "n", ExpiresAt: exp},
		Event: models.Event{Type: models.EventRefreshSucceeded}, LeaseOwner: "a/2"}); err != nil || len(evs) != 1 {
		t.Fatalf("clean pair: %d events, %v", len(evs), err)
	}
}

// A refresh that failed after another process's pair landed (it presented the
// token that pair replaced) is recognised by the token version and changes
// nothing: no state, no event.
func TestFailureAfterNewerPairChangesNothing(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	app := createApp(t, store, nil)
	c := seedConnection(t, store, app, "a1", nil)
	now := models.Now()
	stale := *c // what B read under its lease, before A's pair landed
	a, _ := store.AcquireLeases(ctx, []string{c.ID}, "a/1", now, now.Add(time.Minute))
	if _, _, err := store.StoreRefreshTokens(ctx, &a[0], models.RefreshResult{Tokens: &models.SealedTokens{AccessEnc: "new", ExpiresAt: now.Add(time.Hour)},
		Event: models.Event{Type: models.EventRefreshSucceeded}, LeaseOwner: "a/1"}); err != nil {
		t.Fatal(err)
	}
	before := eventTypes(t, store, c.ID)
	_, err := store.SaveRefresh(ctx, &stale, models.RefreshResult{Status: models.StatusNeedsReconnect, Error: "invalid_grant",
		Event: models.Event{Type: models.EventNeedsReconnect}, LeaseOwner: "b/1"})
	if !errors.Is(err, models.ErrSuperseded) {
		t.Fatalf("a failure over a newer pair: %v, want ErrSuperseded", err)
	}
	got := storedConnection(t, store, c.ID)
	if got.Status != models.StatusActive || got.LastError != "" || got.AccessTokenEnc != "new" || len(eventTypes(t, store, c.ID)) != len(before) {
		t.Fatalf("the superseded failure changed the row: %s %q %q", got.Status, got.LastError, got.AccessTokenEnc)
	}
}

// A replica whose heartbeat stopped is ended: its refresh and webhook leases (and
// no one else's, even a name it prefixes) end at once, its row goes; a replica
// that beat again meanwhile is left alone.
func TestEndReplica(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	app := createApp(t, store, func(a *models.App) { a.WebhookURL = "https://hooks.example" })
	now := models.Now()
	until := now.Add(time.Minute)
	dead, alive := "host/12/abcd", "host/12/abcdx"
	mine := seedConnection(t, store, app, "a1", func(c *models.Connection) { c.LeaseOwner, c.LeaseUntil = dead+"/w1", &until })
	theirs := seedConnection(t, store, app, "a2", func(c *models.Connection) { c.LeaseOwner, c.LeaseUntil = alive+"/w1", &until })
	d := &models.WebhookDelivery{AppID: app.ID, ConnectionID: &mine.ID, EventID: 1, EventType: "connection.created", Payload: "{}",
		Status: models.DeliveryPending, NextAttemptAt: now.Add(-time.Minute), CreatedAt: now, LeaseOwner: dead + "/webhooks", LeaseUntil: &until}
	if err := store.DB().Create(d).Error; err != nil {
		t.Fatal(err)
	}
	if err := store.Heartbeat(ctx, dead, now.Add(-time.Hour), now.Add(-30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := store.Heartbeat(ctx, alive, now.Add(-time.Hour), now.Add(-30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := store.Heartbeat(ctx, alive, now.Add(-time.Hour), now); err != nil { // beats again: an update
		t.Fatal(err)
	}
	cutoff := now.Add(-10 * time.Second)
	silent, err := store.SilentReplicas(ctx, cutoff)
	if err != nil || len(silent) != 1 || silent[0].ID != dead {
		t.Fatalf("silent replicas = %+v, %v; want only %s", silent, err, dead)
	}
	if ended, _, _, err := store.EndReplica(ctx, alive, cutoff, now); err != nil || ended {
		t.Fatalf("a beating replica was ended: %v, %v", ended, err)
	}
	ended, refreshes, webhooks, err := store.EndReplica(ctx, dead, cutoff, now)
	if err != nil || !ended || refreshes != 1 || webhooks != 1 {
		t.Fatalf("EndReplica = %v, %d, %d, %v; want one refresh and one webhook lease", ended, refreshes, webhooks, err)
	}
	if ended, _, _, _ := store.EndReplica(ctx, dead, cutoff, now); ended {
		t.Fatal("a replica was ended twice")
	}
	rows, err := store.AcquireLeases(ctx, []string{mine.ID, theirs.ID}, "next/1", now, now.Add(time.Minute))
	if err != nil || len(rows) != 1 || rows[0].ID != mine.ID || rows[0].InterruptedBy != dead+"/w1" {
		t.Fatalf("after EndReplica, leased %+v (%v); want only the ended replica's connection, marked interrupted", rows, err)
	}
	if ds, err := store.DueDeliveries(ctx, "next/webhooks", now, time.Minute, 10); err != nil || len(ds) != 1 {
		t.Fatalf("the ended replica's delivery is not due again: %v, %v", ds, err)
	}
	if err := store.RemoveReplica(ctx, alive); err != nil {
		t.Fatal(err)
	}
	if silent, _ := store.SilentReplicas(ctx, now.Add(time.Hour)); len(silent) != 0 {
		t.Fatalf("replicas left: %+v", silent)
	}
}
