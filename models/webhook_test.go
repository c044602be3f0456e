package models_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// TestDueDeliveriesLeasedOnceAcrossProcesses lets four "replicas" (stores of their
// own on one database) lease due webhook deliveries at once: every delivery is leased
// by exactly one of them, and a connection's second delivery never while its first is
// pending.
func TestDueDeliveriesLeasedOnceAcrossProcesses(t *testing.T) {
	dsn := modelstest.Database(t, t.TempDir())
	store := modelstest.NewAt(t, dsn)
	ctx := context.Background()
	now := models.Now()
	app := &models.App{ID: models.NewID("app"), Name: "Acme", ClientID: "c", ClientSecretEnc: "x", Edition: "standard",
		AuthURL: "https://a.example", APIURL: "https://a.example/v3", WebhookURL: "https://hooks.example", CreatedAt: now, UpdatedAt: now}
	if err := store.DB().Create(app).Error; err != nil {
		t.Fatal(err)
	}
	const conns = 150
	var deliveries []models.WebhookDelivery
	for i := range conns {
		id := models.NewID("con")
		exp := now.Add(time.Hour)
		c := &models.Connection{ID: id, AppID: app.ID, AccountID: id, Status: models.StatusActive, ExpiresAt: &exp, ConnectedAt: now}
		if err := store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
		for j := range 2 { // two deliveries per connection: only the first is due
			deliveries = append(deliveries, models.WebhookDelivery{AppID: app.ID, ConnectionID: &c.ID, EventID: int64(2*i + j), EventType: "connection.created",
				Payload: "{}", Status: models.DeliveryPending, NextAttemptAt: now.Add(-time.Minute), CreatedAt: now})
		}
	}
	if err := store.DB().CreateInBatches(deliveries, 100).Error; err != nil {
		t.Fatal(err)
	}
	const replicas = 4
	leased := make([][]models.WebhookDelivery, replicas)
	var wg sync.WaitGroup
	for r := range replicas {
		other := openRaw(t, dsn)
		wg.Go(func() {
			owner := "replica-" + string(rune('a'+r))
			for range 10 {
				got, err := other.DueDeliveries(ctx, owner, models.Now(), time.Minute, 25)
				if err != nil {
					t.Error(err)
					return
				}
				leased[r] = append(leased[r], got...)
			}
		})
	}
	wg.Wait()
	seen := map[int64]string{}
	perConn := map[string]int{}
	for r, ds := range leased {
		for _, d := range ds {
			if prev, dup := seen[d.ID]; dup {
				t.Fatalf("delivery %d leased by %s and replica %d", d.ID, prev, r)
			}
			seen[d.ID] = string(rune('a' + r))
			perConn[*d.ConnectionID]++
		}
	}
	if len(seen) != conns {
		t.Fatalf("%d deliveries leased, want %d (each connection's first)", len(seen), conns)
	}
	for c, n := range perConn {
		if n != 1 {
			t.Fatalf("connection %s had %d deliveries leased at once", c, n)
		}
	}
}
