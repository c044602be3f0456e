package models

import (
	"context"
	"time"
)

// LoginThrottle counts sign-in attempts for one key ("ip:…", "email:…", "browser:…",
// "password:…") in a window.
type LoginThrottle struct {
	Key         string `gorm:"primaryKey"`
	Failures    int    // attempts reserved in the window, less those that succeeded
	WindowStart time.Time
}

// ReserveLoginAttempt counts one more attempt for key before its password is
// checked, and returns the attempts now counted in the window and when the window
// ends. It is one statement (an upsert … RETURNING), so parallel attempts each see
// their own count and no more of them than the limit are ever judged. A window
// older than window starts over at one.
func (s *Store) ReserveLoginAttempt(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	now := Now()
	var row struct {
		Failures    int
		WindowStart time.Time
	}
	err := s.db.WithContext(ctx).Raw(`INSERT INTO login_throttles (key, failures, window_start) VALUES (?, 1, ?)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN login_throttles.window_start < ? THEN 1 ELSE login_throttles.failures + 1 END,
			window_start = CASE WHEN login_throttles.window_start < ? THEN excluded.window_start ELSE login_throttles.window_start END
		RETURNING failures, window_start`, key, now, now.Add(-window), now.Add(-window)).Scan(&row).Error
	if err != nil {
		return 0, time.Time{}, storeError(err, "reserve a sign-in attempt") // the key may hold an email address
	}
	return row.Failures, row.WindowStart.Add(window), nil
}

// RefundLoginAttempt takes back one reserved attempt of key: it succeeded.
func (s *Store) RefundLoginAttempt(ctx context.Context, key string) error {
	err := s.db.WithContext(ctx).Exec("UPDATE login_throttles SET failures = failures - 1 WHERE key = ? AND failures > 0", key).Error
	return storeError(err, "refund a sign-in attempt")
}

// ClearLoginFailures forgets the attempts recorded for key.
func (s *Store) ClearLoginFailures(ctx context.Context, key string) error {
	err := s.db.WithContext(ctx).Where("key = ?", key).Delete(&LoginThrottle{}).Error
	return storeError(err, "clear failed sign-ins")
}

// DeleteOldLoginThrottles removes the rows whose window started before cutoff:
// they count nothing any more.
func (s *Store) DeleteOldLoginThrottles(ctx context.Context, cutoff time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("window_start < ?", cutoff).Delete(&LoginThrottle{})
	return res.RowsAffected, storeError(res.Error, "delete old sign-in throttles")
}
