package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// DailyRefreshStat is how many refreshes succeeded and failed on one UTC day.
type DailyRefreshStat struct {
	Day       string `gorm:"primaryKey"` // 2006-01-02
	Succeeded int64
	Failed    int64
}

const dayLayout = "2006-01-02"

// countRefreshes adds a day's refresh outcomes inside the refreshes' transaction.
func countRefreshes(tx *gorm.DB, day string, succeeded, failed int) error {
	// An upsert both engines understand (SQLite ≥ 3.24, PostgreSQL ≥ 9.5).
	return tx.Exec(`INSERT INTO daily_refresh_stats (day, succeeded, failed) VALUES (?, ?, ?)
		ON CONFLICT (day) DO UPDATE SET succeeded = daily_refresh_stats.succeeded + EXCLUDED.succeeded,
		failed = daily_refresh_stats.failed + EXCLUDED.failed`, day, succeeded, failed).Error
}

// RefreshStats returns the last days days of refresh outcomes, oldest first,
// with zero rows for days without refreshes.
func (s *Store) RefreshStats(ctx context.Context, now time.Time, days int) ([]DailyRefreshStat, error) {
	first := now.UTC().AddDate(0, 0, -(days - 1)).Format(dayLayout)
	var rows []DailyRefreshStat
	if err := s.db.WithContext(ctx).Where("day >= ?", first).Find(&rows).Error; err != nil {
		return nil, storeError(err, "read refresh stats")
	}
	byDay := map[string]DailyRefreshStat{}
	for _, r := range rows {
		byDay[r.Day] = r
	}
	out := make([]DailyRefreshStat, days)
	for i := range days {
		d := now.UTC().AddDate(0, 0, i-(days-1)).Format(dayLayout)
		out[i] = byDay[d]
		out[i].Day = d
	}
	return out, nil
}

// ExpiryBucket counts live connections whose access token expires in [From, To).
type ExpiryBucket struct {
	From, To time.Time
	ByStatus map[Status]int64
}

// ExpiryHistogram buckets the live connections' expiries from now over span in
// steps of width; connections already expired land in the first bucket.
func (s *Store) ExpiryHistogram(ctx context.Context, now time.Time, span, width time.Duration) ([]ExpiryBucket, error) {
	var buckets []ExpiryBucket
	for from := now; from.Before(now.Add(span)); from = from.Add(width) {
		b := ExpiryBucket{From: from, To: from.Add(width), ByStatus: map[Status]int64{}}
		var rows []struct {
			Status Status
			N      int64
		}
		q := s.db.WithContext(ctx).Model(&Connection{}).Select("status, COUNT(*) AS n").
			Where("status <> ? AND expires_at < ?", StatusDisconnected, b.To)
		if from.After(now) {
			q = q.Where("expires_at >= ?", from)
		}
		if err := q.Group("status").Scan(&rows).Error; err != nil {
			return nil, storeError(err, "count connections by expiry")
		}
		for _, r := range rows {
			b.ByStatus[r.Status] = r.N
		}
		buckets = append(buckets, b)
	}
	return buckets, nil
}

// RefreshOutcomes are the event types that record a refresh's outcome: every
// refresh sent to GetResponse leaves one.
var RefreshOutcomes = []EventType{EventRefreshSucceeded, EventRefreshFailed, EventRefreshFailedAgain, EventNeedsReconnect, EventRefreshPaused}

// RefreshEvents returns a connection's newest refresh outcomes, newest first.
func (s *Store) RefreshEvents(ctx context.Context, connectionID string, limit int) ([]Event, error) {
	var events []Event
	err := s.db.WithContext(ctx).Where("connection_id = ? AND type IN ?", connectionID, RefreshOutcomes).
		Order("id DESC").Limit(limit).Find(&events).Error
	return events, storeError(err, "list refresh events of connection %s", connectionID)
}

// TokenHorizon describes the live access tokens: the latest expiry of any, and the
// lifetime the token with that expiry was given (its expiry minus its last refresh
// or connection): the newest token shows how long tokens live. Both are zero when
// no live connection has a token.
type TokenHorizon struct {
	LatestExpiry time.Time
	Lifetime     time.Duration
}

// TokenHorizon reads the live connection whose token expires last (one index step).
func (s *Store) TokenHorizon(ctx context.Context) (TokenHorizon, error) {
	var rows []Connection
	err := s.db.WithContext(ctx).Select("expires_at, last_refresh_at, connected_at").
		Where("status IN ? AND expires_at IS NOT NULL", []Status{StatusActive, StatusRefreshFailing}).
		Order("expires_at DESC").Limit(1).Find(&rows).Error
	if err != nil || len(rows) == 0 {
		return TokenHorizon{}, storeError(err, "read the latest token expiry")
	}
	c := rows[0]
	issued := c.ConnectedAt
	if c.LastRefreshAt != nil && c.LastRefreshAt.After(issued) {
		issued = *c.LastRefreshAt
	}
	h := TokenHorizon{LatestExpiry: *c.ExpiresAt}
	if d := c.ExpiresAt.Sub(issued); d > 0 {
		h.Lifetime = d
	}
	return h, nil
}
