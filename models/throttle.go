package models

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// LoginThrottle counts failed sign-ins for one key ("ip:…" or "email:…") in a window.
type LoginThrottle struct {
	Key         string `gorm:"primaryKey"`
	Failures    int
	WindowStart time.Time
}

// RecordLoginFailure adds a failure for key; a window older than window restarts at one.
func (s *Store) RecordLoginFailure(ctx context.Context, key string, window time.Duration) error {
	now := Now()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var t LoginThrottle
		err := tx.Where("key = ?", key).First(&t).Error
		if err != nil && err != gorm.ErrRecordNotFound {
			return err
		}
		if err == gorm.ErrRecordNotFound || now.Sub(t.WindowStart) > window {
			t = LoginThrottle{Key: key, Failures: 0, WindowStart: now}
		}
		t.Failures++
		return tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&t).Error
	})
	return storeError(err, "record a failed sign-in") // the key may hold an email address
}

// LoginBlockedUntil returns when the first of keys stops being blocked (zero when none
// is): a key is blocked while it has limit or more failures inside window.
func (s *Store) LoginBlockedUntil(ctx context.Context, keys []string, limit int, window time.Duration) (time.Time, error) {
	var rows []LoginThrottle
	if err := s.db.WithContext(ctx).Where("key IN ?", keys).Find(&rows).Error; err != nil {
		return time.Time{}, storeError(err, "read failed sign-ins")
	}
	now := Now()
	var until time.Time
	for _, r := range rows {
		end := r.WindowStart.Add(window)
		if r.Failures >= limit && end.After(now) && end.After(until) {
			until = end
		}
	}
	return until, nil
}

// ClearLoginFailures forgets the failures recorded for key.
func (s *Store) ClearLoginFailures(ctx context.Context, key string) error {
	err := s.db.WithContext(ctx).Where("key = ?", key).Delete(&LoginThrottle{}).Error
	return storeError(err, "clear failed sign-ins")
}
