package tokens

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
)

// fleetLimiter holds the per-account limits across replicas in PostgreSQL: at most
// models.ProxySlots leased call slots per account, and a shared "wait until" after
// GetResponse answered 429. A slot's lease outlives the longest proxied call, so a
// replica that dies mid-call frees its slot after fleetSlotTTL.
type fleetLimiter struct {
	store  *models.Store
	holder string
}

const fleetSlotTTL = 5 * time.Minute

type fleetSlot struct {
	n      int
	holder string
}

// dbKey names an account in the shared tables (the in-process key holds a NUL).
func dbKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// enter waits up to wait for one of the account's fleet-wide slots.
func (f *fleetLimiter) enter(ctx context.Context, key string, now func() time.Time, wait time.Duration) (fleetSlot, error) {
	key = dbKey(key)
	deadline := now().Add(wait)
	sleep := 10 * time.Millisecond
	holder := f.holder + "/" + models.RandomToken(4)
	for {
		t := now()
		if until, err := f.store.ProxyBlockedUntil(ctx, key); err != nil {
			return fleetSlot{}, err
		} else if d := until.Sub(t); d > 0 {
			return fleetSlot{}, &RateLimitedError{RetryAfter: d}
		}
		n, ok, err := f.store.AcquireProxySlot(ctx, key, holder, t, t.Add(fleetSlotTTL))
		if err != nil {
			return fleetSlot{}, err
		}
		if ok {
			return fleetSlot{n: n, holder: holder}, nil
		}
		if !t.Before(deadline) {
			return fleetSlot{}, &RateLimitedError{RetryAfter: time.Second, Busy: true}
		}
		select {
		case <-ctx.Done():
			return fleetSlot{}, &UnavailableError{Err: ctx.Err()}
		case <-time.After(sleep):
		}
		sleep = min(sleep*2, 200*time.Millisecond)
	}
}

// leave frees a slot, even when the caller's request has already ended.
func (f *fleetLimiter) leave(key string, s fleetSlot) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.store.ReleaseProxySlot(ctx, dbKey(key), s.n, s.holder) // an unreleased slot expires on its own
}

// observe shares GetResponse's request to wait with the fleet.
func (f *fleetLimiter) observe(ctx context.Context, key string, status int, h http.Header, now time.Time) {
	if d := getresponse.BackoffAfter(status, h); d > 0 {
		_ = f.store.BlockProxy(context.WithoutCancel(ctx), dbKey(key), now.Add(d)) // the local limiter still holds it
	}
}
