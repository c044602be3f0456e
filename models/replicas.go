package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Replica is one serving process as its heartbeat row records it. ID is the
// prefix of every refresh and webhook lease owner the process writes
// ("host/pid/random"), so its leases can be found by it.
type Replica struct {
	ID          string
	StartedAt   time.Time
	HeartbeatAt time.Time
}

// Heartbeat records that the process id is alive at now, adding its row on the
// first beat (started is when it started).
func (s *Store) Heartbeat(ctx context.Context, id string, started, now time.Time) error {
	err := s.db.WithContext(ctx).Exec(`INSERT INTO replicas (id, started_at, heartbeat_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, id, started, now).Error
	return storeError(err, "record the heartbeat of process %s", id)
}

// SilentReplicas returns the processes whose last heartbeat is older than cutoff.
func (s *Store) SilentReplicas(ctx context.Context, cutoff time.Time) ([]Replica, error) {
	var out []Replica
	err := s.db.WithContext(ctx).Raw("SELECT id, started_at, heartbeat_at FROM replicas WHERE heartbeat_at < ? ORDER BY id", cutoff).
		Scan(&out).Error
	return out, storeError(err, "find replicas whose heartbeat stopped")
}

// EndReplica removes a process whose heartbeat stopped before cutoff and ends,
// at once, every refresh and webhook lease it holds (their owners start with its
// ID): a refresh lease's connection is then marked interrupted as usual when it is
// leased again, and a webhook delivery is sent again. Nothing changes when the
// process beat again meanwhile (ended is false).
func (s *Store) EndReplica(ctx context.Context, id string, cutoff, now time.Time) (ended bool, refreshes, webhooks int64, err error) {
	past := now.Add(-time.Second)
	prefix := id + "/"
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec("DELETE FROM replicas WHERE id = ? AND heartbeat_at < ?", id, cutoff)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		ended = true
		// substr, not LIKE: a host name may hold LIKE's wildcards.
		res = tx.Exec("UPDATE connections SET lease_until = ? WHERE substr(lease_owner, 1, ?) = ? AND lease_until >= ?",
			past, len(prefix), prefix, past)
		if res.Error != nil {
			return res.Error
		}
		refreshes = res.RowsAffected
		res = tx.Exec("UPDATE webhook_deliveries SET lease_until = ? WHERE substr(lease_owner, 1, ?) = ? AND lease_until >= ?",
			past, len(prefix), prefix, past)
		webhooks = res.RowsAffected
		return res.Error
	})
	return ended, refreshes, webhooks, storeError(err, "end the leases of stopped process %s", id)
}

// RemoveReplica deletes the heartbeat row of a process that stops cleanly.
func (s *Store) RemoveReplica(ctx context.Context, id string) error {
	err := s.db.WithContext(ctx).Exec("DELETE FROM replicas WHERE id = ?", id).Error
	return storeError(err, "remove the heartbeat of process %s", id)
}
