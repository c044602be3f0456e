package services_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/infra/secrets"
	"github.com/grconnect/grconnect/services/tokens/tokenstest"
)

// BenchmarkBackup100k backs up an install of 100,000 connections (two sealed
// tokens each, GetResponse-sized, and five timeline events each) with
// grconnect backup's code, and reports the backup's size:
//
//	go test -run '^$' -bench Backup100k -benchtime 3x ./services/
func BenchmarkBackup100k(b *testing.B) {
	modelstest.SkipOnPostgres(b, "grconnect backup copies SQLite")
	const n, eventsEach = 100_000, 5
	dir := b.TempDir()
	store := modelstest.NewAt(b, filepath.Join(dir, "grconnect.db"))
	box, _ := secrets.New(tokenstest.Key)
	ctx := context.Background()
	now := models.Now()
	if err := store.DB().Exec(`INSERT INTO apps (id, name, client_id, client_secret_enc, edition, auth_url, api_url, created_at, updated_at)
		VALUES ('app_1', 'Acme', 'acme', '', 'standard', 'https://a.example', 'https://api.example/v3', ?, ?)`, now, now).Error; err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	conns := make([]models.Connection, 0, 1000)
	events := make([]models.Event, 0, 1000*eventsEach)
	for i := range n {
		id := fmt.Sprintf("con_%016d", i)
		exp := now.Add(time.Duration(i%3600) * time.Second)
		c := models.Connection{ID: id, AppID: "app_1", AccountID: fmt.Sprintf("A%07d", i), AccountEmail: fmt.Sprintf("user%07d@example.com", i),
			AccountName: fmt.Sprintf("User %07d", i), CustomerRef: fmt.Sprintf("customer-%07d", i), Status: models.StatusActive,
			ExpiresAt: &exp, LastRefreshAt: &now, ConnectedAt: now, CreatedAt: now, UpdatedAt: now, TokenFingerprint: "fp" + id[4:12]}
		c.AccessTokenEnc, _ = box.Seal(fmt.Sprintf("%040x", i), secrets.AAD("connection", id, "access_token"))
		c.RefreshTokenEnc, _ = box.Seal(fmt.Sprintf("%040x", i+n), secrets.AAD("connection", id, "refresh_token"))
		conns = append(conns, c)
		for e := range eventsEach {
			events = append(events, models.Event{ConnectionID: &c.ID, Type: models.EventType("refresh.succeeded"), Message: "Refreshed; valid until 2026-01-02 03:04 UTC",
				Actor: "refresher", CreatedAt: now.Add(-time.Duration(e) * time.Hour)})
		}
		if len(conns) == cap(conns) {
			if err := store.DB().CreateInBatches(conns, 250).Error; err != nil {
				b.Fatal(err)
			}
			if err := store.DB().CreateInBatches(events, 500).Error; err != nil {
				b.Fatal(err)
			}
			conns, events = conns[:0], events[:0]
		}
	}
	st, _ := os.Stat(filepath.Join(dir, "grconnect.db"))
	b.Logf("seeded %d connections and %d events in %v; the live database file is %s (plus its -wal)", n, n*eventsEach, time.Since(start).Round(time.Second), services.FormatBytes(st.Size()))
	var size int64
	i := 0
	for b.Loop() {
		i++
		bk, took, err := services.Backup(ctx, store, box, filepath.Join(dir, fmt.Sprintf("backup-%d.db", i)))
		if err != nil {
			b.Fatal(err)
		}
		size = bk.Size
		b.Logf("backup %d: %s in %v", i, services.FormatBytes(bk.Size), took.Round(time.Millisecond))
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB/backup")
	start = time.Now()
	rep, err := services.Verify(ctx, mustOpenReadOnly(b, filepath.Join(dir, "backup-1.db")), box)
	if err != nil || len(rep.Problems) > 0 {
		b.Fatalf("verify: %v %v", err, rep.Problems)
	}
	b.Logf("grconnect verify of the backup (integrity check, %d sealed values opened): %v", 2*n, time.Since(start).Round(time.Millisecond))
}

func mustOpenReadOnly(b *testing.B, path string) *models.Store {
	s, err := models.OpenReadOnly(path, tokenstest.Discard())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
