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

// countsByQuery counts the connections per app and state the slow way.
func countsByQuery(t *testing.T, store *models.Store) map[string]int64 {
	t.Helper()
	var rows []struct {
		AppID  string
		Status string
		N      int64
	}
	if err := store.DB().Raw("SELECT app_id, status, COUNT(*) AS n FROM connections GROUP BY app_id, status").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.AppID+"/"+r.Status] = r.N
	}
	return out
}

func countsKept(t *testing.T, store *models.Store) map[string]int64 {
	t.Helper()
	totals, err := store.ConnectionTotals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, r := range totals {
		out[r.AppID+"/"+string(r.Status)] = r.N
	}
	return out
}

func sameCounts(t *testing.T, store *models.Store, when string) {
	t.Helper()
	want, got := countsByQuery(t, store), countsKept(t, store)
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("%s: kept counts %v, the connections hold %v", when, got, want)
	}
	byStatus, err := store.CountByStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sum := map[models.Status]int64{}
	for k, n := range want {
		for _, st := range models.Statuses {
			if len(k) > len(st) && k[len(k)-len(st)-1:] == "/"+string(st) {
				sum[st] += n
			}
		}
	}
	if fmt.Sprint(sum) != fmt.Sprint(byStatus) {
		t.Fatalf("%s: by status %v, want %v", when, byStatus, sum)
	}
}

