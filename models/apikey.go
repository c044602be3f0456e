package models

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"
)

// APIKey is a key the operator's backend uses on the JSON API. Only a hash of the
// key is stored; Prefix is the key's visible start, for telling keys apart and for
// finding the row a presented key claims to be.
type APIKey struct {
	ID         string `gorm:"primaryKey"`
	Name       string
	Prefix     string // "grc_k3j5m2p4": the key's public part, unique
	KeyHash    string // hex SHA-256 of the whole key
	CreatedBy  string
	LastUsedAt *time.Time
	// LastUsedIP is the client address of the last use (as LastUsedAt, to the minute).
	LastUsedIP string `gorm:"column:last_used_ip"`
	RevokedAt  *time.Time
	RevokedBy  string
	CreatedAt  time.Time
	// Scopes lists what the key may do, space-separated APIScope values; "" is
	// every scope (keys made before scopes existed).
	Scopes string
	// AppID limits the key to one app's connections ("" for every app).
	AppID string
	// ExpiresAt is when the key stops working (nil: never).
	ExpiresAt *time.Time
	// PreviousHash is the hash of the secret the key had before it was rolled,
	// which works until PreviousUntil.
	PreviousHash  string
	PreviousUntil *time.Time
	RolledAt      *time.Time
}

// TableName names the table, which GORM would otherwise guess from the initialism.
func (APIKey) TableName() string { return "api_keys" }

// Revoked reports whether the key was revoked.
func (k *APIKey) Revoked() bool { return k.RevokedAt != nil }

// Expired reports whether the key's expiry has passed at now.
func (k *APIKey) Expired(now time.Time) bool { return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) }

// Live reports whether the key works at now: neither revoked nor expired.
func (k *APIKey) Live(now time.Time) bool { return !k.Revoked() && !k.Expired(now) }

// PreviousWorks reports whether the secret the key had before its last roll
// still works at now.
func (k *APIKey) PreviousWorks(now time.Time) bool {
	return k.PreviousHash != "" && k.PreviousUntil != nil && now.Before(*k.PreviousUntil)
}

// CreateAPIKey inserts key (ID and Prefix set by the caller). A taken prefix gives ErrDuplicate.
func (s *Store) CreateAPIKey(ctx context.Context, key *APIKey) error {
	if key.CreatedAt.IsZero() {
		key.CreatedAt = Now()
	}
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) { return true, translate(tx.Create(key).Error) })
	return storeError(err, "create API key %s", key.ID)
}

// apiKeyQuery reads an API key by its prefix.
const apiKeyQuery = `SELECT id, name, prefix, key_hash, created_by, last_used_at, last_used_ip, revoked_at, revoked_by, created_at,
	scopes, app_id, expires_at, previous_hash, previous_until, rolled_at
	FROM api_keys WHERE prefix = ?`

// APIKeyByPrefix returns the key with that prefix, revoked or not. Every API request
// reads it (when no cache answers), so this skips GORM.
func (s *Store) APIKeyByPrefix(ctx context.Context, prefix string) (*APIKey, error) {
	st, err := s.prepared(ctx, apiKeyQuery)
	if err != nil {
		return nil, storeError(s.noteRead(err), "prepare the API key query")
	}
	key, err := scanAPIKey(st.QueryRowContext(ctx, prefix))
	if err != nil {
		// Not the prefix: it is part of the key the client presented.
		return nil, storeError(s.noteRead(err), "fetch API key by prefix")
	}
	return key, nil
}

func scanAPIKey(row *sql.Row) (*APIKey, error) {
	var key APIKey
	var lastUsed, revoked, expires, previousUntil, rolled sql.NullTime
	err := row.Scan(&key.ID, &key.Name, &key.Prefix, &key.KeyHash, &key.CreatedBy, &lastUsed, &key.LastUsedIP, &revoked, &key.RevokedBy, &key.CreatedAt,
		&key.Scopes, &key.AppID, &expires, &key.PreviousHash, &previousUntil, &rolled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	key.LastUsedAt, key.RevokedAt = nullTime(lastUsed), nullTime(revoked)
	key.ExpiresAt, key.PreviousUntil, key.RolledAt = nullTime(expires), nullTime(previousUntil), nullTime(rolled)
	return &key, nil
}

func nullTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time.UTC()
	return &v
}

// APIKeyByID returns one key, revoked or not.
func (s *Store) APIKeyByID(ctx context.Context, id string) (*APIKey, error) {
	var key APIKey
	err := s.db.WithContext(ctx).Where("id = ?", id).First(&key).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch API key %s", id)
	}
	return &key, nil
}

// ListAPIKeys returns every key, live ones first, newest first within each group.
func (s *Store) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	var keys []APIKey
	err := s.db.WithContext(ctx).Order("revoked_at IS NOT NULL, created_at DESC, id").Find(&keys).Error
	return keys, storeError(err, "list API keys")
}

// RevokeAPIKey marks a live key revoked. An unknown or already revoked key gives ErrNotFound.
func (s *Store) RevokeAPIKey(ctx context.Context, id, by string) error {
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) {
		res := tx.Model(&APIKey{}).Where("id = ? AND revoked_at IS NULL", id).
			Updates(map[string]any{"revoked_at": Now(), "revoked_by": by})
		if res.Error == nil && res.RowsAffected == 0 {
			return false, ErrNotFound
		}
		return true, res.Error
	})
	return storeError(err, "revoke API key %s", id)
}

// TouchAPIKey records that a key was used at t from the client address ip.
func (s *Store) TouchAPIKey(ctx context.Context, id string, t time.Time, ip string) error {
	err := s.db.WithContext(ctx).Model(&APIKey{}).Where("id = ?", id).
		Updates(map[string]any{"last_used_at": t, "last_used_ip": clip(ip, 64)}).Error
	return storeError(err, "record use of API key %s", id)
}

// RollAPIKey gives a live key the secret hashed newHash; its current secret keeps
// working until previousUntil (a secret rolled before stops at once). A revoked or
// unknown key gives ErrNotFound. ctx's audit entry is written with it.
func (s *Store) RollAPIKey(ctx context.Context, id, newHash string, previousUntil, now time.Time) error {
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) {
		res := tx.Model(&APIKey{}).Where("id = ? AND revoked_at IS NULL", id).Updates(map[string]any{
			"previous_hash":  gorm.Expr("key_hash"),
			"previous_until": previousUntil,
			"key_hash":       newHash,
			"rolled_at":      now,
		})
		if res.Error == nil && res.RowsAffected == 0 {
			return false, ErrNotFound
		}
		return true, res.Error
	})
	return storeError(err, "roll API key %s", id)
}
