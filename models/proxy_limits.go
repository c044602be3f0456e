package models

import (
	"context"
	"slices"
	"time"

	"gorm.io/gorm"
)

// ProxyShare is one replica's part of one GetResponse account's proxy limits
// (PostgreSQL only: one SQLite process keeps them whole in memory).
type ProxyShare struct {
	AccountKey string
	Replica    string
	// Want is how many call slots the replica could use now (its queued and
	// in-flight calls, at most the limit).
	Want int
	// Held is how many slots it holds: granted to it, or still occupied by its
	// calls. The fleet's held slots of an account never add up to more than the limit.
	Held int
}

// proxyShareLock serializes the replicas' rebalancing (a transaction-level
// advisory lock; the migrations use 7254613).
const proxyShareLock = 7254614

// proxyShareChunk bounds the accounts named in one statement.
const proxyShareChunk = 1000

// RebalanceProxyShares agrees this replica's shares of the accounts it uses with
// the fleet, in one transaction that no other replica's rebalancing overlaps: it
// reads the live shares other replicas hold of keys and the accounts' back-offs,
// lets decide choose this replica's shares (one per key), stores them live until
// until, and drops this replica's shares of accounts no longer in keys. With
// sweep it also deletes shares dead for a minute (replicas that died).
func (s *Store) RebalanceProxyShares(ctx context.Context, replica string, keys []string, now, until time.Time, sweep bool,
	decide func(others []ProxyShare, blocked map[string]time.Time) []ProxyShare) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", proxyShareLock).Error; err != nil {
			return err
		}
		var others []ProxyShare
		blocked := map[string]time.Time{}
		for part := range slices.Chunk(keys, proxyShareChunk) {
			var rows []ProxyShare
			if err := tx.Raw("SELECT account_key, replica, want, held FROM proxy_shares WHERE account_key IN ? AND replica <> ? AND expires_at > ?",
				part, replica, now).Scan(&rows).Error; err != nil {
				return err
			}
			others = append(others, rows...)
			var backoffs []struct {
				AccountKey   string
				BlockedUntil time.Time
			}
			if err := tx.Raw("SELECT account_key, blocked_until FROM proxy_backoff WHERE account_key IN ? AND blocked_until > ?", part, now).
				Scan(&backoffs).Error; err != nil {
				return err
			}
			for _, b := range backoffs {
				blocked[b.AccountKey] = b.BlockedUntil
			}
		}
		mine := decide(others, blocked)
		for part := range slices.Chunk(mine, proxyShareChunk) {
			values, args := "", make([]any, 0, 5*len(part))
			for i, sh := range part {
				if i > 0 {
					values += ", "
				}
				values += "(?, ?, ?, ?, ?)"
				args = append(args, sh.AccountKey, replica, sh.Want, sh.Held, until)
			}
			if err := tx.Exec(`INSERT INTO proxy_shares (account_key, replica, want, held, expires_at) VALUES `+values+`
				ON CONFLICT (account_key, replica) DO UPDATE SET want = EXCLUDED.want, held = EXCLUDED.held, expires_at = EXCLUDED.expires_at`,
				args...).Error; err != nil {
				return err
			}
		}
		// (Past ten thousand accounts the shares of released ones expire instead.)
		if len(keys) == 0 {
			if err := tx.Exec("DELETE FROM proxy_shares WHERE replica = ?", replica).Error; err != nil {
				return err
			}
		} else if len(keys) <= 10*proxyShareChunk {
			if err := tx.Exec("DELETE FROM proxy_shares WHERE replica = ? AND account_key NOT IN ?", replica, keys).Error; err != nil {
				return err
			}
		}
		if sweep {
			return tx.Exec("DELETE FROM proxy_shares WHERE expires_at < ?", now.Add(-time.Minute)).Error
		}
		return nil
	})
	return storeError(err, "rebalance the proxy's shares of %d accounts", len(keys))
}

// ReleaseProxyShares drops every share replica holds (it stops).
func (s *Store) ReleaseProxyShares(ctx context.Context, replica string) error {
	err := s.db.WithContext(ctx).Exec("DELETE FROM proxy_shares WHERE replica = ?", replica).Error
	return storeError(err, "release the proxy's shares")
}

// BlockProxy records that GetResponse asked the fleet to leave an account alone
// until until (keeping a later time already recorded); every replica's next
// rebalancing reads it.
func (s *Store) BlockProxy(ctx context.Context, key string, until time.Time) error {
	err := s.db.WithContext(ctx).Exec(`INSERT INTO proxy_backoff (account_key, blocked_until) VALUES (?, ?)
		ON CONFLICT (account_key) DO UPDATE SET blocked_until = CASE
			WHEN proxy_backoff.blocked_until > EXCLUDED.blocked_until THEN proxy_backoff.blocked_until
			ELSE EXCLUDED.blocked_until END`, key, until).Error
	return storeError(err, "record an account's proxy backoff")
}
