package handlers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/grconnect/grconnect/models"
)

const (
	// expiryFreshFor is how long the overview's expiry chart is shown as read,
	expiryFreshFor = 30 * time.Second
	// once reading it took longer than expirySlow (a small install reads it
	// afresh every time).
	expirySlow = 200 * time.Millisecond
)

// expiryCache keeps the overview's expiry histogram for a while: it counts every
// live token by expiry, which at a million connections reads a million index
// entries, and the chart need not be newer than half a minute (when reading it is
// quick, it is read for every page). A stale histogram
// is shown while one request's worth of reading it again runs in the background;
// only a chart never read, or of another range, is read while the page waits, once
// for all the pages that wait for it.
type expiryCache struct {
	mu         sync.Mutex
	span       time.Duration
	width      time.Duration
	read       time.Time // when the buckets were read
	slow       bool      // whether reading them took longer than expirySlow
	buckets    []models.ExpiryBucket
	refreshing bool
	flight     singleflight.Group
}

// expiryReader reads the expiry histogram: models.Store.ExpiryHistogram.
type expiryReader func(ctx context.Context, from time.Time, span, width time.Duration) ([]models.ExpiryBucket, error)

// histogram returns the buckets of span in steps of width from now (truncated to
// width), read at most expiryFreshFor ago.
func (c *expiryCache) histogram(ctx context.Context, histogram expiryReader, now time.Time, span, width time.Duration) ([]models.ExpiryBucket, error) {
	read := func(ctx context.Context) ([]models.ExpiryBucket, error) {
		return histogram(ctx, now.UTC().Truncate(width), span, width)
	}
	c.mu.Lock()
	same := c.span == span && c.width == width && c.buckets != nil && c.slow
	if same && now.Sub(c.read) < expiryFreshFor {
		defer c.mu.Unlock()
		return c.buckets, nil
	}
	if same {
		stale := c.buckets
		if !c.refreshing {
			c.refreshing = true
			go func() {
				bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				defer cancel()
				start := time.Now()
				b, err := read(bctx)
				c.mu.Lock()
				defer c.mu.Unlock()
				c.refreshing = false
				if err == nil && c.span == span && c.width == width {
					c.read, c.buckets, c.slow = now, b, time.Since(start) > expirySlow
				}
			}()
		}
		c.mu.Unlock()
		return stale, nil
	}
	c.mu.Unlock()
	// The pages waiting for one range share its read; it goes on when the page
	// that started it leaves.
	ch := c.flight.DoChan(fmt.Sprint(span, width), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		start := time.Now()
		b, err := read(fctx)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.span, c.width, c.read, c.buckets, c.slow = span, width, now, b, time.Since(start) > expirySlow
		return b, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]models.ExpiryBucket), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
