package models

import (
	"context"
	"time"
)

// ProxySlots is how many proxied calls one GetResponse account may have in flight
// across the whole fleet (GetResponse's documented limit).
const ProxySlots = 10

// AcquireProxySlot leases one of an account's call slots for holder until until,
// across every replica sharing this PostgreSQL database, and returns its number;
// ok is false when all ten are taken. A slot whose lease ran out (a replica died
// mid-call) is free again.
func (s *Store) AcquireProxySlot(ctx context.Context, key, holder string, now, until time.Time) (slot int, ok bool, err error) {
	db := s.db.WithContext(ctx)
	// The account's rows exist once; creating them again is harmless.
	values, args := "", make([]any, 0, 2*ProxySlots)
	for i := range ProxySlots {
		if i > 0 {
			values += ", "
		}
		values += "(?, ?)"
		args = append(args, key, i)
	}
	if err := db.Exec("INSERT INTO proxy_slots (account_key, slot) VALUES "+values+" ON CONFLICT DO NOTHING", args...).Error; err != nil {
		return 0, false, storeError(err, "create an account's proxy slots")
	}
	var slots []int
	err = db.Raw(`UPDATE proxy_slots SET holder = ?, held_until = ?
		WHERE account_key = ? AND slot = (
			SELECT slot FROM proxy_slots WHERE account_key = ? AND (holder = '' OR held_until < ?)
			ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING slot`, holder, until, key, key, now).Scan(&slots).Error
	if err != nil || len(slots) == 0 {
		return 0, false, storeError(err, "lease a proxy slot")
	}
	return slots[0], true, nil
}

// ReleaseProxySlot frees a slot holder leased.
func (s *Store) ReleaseProxySlot(ctx context.Context, key string, slot int, holder string) error {
	err := s.db.WithContext(ctx).Exec("UPDATE proxy_slots SET holder = '', held_until = NULL WHERE account_key = ? AND slot = ? AND holder = ?",
		key, slot, holder).Error
	return storeError(err, "release proxy slot %d", slot)
}

// ProxyBlockedUntil returns until when GetResponse asked the fleet to leave an
// account alone (zero when it did not).
func (s *Store) ProxyBlockedUntil(ctx context.Context, key string) (time.Time, error) {
	var until []time.Time
	err := s.db.WithContext(ctx).Raw("SELECT blocked_until FROM proxy_backoff WHERE account_key = ?", key).Scan(&until).Error
	if err != nil || len(until) == 0 {
		return time.Time{}, storeError(err, "read an account's proxy backoff")
	}
	return until[0], nil
}

// BlockProxy records that GetResponse asked the fleet to wait until until (keeping a
// later time already recorded).
func (s *Store) BlockProxy(ctx context.Context, key string, until time.Time) error {
	err := s.db.WithContext(ctx).Exec(`INSERT INTO proxy_backoff (account_key, blocked_until) VALUES (?, ?)
		ON CONFLICT (account_key) DO UPDATE SET blocked_until = CASE
			WHEN proxy_backoff.blocked_until > EXCLUDED.blocked_until THEN proxy_backoff.blocked_until
			ELSE EXCLUDED.blocked_until END`, key, until).Error
	return storeError(err, "record an account's proxy backoff")
}
