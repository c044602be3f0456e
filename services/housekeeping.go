package services

import (
	"context"
	"log/slog"
	"time"

	"github.com/grconnect/grconnect/models"
)

// authStateGrace keeps an expired authorization for a while, so that a late
// callback is told "expired" (with a way to try again) rather than "unknown".
const authStateGrace = time.Hour

// Housekeeping deletes what anonymous requests leave behind once it counts for
// nothing: expired authorizations, sign-in throttle rows whose window has passed,
// ended sessions; finished webhook deliveries and relayed GetResponse events past
// their retention; connections' timeline events and audit entries past theirs.
// Every minute it also folds the connection counts' rows
// (models.CompactConnectionCounts). Every replica runs it; the deletes are
// idempotent.
type Housekeeping struct {
	store *models.Store
	log   *slog.Logger
	// Interval is how often Run sweeps; CountsEvery how often it folds the counts.
	Interval, CountsEvery time.Duration
	// AuditRetention is how long audit entries are kept (0: for ever).
	AuditRetention time.Duration
	// TimelineRetention is how long connections' timeline events are kept, but
	// each connection's newest (0: for ever).
	TimelineRetention time.Duration
	// Now is the clock; tests replace it.
	Now func() time.Time
	// timelineFrom is where the next timeline sweep starts: the last sweep's
	// cutoff (what is older and left is connections' newest events), or the zero
	// time once a timelineFullWalk (at the first sweep, then daily), which finds
	// the old events of connections that have had a newer one since.
	timelineFrom, timelineWalked time.Time
}

// timelineFullWalk is how often a timeline sweep walks all old events.
const timelineFullWalk = 24 * time.Hour

// NewHousekeeping returns the hourly sweeper.
func NewHousekeeping(store *models.Store, log *slog.Logger) *Housekeeping {
	return &Housekeeping{store: store, log: log, Interval: time.Hour, CountsEvery: time.Minute, Now: models.Now}
}

// Swept counts what one pass deleted.
type Swept struct {
	AuthStates, Throttles, Sessions, AuditEntries, Deliveries, InboundEvents, TimelineEvents int64
}

// RunOnce sweeps once.
func (h *Housekeeping) RunOnce(ctx context.Context) (Swept, error) {
	now := h.Now()
	var s Swept
	var err error
	if s.AuthStates, err = h.store.DeleteExpiredAuthStates(ctx, now.Add(-authStateGrace)); err != nil {
		return s, err
	}
	if s.Throttles, err = h.store.DeleteOldLoginThrottles(ctx, now.Add(-attemptWindow)); err != nil {
		return s, err
	}
	if s.Sessions, err = h.store.DeleteStaleSessions(ctx, now, now.Add(-SessionIdle)); err != nil {
		return s, err
	}
	if s.Deliveries, err = h.store.DeleteFinishedDeliveriesBefore(ctx, now.Add(-DeliveryRetention)); err != nil {
		return s, err
	}
	if s.InboundEvents, err = h.store.DeleteRelayedInboundBefore(ctx, now.Add(-InboundRetention)); err != nil {
		return s, err
	}
	if h.TimelineRetention > 0 {
		cutoff, from := now.Add(-h.TimelineRetention), h.timelineFrom
		full := now.Sub(h.timelineWalked) >= timelineFullWalk
		if full {
			from = time.Time{}
		}
		if s.TimelineEvents, err = h.store.DeleteTimelineBefore(ctx, from, cutoff); err != nil {
			return s, err
		}
		h.timelineFrom = cutoff
		if full {
			h.timelineWalked = now
		}
	}
	if h.AuditRetention > 0 {
		if s.AuditEntries, err = h.store.DeleteAuditBefore(ctx, now.Add(-h.AuditRetention)); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Run sweeps every Interval until ctx ends, the first time a minute after start,
// and folds the connection counts every CountsEvery.
func (h *Housekeeping) Run(ctx context.Context) {
	sweep := time.NewTimer(time.Minute)
	defer sweep.Stop()
	var counts <-chan time.Time // CountsEvery 0: not folded here (reads fold a wave)
	if h.CountsEvery > 0 {
		t := time.NewTicker(h.CountsEvery)
		defer t.Stop()
		counts = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-counts:
			if _, err := h.store.CompactConnectionCounts(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("housekeeping: fold the connection counts", "error", err)
			}
			continue
		case <-sweep.C:
		}
		sweep.Reset(h.Interval)
		s, err := h.RunOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			h.log.Error("housekeeping failed", "error", err)
		case s.AuthStates+s.Throttles+s.Sessions+s.AuditEntries+s.Deliveries+s.InboundEvents > 0:
			h.log.Info("housekeeping", "auth_states", s.AuthStates, "throttles", s.Throttles, "sessions", s.Sessions, "audit_entries", s.AuditEntries,
				"webhook_deliveries", s.Deliveries, "inbound_events", s.InboundEvents)
		}
	}
}
