package models

import (
	"context"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// timelineSweepBatch bounds one DELETE of old timeline events, so the first sweep
// of a backlog (a million daily refreshes leave a million events a day) never
// holds the write lock for long.
const timelineSweepBatch = 5000

// DeleteTimelineBefore deletes the connections' timeline events from from to
// cutoff, in batches, and returns how many it deleted. Each connection keeps its
// newest event however old it is, so no timeline is ever empty and the newest
// refresh outcome (which resuming a paused app looks for) stays. App-level events
// are few and kept.
//
// A batch is read from events_created, oldest first, then deleted by ID. The next
// batch starts where the last one ended: what is older and still there is some
// connection's newest. For the same reason a sweep may start at the previous
// sweep's cutoff (from): the events before it are connections' newest, unless a
// connection had a newer event since, which a sweep from the zero time finds. Each
// event walked costs an index probe (7–14 µs on SQLite), so a sweep from the
// zero time over a million connections' old newest events takes some seconds.
func (s *Store) DeleteTimelineBefore(ctx context.Context, from, cutoff time.Time) (int64, error) {
	ctx = logWrites(ctx) // only a log table: the row caches stay
	var total int64
	for {
		var batch []eventAt
		err := s.db.WithContext(ctx).Raw(`SELECT e.id, e.created_at FROM events e
WHERE e.created_at >= ? AND e.created_at < ? AND e.connection_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM events n WHERE n.connection_id = e.connection_id AND n.id > e.id)
ORDER BY e.created_at LIMIT ?`, from, cutoff, timelineSweepBatch).Scan(&batch).Error
		if err != nil || len(batch) == 0 {
			return total, storeError(err, "find old timeline events")
		}
		res := s.deleteEvents(ctx, batch)
		if res.Error != nil {
			return total, storeError(res.Error, "delete old timeline events")
		}
		total += res.RowsAffected
		if len(batch) < timelineSweepBatch {
			return total, nil
		}
		from = batch[len(batch)-1].CreatedAt
	}
}

// eventAt is an event's ID and time.
type eventAt struct {
	ID        int64
	CreatedAt time.Time
}

// deleteEvents deletes the events of batch, their IDs passed as one parameter (a
// list of values would be thousands of parameters, in full in a slow query's log
// line): a JSON array on SQLite, an array on PostgreSQL.
func (s *Store) deleteEvents(ctx context.Context, batch []eventAt) *gorm.DB {
	ids := make([]string, len(batch))
	for i, e := range batch {
		ids[i] = strconv.FormatInt(e.ID, 10)
	}
	list := strings.Join(ids, ",")
	if s.postgres {
		return s.db.WithContext(ctx).Exec("DELETE FROM events WHERE id = ANY(?::bigint[])", "{"+list+"}")
	}
	return s.db.WithContext(ctx).Exec("DELETE FROM events WHERE id IN (SELECT value FROM json_each(?))", "["+list+"]")
}