// TestConnectionCountsFollowEveryWrite: the kept counts equal counting the
// connections after inserts, changes of state and app (from many writers at
// once), deletes, and folding.
func TestConnectionCountsFollowEveryWrite(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	now := models.Now()
	var apps []string
	for i := range 2 {
		app := &models.App{ID: models.NewID("app"), Name: fmt.Sprintf("App %d", i), ClientID: "c", ClientSecretEnc: "x", Edition: "standard",
			AuthURL: "https://a.example", APIURL: "https://a.example/v3", CreatedAt: now, UpdatedAt: now}
		if err := store.DB().Create(app).Error; err != nil {
			t.Fatal(err)
		}
		apps = append(apps, app.ID)
	}
	var ids []string
	for i := range 60 {
		c := &models.Connection{ID: models.NewID("con"), AppID: apps[i%2], AccountID: fmt.Sprintf("A%d", i), Status: models.Statuses[i%4], ConnectedAt: now}
		if err := store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	sameCounts(t, store, "after inserts")
	// Many writers change states at once (on PostgreSQL, concurrent transactions).
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := w; i < len(ids); i += 6 {
				for _, st := range []models.Status{models.StatusRefreshFailing, models.StatusActive, models.StatusNeedsReconnect} {
					if err := store.DB().Exec("UPDATE connections SET status = ?, updated_at = ? WHERE id = ?", st, time.Now(), ids[i]).Error; err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	sameCounts(t, store, "after concurrent changes of state")
	if err := store.DB().Exec("UPDATE connections SET app_id = ? WHERE id IN ?", apps[1], ids[:10]).Error; err != nil {
		t.Fatal(err)
	}
	// A write that changes neither app nor state adds nothing.
	if err := store.DB().Exec("UPDATE connections SET account_email = 'x@example.com'").Error; err != nil {
		t.Fatal(err)
	}
	if err := store.DB().Exec("DELETE FROM connections WHERE id IN ?", ids[50:]).Error; err != nil {
		t.Fatal(err)
	}
	sameCounts(t, store, "after moves and deletes")
	folded, err := store.CompactConnectionCounts(ctx)
	if err != nil || folded == 0 {
		t.Fatalf("folded %d rows: %v", folded, err)
	}
	var rows int64
	store.DB().Raw("SELECT COUNT(*) FROM connection_counts").Scan(&rows)
	if rows > 8 {
		t.Fatalf("%d rows after folding, want one per app and state at most", rows)
	}
	sameCounts(t, store, "after folding")
	if err := store.DB().Exec("UPDATE connections SET status = ? WHERE id = ?", models.StatusDisconnected, ids[0]).Error; err != nil {
		t.Fatal(err)
	}
	sameCounts(t, store, "after a change past the folding")
}

// TestAReadFoldsAWaveOfCounts: after a bulk import the kept counts hold a row per
// inserted connection; the first read that sees more than a thousand extra rows
// folds them in the background (the counts stay exact throughout), so the reads
// after it sum a few rows — not a thousand per imported batch until housekeeping.
func TestAReadFoldsAWaveOfCounts(t *testing.T) {
	t.Parallel()
	store := modelstest.New(t)
	now := models.Now()
	app := &models.App{ID: models.NewID("app"), Name: "App", ClientID: "c", ClientSecretEnc: "x", Edition: "standard",
		AuthURL: "https://a.example", APIURL: "https://a.example/v3", CreatedAt: now, UpdatedAt: now}
	if err := store.DB().Create(app).Error; err != nil {
		t.Fatal(err)
	}
	rows := func() (n int64) {
		store.DB().Raw("SELECT COUNT(*) FROM connection_counts").Scan(&n)
		return n
	}
	batch := make([]models.Connection, 0, 1500)
	for i := range 1500 {
		batch = append(batch, models.Connection{ID: models.NewID("con"), AppID: app.ID, AccountID: fmt.Sprintf("A%d", i),
			Status: models.Statuses[i%3], ConnectedAt: now})
	}
	if err := store.DB().CreateInBatches(batch, 100).Error; err != nil {
		t.Fatal(err)
	}
	if n := rows(); n < 1500 {
		t.Fatalf("%d rows of counts after 1,500 inserts, want one each before any fold", n)
	}
	sameCounts(t, store, "the read that starts the fold")
	deadline := time.Now().Add(10 * time.Second)
	for rows() > 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows of counts 10 s after the read, want them folded into one per state", rows())
		}
		time.Sleep(10 * time.Millisecond)
	}
	sameCounts(t, store, "after the fold")
	// A few new rows are left for housekeeping.
	if err := store.DB().Exec("UPDATE connections SET status = ? WHERE id = ?", models.StatusDisconnected, batch[0].ID).Error; err != nil {
		t.Fatal(err)
	}
	sameCounts(t, store, "after one more change")
	time.Sleep(100 * time.Millisecond)
	if n := rows(); n <= 3 {
		t.Fatalf("%d rows of counts: a read folded a handful of rows", n)
	}
	// A wave that cancels out (1,200 connections made and deleted) sums to
	// nothing, yet its rows are read: it is folded too.
	left := rows()
	other := &models.App{ID: models.NewID("app"), Name: "Other", ClientID: "c2", ClientSecretEnc: "x", Edition: "standard",
		AuthURL: "https://a.example", APIURL: "https://a.example/v3", CreatedAt: now, UpdatedAt: now}
	if err := store.DB().Create(other).Error; err != nil {
		t.Fatal(err)
	}
	wave := make([]models.Connection, 0, 1200)
	for i := range 1200 {
		wave = append(wave, models.Connection{ID: models.NewID("con"), AppID: other.ID, AccountID: fmt.Sprintf("W%d", i),
			Status: models.StatusNeedsReconnect, ConnectedAt: now})
	}
	if err := store.DB().CreateInBatches(wave, 100).Error; err != nil {
		t.Fatal(err)
	}
	if err := store.DB().Where("account_id LIKE ?", "W%").Delete(&models.Connection{}).Error; err != nil {
		t.Fatal(err)
	}
	sameCounts(t, store, "the read after a wave that cancels out")
	for deadline := time.Now().Add(10 * time.Second); rows() >= left+2400; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d rows of counts 10 s after the read, want the cancelled wave folded", rows())
		}
	}
	sameCounts(t, store, "after the cancelled wave's fold")
}
