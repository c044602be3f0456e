package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// The connections per app and state are kept in connection_counts (migration 19),
// so that the overview and the metrics read a few rows instead of counting a
// million: triggers on connections append a row of +1 or -1 for every insert,
// delete and change of app or state, and CompactConnectionCounts folds those rows
// into one per app and state now and then. Appending, never updating, keeps
// concurrent writers (replicas on PostgreSQL) from waiting for one another on a
// hot row.

// connectionCounts sums connection_counts per app and state (the states of an
// app that hold no connection are left out). When it finds many rows not yet
// folded (a bulk import, or a wave of state changes, since housekeeping last
// ran), it folds them in the background, so that the reads after it stay a few
// rows.
func (s *Store) connectionCounts(ctx context.Context) ([]ConnectionTotal, error) {
	var rows []struct {
		AppID  string
		Status Status
		N      int64
		Parts  int64
	}
	// Every group, those summing to nothing too: their rows are read as well,
	// and count towards a fold.
	err := s.db.WithContext(ctx).Raw(`SELECT app_id, status, SUM(n) AS n, COUNT(*) AS parts FROM connection_counts
		GROUP BY app_id, status`).Scan(&rows).Error
	out := make([]ConnectionTotal, 0, len(rows))
	var parts int64
	for _, r := range rows {
		parts += r.Parts
		if r.N != 0 {
			out = append(out, ConnectionTotal{AppID: r.AppID, Status: r.Status, N: r.N})
		}
	}
	if parts > int64(len(rows))+countsUnfolded && s.folding.CompareAndSwap(false, true) {
		s.background.Go(func() {
			defer s.folding.Store(false)
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_, _ = s.CompactConnectionCounts(fctx) // housekeeping folds them anyway
		})
	}
	return out, err
}

// countsUnfolded is how many rows of connection_counts beyond one per app and
// state a read lets pass before it folds them.
const countsUnfolded = 1000

// CompactConnectionCounts folds the rows connection_counts gathered into one per
// app and state (housekeeping runs it; reads are correct either way, compacting
// keeps them cheap). It returns how many rows it folded.
func (s *Store) CompactConnectionCounts(ctx context.Context) (int64, error) {
	var last int64
	if err := s.db.WithContext(ctx).Raw("SELECT COALESCE(MAX(id), 0) FROM connection_counts").Scan(&last).Error; err != nil {
		return 0, storeError(err, "read the connection counts")
	}
	var folded int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.postgres {
			// One statement, one snapshot: it sums exactly the rows it deletes (a row
			// committed meanwhile by another writer stays for the next time).
			res := tx.Exec(`WITH gone AS (DELETE FROM connection_counts WHERE id <= ? RETURNING app_id, status, n)
				INSERT INTO connection_counts (app_id, status, n)
				SELECT app_id, status, SUM(n) FROM gone GROUP BY app_id, status HAVING SUM(n) <> 0`, last)
			folded = res.RowsAffected
			return res.Error
		}
		// SQLite has one writer: the transaction holds the table still.
		if err := tx.Exec(`INSERT INTO connection_counts (app_id, status, n)
			SELECT app_id, status, SUM(n) FROM connection_counts WHERE id <= ? GROUP BY app_id, status HAVING SUM(n) <> 0`, last).Error; err != nil {
			return err
		}
		res := tx.Exec("DELETE FROM connection_counts WHERE id <= ?", last)
		folded = res.RowsAffected
		return res.Error
	})
	return folded, storeError(err, "compact the connection counts")
}
