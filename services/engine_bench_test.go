package services_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

const benchConnections = 10_000

// BenchmarkRefresher refreshes 10,000 due connections against a zero-latency fake
// GetResponse with the rate limit lifted, and reports refreshes per second:
// go test -run '^$' -bench Refresher -benchtime 1x ./services/
func BenchmarkRefresher(b *testing.B) {
	e := newEngine(b, getresponsetest.Options{Rotation: getresponsetest.RotationRotate})
	for range benchConnections {
		e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil)
	}
	r := newRefresher(e.tokens, e.store, &countingLimiter{allow: 1 << 62}, services.RefresherConfig{Batch: 1000, Concurrency: 16})
	for b.Loop() {
		// Make every connection due again.
		b.StopTimer()
		e.store.DB().Model(&models.Connection{}).Where("1 = 1").Update("expires_at", e.clock.Now().Add(time.Minute))
		before := e.refreshes()
		b.StartTimer()
		start := time.Now()
		for {
			n, err := r.RunOnce(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		took := time.Since(start)
		done := e.refreshes() - before
		if done != benchConnections {
			b.Fatalf("refreshed %d of %d", done, benchConnections)
		}
		b.ReportMetric(float64(done)/took.Seconds(), "refreshes/s")
	}
}

// BenchmarkRawUpdateBaseline is the ceiling: single-row UPDATE transactions on the
// same schema, 8 goroutines, no GetResponse and no encryption.
func BenchmarkRawUpdateBaseline(b *testing.B) {
	e := newEngine(b, getresponsetest.Options{})
	var ids []string
	for range benchConnections {
		ids = append(ids, e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil).ID)
	}
	sqlDB, _ := e.store.DB().DB()
	for b.Loop() {
		start := time.Now()
		work := make(chan string)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for id := range work {
					tx, err := sqlDB.Begin()
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := tx.Exec("UPDATE connections SET access_token_enc = ?, expires_at = ?, updated_at = ? WHERE id = ?", "v1.x.y", time.Now().UTC(), time.Now().UTC(), id); err != nil {
						b.Error(err)
					}
					tx.Commit()
				}
			})
		}
		for _, id := range ids {
			work <- id
		}
		close(work)
		wg.Wait()
		b.ReportMetric(float64(len(ids))/time.Since(start).Seconds(), "updates/s")
	}
}
