package handlers

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
)

// TestExpiryCacheReadsASlowChartOncePerHalfMinute: 30 overviews waiting for a
// chart never read share one read; a slow chart is then shown as read for 30 s,
// shown stale once older while one read runs in the background, and another range
// is read while its page waits.
func TestExpiryCacheReadsASlowChartOncePerHalfMinute(t *testing.T) {
	t.Parallel()
	var reads atomic.Int64
	read := func(_ context.Context, from time.Time, span, width time.Duration) ([]models.ExpiryBucket, error) {
		n := reads.Add(1)
		time.Sleep(expirySlow + 50*time.Millisecond) // a million index entries
		return []models.ExpiryBucket{{From: from, To: from.Add(width), ByStatus: map[models.Status]int64{models.StatusActive: n}}}, nil
	}
	var c expiryCache
	now := time.Now()
	get := func(at time.Time, span time.Duration) int64 {
		t.Helper()
		b, err := c.histogram(context.Background(), read, at, span, time.Hour)
		if err != nil || len(b) != 1 {
			t.Fatalf("%v, %v", b, err)
		}
		return b[0].ByStatus[models.StatusActive]
	}
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if got := get(now, 24*time.Hour); got != 1 {
				t.Errorf("a first load got read %d", got)
			}
		})
	}
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Fatalf("30 first loads read the chart %d times, want once", n)
	}
	if got := get(now.Add(20*time.Second), 24*time.Hour); got != 1 || reads.Load() != 1 {
		t.Fatalf("within 30 s: read %d, %d reads; want the first read", got, reads.Load())
	}
	later := now.Add(40 * time.Second)
	if got := get(later, 24*time.Hour); got != 1 {
		t.Fatalf("an old chart: read %d, want the stale one at once", got)
	}
	for start := time.Now(); reads.Load() < 2 || c.refreshingNow(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the background read never ended")
		}
	}
	if got := get(later.Add(time.Second), 24*time.Hour); got != 2 {
		t.Fatalf("after the background read: read %d, want 2", got)
	}
	if got := get(later, 7*24*time.Hour); got != 3 {
		t.Fatalf("another range: read %d, want a read of its own", got)
	}
}

// refreshingNow reports whether a background read runs.
func (c *expiryCache) refreshingNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshing
}
