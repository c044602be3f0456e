package models_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// newConn stores a live connection of app.
func newConn(t *testing.T, store *models.Store, appID string) *models.Connection {
	t.Helper()
	now := models.Now()
	exp := now.Add(time.Hour)
	c := &models.Connection{ID: models.NewID("con"), AppID: appID, CustomerRef: "cust", Status: models.StatusActive, ExpiresAt: &exp, ConnectedAt: now}
	c.AccountID = c.ID
	if err := store.DB().Create(c).Error; err != nil {
		t.Fatal(err)
	}
	return c
}

// TestInboundEventsKeptOnceUnderParallelDuplicates sends one event many times at
// once, as GetResponse's retries and a busy network may: by X-Webhook-ID, and
// (without one) by content within the window, exactly one row is kept.
func TestInboundEventsKeptOnceUnderParallelDuplicates(t *testing.T) {
	dsn := modelstest.Database(t, t.TempDir())
	store := modelstest.NewAt(t, dsn)
	app := createApp(t, store, nil)
	conn := newConn(t, store, app.ID)
	now := models.Now()
	for _, c := range []struct{ key, previous string }{{"wh:abc", ""}, {"ct:hash:101", "ct:hash:100"}} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		stored := 0
		for range 20 {
			other := openRaw(t, dsn) // as several processes would
			wg.Go(func() {
				e := &models.InboundEvent{ConnectionID: conn.ID, AppID: app.ID, Source: "webhook", Type: "t", DedupKey: c.key, Payload: "{}", ReceivedAt: now}
				kept, err := other.StoreInboundEvents(context.Background(), []models.NewInbound{{Event: e, Previous: c.previous, Window: time.Minute}})
				if err != nil {
					t.Error(err)
					return
				}
				if kept[0] {
					mu.Lock()
					stored++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if stored != 1 {
			t.Fatalf("%s: stored %d times, want once", c.key, stored)
		}
	}
	// The previous window's twin, received within the window, counts as the same
	// event; received earlier, not.
	keep := func(es ...models.NewInbound) []bool {
		t.Helper()
		kept, err := store.StoreInboundEvents(context.Background(), es)
		if err != nil {
			t.Fatal(err)
		}
		return kept
	}
	e := &models.InboundEvent{ConnectionID: conn.ID, AppID: app.ID, Source: "callback", Type: "open", DedupKey: "ct:hash:102", Payload: "{}", ReceivedAt: now.Add(30 * time.Second)}
	if keep(models.NewInbound{Event: e, Previous: "ct:hash:101", Window: time.Minute})[0] {
		t.Fatal("a duplicate across the window's edge was kept")
	}
	e.ReceivedAt = now.Add(2 * time.Minute)
	if !keep(models.NewInbound{Event: e, Previous: "ct:hash:101", Window: time.Minute})[0] {
		t.Fatal("the same content a window later was not kept")
	}
	// In one batch (a group commit): a twin, and the next window's twin, are
	// duplicates of the first; another event is kept; the IDs come back.
	ev := func(key string) *models.InboundEvent {
		return &models.InboundEvent{ConnectionID: conn.ID, AppID: app.ID, Source: "webhook", Type: "t", DedupKey: key, Payload: "{}", ReceivedAt: now}
	}
	batch := []models.NewInbound{{Event: ev("wh:b1")}, {Event: ev("wh:b1")}, {Event: ev("ct:x:5"), Window: time.Minute},
		{Event: ev("ct:x:6"), Previous: "ct:x:5", Window: time.Minute}, {Event: ev("wh:b2")}, {Event: ev("wh:abc")}}
	got := keep(batch...)
	if fmt.Sprint(got) != "[true false true false true false]" || batch[0].Event.ID == 0 || batch[4].Event.ID <= batch[0].Event.ID {
		t.Fatalf("kept %v, IDs %d %d", got, batch[0].Event.ID, batch[4].Event.ID)
	}
}

// TestRelayedEventsAreNotOrderedButConnectionEventsAre: a connection's relayed
// GetResponse events are leased together (a busy account is not sent one at a
// time), while its own events still go out one at a time, in order, and are not
// held up by the GetResponse events queued before them.
func TestRelayedEventsAreNotOrderedButConnectionEventsAre(t *testing.T) {
	store := modelstest.NewAt(t, modelstest.Database(t, t.TempDir()))
	app := createApp(t, store, func(a *models.App) { a.WebhookURL = "https://hooks.example" })
	conn := newConn(t, store, app.ID)
	now := models.Now()
	add := func(typ string) {
		d := models.WebhookDelivery{AppID: app.ID, ConnectionID: &conn.ID, EventType: typ, Payload: "{}", Status: models.DeliveryPending,
			NextAttemptAt: now.Add(-time.Minute), CreatedAt: now}
		if err := store.DB().Create(&d).Error; err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		add(models.WebhookGetResponseEvent)
	}
	add("connection.refresh_failed")
	add("connection.recovered")
	got, err := store.DueDeliveries(context.Background(), "w/1", now, time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, d := range got {
		types[d.EventType]++
	}
	if types[models.WebhookGetResponseEvent] != 5 || types["connection.refresh_failed"] != 1 || types["connection.recovered"] != 0 {
		t.Fatalf("leased %v; want every getresponse.event and only the first connection event", types)
	}
	// Another worker leases nothing the first holds.
	if again, _ := store.DueDeliveries(context.Background(), "w/2", now, time.Minute, 100); len(again) != 0 {
		t.Fatalf("%d deliveries leased twice", len(again))
	}
	// Outcomes under another owner's name are not recorded.
	if n, err := store.SaveDeliveries(context.Background(), "w/2", []models.DeliveryOutcome{{ID: got[0].ID, Delivered: true, At: now}}); n != 0 || err != nil {
		t.Fatalf("a foreign owner saved %d, %v", n, err)
	}
	var outcomes []models.DeliveryOutcome
	for _, d := range got {
		outcomes = append(outcomes, models.DeliveryOutcome{ID: d.ID, Delivered: true, StatusCode: 204, Duration: 3 * time.Millisecond, At: now})
	}
	if n, err := store.SaveDeliveries(context.Background(), "w/1", outcomes); n != len(got) || err != nil {
		t.Fatalf("saved %d of %d, %v", n, len(got), err)
	}
	next, _ := store.DueDeliveries(context.Background(), "w/3", now, time.Minute, 100)
	if len(next) != 1 || next[0].EventType != "connection.recovered" {
		t.Fatalf("after the first: %v", next)
	}
}

// TestCallbackOutcomeOfAnOldWantIsDropped: a registration sent while a disconnect
// queued the removal does not overwrite the removal, which stays pending.
func TestCallbackOutcomeOfAnOldWantIsDropped(t *testing.T) {
	store := modelstest.NewAt(t, modelstest.Database(t, t.TempDir()))
	app := createApp(t, store, func(a *models.App) { a.CallbackActions = "open,click" })
	conn := newConn(t, store, app.ID)
	if err := store.AddEvent(context.Background(), &models.Event{ConnectionID: &conn.ID, AppID: &app.ID, Type: models.EventConnectionCreated}); err != nil {
		t.Fatal(err)
	}
	now := models.Now()
	due, err := store.DueCallbacks(context.Background(), "cb/1", now, time.Minute, 10)
	if err != nil || len(due) != 1 || due[0].Want != models.CallbacksRegister || due[0].Actions != "open,click" {
		t.Fatalf("due = %+v, %v", due, err)
	}
	// Meanwhile the connection is disconnected (with a token to remove them with).
	store.DB().Model(&models.Connection{}).Where("id = ?", conn.ID).Update("access_token_enc", "sealed-token")
	if err := store.Disconnect(context.Background(), conn.ID, "ann"); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveCallbackOutcome(context.Background(), conn.ID, "cb/1", due[0].Version, models.CallbackOutcome{State: models.CallbacksDone}, now); err != nil {
		t.Fatal(err)
	}
	cb, _ := store.CallbackOf(context.Background(), conn.ID)
	if cb.Want != models.CallbacksRemove || cb.State != models.CallbacksPending || cb.LeaseOwner != "" {
		t.Fatalf("after the stale outcome: %+v", cb)
	}
	if enc, _ := store.CallbackAccessToken(context.Background(), conn.ID); enc != "sealed-token" {
		t.Fatalf("kept token %q", enc)
	}
	c, _ := store.ConnectionByID(context.Background(), conn.ID)
	if c.AccessTokenEnc != "" || c.EventsTokenHash != nil {
		t.Fatal("the disconnect kept a token")
	}
	// A second disconnect queues nothing new.
	store.Disconnect(context.Background(), conn.ID, "ann")
	again, _ := store.CallbackOf(context.Background(), conn.ID)
	if again.Version != cb.Version {
		t.Fatalf("a repeated disconnect queued again: version %d → %d", cb.Version, again.Version)
	}
}

// TestMigration17KeepsWebhooksAsTheyWere upgrades an install of the schema before
// version 17: its app keeps its webhook (every event type, no callbacks), its
// deliveries keep their message IDs (whd_<id>), and connections get events URLs
// only when first needed.
func TestMigration17KeepsWebhooksAsTheyWere(t *testing.T) {
	ctx := context.Background()
	store := openRaw(t, modelstest.Database(t, t.TempDir()))
	if err := store.MigrateBeforeForTest(ctx, 17); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO apps (id, name, client_id, client_secret_enc, edition, auth_url, api_url, webhook_url, webhook_secret_enc, created_at, updated_at)
			VALUES ('app_1', 'A', 'c', 'x', 'standard', 'https://a.example', 'https://a.example/v3', 'https://hooks.example', 'sealed', ?, ?)`, []any{now, now}},
		{`INSERT INTO connections (id, app_id, account_id, status, connected_at, created_at, updated_at) VALUES ('con_1', 'app_1', 'acc', 'active', ?, ?, ?)`, []any{now, now, now}},
		{`INSERT INTO webhook_deliveries (app_id, connection_id, event_id, event_type, payload, status, next_attempt_at, created_at)
			VALUES ('app_1', 'con_1', 1, 'connection.created', '{"id":"whd_1"}', 'delivered', ?, ?)`, []any{now, now}},
	} {
		if err := store.DB().Exec(stmt.sql, stmt.args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	app, err := store.AppByID(ctx, "app_1")
	if err != nil || app.WebhookEvents != "" || !app.WebhookSubscribed(models.WebhookGetResponseEvent) || app.CallbackActions != "" || app.WebhookURL != "https://hooks.example" {
		t.Fatalf("app after the upgrade: %+v %v", app, err)
	}
	d, err := store.DeliveryByID(ctx, 1)
	if err != nil || d.WebhookID() != "whd_1" || d.ReplayOf != nil {
		t.Fatalf("delivery after the upgrade: %+v %v", d, err)
	}
	c, _ := store.ConnectionByID(ctx, "con_1")
	if c.EventsTokenHash != nil || c.EventsTokenEnc != "" {
		t.Fatalf("connection after the upgrade: %+v", c)
	}
	if _, err := store.EventsTargetByHash(ctx, fmt.Sprintf("%064d", 0)); err != models.ErrNotFound {
		t.Fatalf("lookup of no token = %v", err)
	}
}

// TestLogWritesLeaveTheRowCachesAlone: storing, relaying and sweeping GetResponse's
// events writes only log tables, so the change counter the token and API-key
// caches trust stays put; a write to a connection still moves it.
func TestLogWritesLeaveTheRowCachesAlone(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	app := createApp(t, store, nil)
	conn := newConn(t, store, app.ID)
	before := store.Changes()
	e := &models.InboundEvent{ConnectionID: conn.ID, AppID: app.ID, Source: "webhook", Type: "subscribe", DedupKey: "wh:1", Payload: "{}", ReceivedAt: models.Now()}
	if _, err := store.StoreInboundEvents(ctx, []models.NewInbound{{Event: e}}); err != nil {
		t.Fatal(err)
	}
	claimed, err := store.ClaimInbound(ctx, "relay", models.Now(), time.Minute, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %d, %v", len(claimed), err)
	}
	if err := store.RelayInbound(ctx, "relay", claimed, models.Now(), func(*models.InboundEvent) string { return "an event" }); err != nil {
		t.Fatal(err)
	}
	if _, err := store.DeleteRelayedInboundBefore(ctx, models.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := store.Changes(); got != before {
		t.Fatalf("log writes moved the change counter from %d to %d: every cached token and key would be read again", before, got)
	}
	if err := store.Disconnect(ctx, conn.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if store.Changes() == before {
		t.Fatal("a disconnect did not move the change counter")
	}
}
