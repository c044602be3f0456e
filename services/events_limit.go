package services

import (
	"math"
	"sync"
	"time"
)

// eventLimiter bounds each connection's inbound events with a token bucket: rate
// per second, up to burst at once. It is per process (replicas each allow as
// much), and forgets a connection whose bucket has been full for a while.
type eventLimiter struct {
	mu        sync.Mutex
	rate      float64
	burst     float64
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newEventLimiter(rate, burst float64) *eventLimiter {
	return &eventLimiter{rate: rate, burst: max(burst, 1), buckets: map[string]*bucket{}}
}

// allow takes one event of id's allowance at now; when there is none left it
// says how long until there is.
func (l *eventLimiter) allow(id string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		l.sweep(now)
	}
	b := l.buckets[id]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[id] = b
	}
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = math.Min(l.burst, b.tokens+elapsed*l.rate)
		b.at = now
	}
	if b.tokens < 1 {
		wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
		return false, max(wait, time.Second)
	}
	b.tokens--
	return true, 0
}

// sweep drops the buckets that have refilled: they would allow a full burst anyway.
func (l *eventLimiter) sweep(now time.Time) {
	l.lastSweep = now
	for id, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, id)
		}
	}
}
