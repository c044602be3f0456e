package services

import (
	"context"
	"errors"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
)

// Lease timing: a lease outlives the slowest token call, so a worker that still
// holds one has either committed, given up, or holds the received pair (and
// renews the lease while it waits to store it, engine_pending.go).
const (
	// DefaultLease is how long a refresh holds its connection's lease
	// (GRCONNECT_REFRESH_LEASE).
	DefaultLease = 60 * time.Second
	leaseWait    = 25 * time.Second
	leasePoll    = 20 * time.Millisecond
	maxPollSleep = 200 * time.Millisecond
)

// SetLease sets how long a refresh holds its connection's lease
// (GRCONNECT_REFRESH_LEASE). A refresh's own deadline is at most half of it and
// a token call's at most a third, so a lease still held means its refresh is
// still running, holds its pair, or died. Call it before any refresh.
func (t *Tokens) SetLease(d time.Duration) {
	t.leaseTTL = d
	if call := t.gr.TokenTimeout; call <= 0 && getresponse.DefaultTokenTimeout > d/3 || call > d/3 {
		t.gr.TokenTimeout = d / 3
	}
}

// refreshDeadline bounds one refresh, whoever waits for it.
func (t *Tokens) refreshDeadline() time.Duration { return min(refreshDeadline, t.leaseTTL/2) }

// leaseCutoff is the time before which an ended lease may be taken over: now,
// once this process has settled (engine_replicas.go); until then the zero time,
// so only released leases are taken.
func (t *Tokens) leaseCutoff(now time.Time) time.Time {
	if t.settled() {
		return now
	}
	return time.Time{}
}

// errLeaseBusy: another worker holds the connection's lease, and the caller chose
// not to wait for it.
var errLeaseBusy = errors.New("another refresh of this connection is in flight")

// leasedRefresh takes the connection's lease (with wait, waiting while another
// worker holds it), and refreshes the row the lease returned when due still holds
// for it.
func (t *Tokens) leasedRefresh(ctx context.Context, id, actor string, due func(*models.Connection, time.Time) bool, rules refreshRules) (*models.Connection, error) {
	if pair := t.pending.get(id); pair != nil {
		// Its newest pair waits to be stored: refreshing again would replace it.
		return pair.connection(), nil
	}
	owner := t.LeaseOwner()
	waitStart := t.Now()
	sleep := leasePoll
	var conn *models.Connection
	for waited := time.Duration(0); ; waited += sleep {
		now := t.Now()
		leased, err := t.store.AcquireLeaseRow(ctx, id, owner, t.leaseCutoff(now), now.Add(t.leaseTTL))
		if err != nil {
			return nil, err
		}
		if leased != nil {
			conn = leased // the row as it is now that it is ours
			break
		}
		if !rules.wait {
			return nil, errLeaseBusy
		}
		current, err := t.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if current.Status == models.StatusDisconnected {
			return nil, models.ErrDisconnected
		}
		// Another worker finished while we waited: its outcome is ours.
		if current.LeaseOwner == "" && !current.UpdatedAt.Before(waitStart) {
			return outcome(current)
		}
		if waited >= leaseWait {
			// Contention is not a credential problem: say "try again", change nothing.
			return nil, &RefreshError{Message: "another refresh of this connection is still running; try again shortly", RetryAfter: time.Second}
		}
		select {
		case <-ctx.Done():
			return nil, &RefreshError{Message: "gave up waiting for another refresh of this connection", Err: ctx.Err()}
		case <-time.After(sleep):
		}
		sleep = min(sleep*2, maxPollSleep)
	}
	result, _, err := t.runLeased(ctx, conn, owner, actor, due, rules, outcomeSink{})
	return result, err
}

// LeaseOwner returns a fresh lease-owner name for this process.
func (t *Tokens) LeaseOwner() string { return t.owner + "/" + models.RandomToken(4) }

// ReleaseLease gives up owner's lease on a connection without refreshing it.
func (t *Tokens) ReleaseLease(ctx context.Context, id, owner string) error {
	return t.store.ReleaseLease(context.WithoutCancel(ctx), id, owner)
}

// outcome turns the state another worker left into this caller's result.
func outcome(conn *models.Connection) (*models.Connection, error) {
	switch conn.Status {
	case models.StatusNeedsReconnect:
		return nil, &RefreshError{NeedsReconnect: true, Message: conn.LastError}
	case models.StatusRefreshFailing:
		return nil, &RefreshError{Message: conn.LastError, NextAttemptAt: conn.NextAttemptAt}
	}
	return conn, nil
}
