package services

import (
	"context"
	"sync"
	"time"
)

// Replicas on PostgreSQL. Each serving process beats a row of its own (named by
// its lease owners' prefix, Tokens.Process) every heartbeatEvery. A replica whose
// beat is older than replicaGone is gone — killed, or cut off from the database —
// and the first other replica to see it ends its refresh and webhook leases, so
// its connections wait seconds instead of a whole lease.
//
// A process judges others only once it has settled: its own beats have gone
// through for replicaGone without a storage failure. Until then it neither ends
// other replicas' leases nor takes over leases that merely ended (leaseCutoff):
// a replica starting as PostgreSQL comes back, or a process whose database was
// just unreachable, cannot tell a dead replica from one that could not beat
// during the outage, and one that holds a received pair renews its lease as soon
// as it can write again. On SQLite the serve lock tells at start whether any
// other server lives (models.LockServing), so there are no heartbeats, and only
// a recent storage failure unsettles a process.

const (
	heartbeatEvery = 2 * time.Second
	replicaGone    = 10 * time.Second
)

// heartbeat is this process's side of the heartbeats.
type heartbeat struct {
	mu      sync.Mutex
	running bool
	started time.Time
	// streak is when the current run of successful beats began (zero: the last
	// beat failed, or none went through yet).
	streak time.Time
	failed bool // the last beat failed (logged once per run of failures)
}

// RunHeartbeat beats this process's row every heartbeatEvery and ends the leases
// of replicas that stopped beating, until ctx ends. On SQLite it returns at once.
func (t *Tokens) RunHeartbeat(ctx context.Context) {
	if !t.store.IsPostgres() {
		return
	}
	t.beat.mu.Lock()
	t.beat.running, t.beat.started = true, t.Now()
	t.beat.mu.Unlock()
	for {
		t.Beat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(heartbeatEvery):
		}
	}
}

// Beat records one heartbeat of this process and, once it has settled, ends the
// leases of every replica whose heartbeat stopped.
func (t *Tokens) Beat(ctx context.Context) {
	now := t.Now()
	t.beat.mu.Lock()
	started := t.beat.started
	t.beat.mu.Unlock()
	if started.IsZero() {
		started = now
	}
	err := t.store.Heartbeat(ctx, t.owner, started, now)
	t.beat.mu.Lock()
	if err != nil {
		first := !t.beat.failed
		t.beat.streak, t.beat.failed = time.Time{}, true
		t.beat.mu.Unlock()
		if first && ctx.Err() == nil {
			t.log.Warn("could not record this process's heartbeat; other replicas' leases are left alone until it goes through again", "error", err)
		}
		return
	}
	if t.beat.streak.IsZero() {
		t.beat.streak = time.Now()
	}
	t.beat.failed = false
	t.beat.mu.Unlock()
	if !t.settled() {
		return
	}
	cutoff := now.Add(-replicaGone)
	gone, err := t.store.SilentReplicas(ctx, cutoff)
	if err != nil {
		t.log.Warn("could not read the other replicas' heartbeats", "error", err)
		return
	}
	for _, r := range gone {
		if r.ID == t.owner {
			continue
		}
		ended, refreshes, webhooks, err := t.store.EndReplica(ctx, r.ID, cutoff, now)
		switch {
		case err != nil:
			t.log.Warn("could not end the leases of a replica whose heartbeat stopped", "replica", r.ID, "error", err)
		case ended:
			t.log.Warn("a replica stopped beating (killed, or cut off from the database); ended its leases",
				"replica", r.ID, "last_heartbeat", r.HeartbeatAt, "refresh_leases", refreshes, "webhook_leases", webhooks)
		}
	}
}

// settled reports whether this process may judge other processes' leases: no
// storage failure in the last replicaGone, and (with heartbeats) its own beats
// going through for that long.
func (t *Tokens) settled() bool {
	now := time.Now()
	if f := t.store.Health().LastFailure; !f.IsZero() && now.Sub(f) < replicaGone {
		return false
	}
	t.beat.mu.Lock()
	defer t.beat.mu.Unlock()
	if !t.beat.running {
		return true
	}
	return !t.beat.streak.IsZero() && now.Sub(t.beat.streak) >= replicaGone
}

// Retire removes this process's heartbeat (a clean stop): the others then never
// take it for a replica that died.
func (t *Tokens) Retire(ctx context.Context) {
	if !t.store.IsPostgres() {
		return
	}
	if err := t.store.RemoveReplica(ctx, t.owner); err != nil {
		t.log.Warn("could not remove this process's heartbeat", "error", err)
	}
}
