package services

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/grconnect/grconnect/models"
)

// API keys look like "grc_k3j5m2p4_<52 characters>": a visible prefix that names the
// key's row, then 256 random bits. Only the SHA-256 of the whole key is stored.
const (
	apiKeyScheme  = "grc_"
	prefixBytes   = 5  // 8 base32 characters
	secretBytes   = 32 // 52 base32 characters
	apiKeyMaxName = 100
	// touchEvery is how stale a key's last-used time may get: at most one write per
	// key and interval, not one per request.
	touchEvery = time.Minute
	// touchFlush is how often the noted uses are written, off the request path.
	touchFlush = 15 * time.Second
)

// ErrInvalidAPIKey is returned for a missing, unknown, wrong or revoked API key.
var ErrInvalidAPIKey = errors.New("invalid API key")

// APIKeys manages the keys of the JSON API.
type APIKeys struct {
	store *models.Store
	now   func() time.Time
	// cache spares each API request its key read, where the store allows it.
	cache     rowCache[models.APIKey]
	cacheable bool
	// held keeps, where keys are not cached (PostgreSQL), each key as last read,
	// to verify with only while the database cannot be reached.
	held heldRows[models.APIKey]
	// Last-used times are noted per request and written in the background, so a
	// database that refuses writes never fails an API call.
	touchMu sync.Mutex
	touches map[string]time.Time // key ID → last use not yet written
	touched map[string]time.Time // key ID → last use written (or noted) by this process
	log     *slog.Logger
}

// NewAPIKeys returns the API key service.
func NewAPIKeys(store *models.Store, log *slog.Logger) *APIKeys {
	return &APIKeys{store: store, now: models.Now, cacheable: store.CanCacheRows(), log: log,
		touches: map[string]time.Time{}, touched: map[string]time.Time{}}
}

// Create makes a key named name and returns it with the key itself, which is
// shown once and never again.
func (k *APIKeys) Create(ctx context.Context, name, createdBy string) (*models.APIKey, string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return nil, "", FieldErrors{"name": "Name the key after what uses it, like \"billing backend\"."}
	case utf8.RuneCountInString(name) > apiKeyMaxName:
		return nil, "", FieldErrors{"name": "Use at most 100 characters."}
	case hasUnprintable(name):
		return nil, "", FieldErrors{"name": unprintableProblem}
	}
	prefix := apiKeyScheme + models.RandomToken(prefixBytes)
	plain := prefix + "_" + models.RandomToken(secretBytes)
	key := &models.APIKey{
		ID: models.NewID("key"), Name: name, Prefix: prefix, KeyHash: hashAPIKey(plain),
		CreatedBy: createdBy, CreatedAt: k.now(),
	}
	ctx = auditing(ctx, models.AuditAPIKeyCreated, TargetAPIKey, key.ID, "API key \""+name+"\" ("+prefix+"_…) created")
	if err := k.store.CreateAPIKey(ctx, key); err != nil {
		return nil, "", err
	}
	return key, plain, nil
}

// List returns every key, live ones first, with uses noted but not yet written.
func (k *APIKeys) List(ctx context.Context) ([]models.APIKey, error) {
	keys, err := k.store.ListAPIKeys(ctx)
	k.touchMu.Lock()
	defer k.touchMu.Unlock()
	for i := range keys {
		if at, ok := k.touches[keys[i].ID]; ok && (keys[i].LastUsedAt == nil || at.After(*keys[i].LastUsedAt)) {
			keys[i].LastUsedAt = &at
		}
	}
	return keys, err
}

// Get returns one key, or models.ErrNotFound.
func (k *APIKeys) Get(ctx context.Context, id string) (*models.APIKey, error) {
	key, err := k.store.APIKeyByID(ctx, id)
	return key, err
}

// Revoke stops a key from working at once. Revoking a revoked key is models.ErrNotFound.
func (k *APIKeys) Revoke(ctx context.Context, id, actor string) error {
	key, err := k.store.APIKeyByID(ctx, id)
	if err != nil {
		return err
	}
	ctx = auditing(ctx, models.AuditAPIKeyRevoked, TargetAPIKey, id, "API key \""+key.Name+"\" ("+key.Prefix+"_…) revoked")
	k.held.drop(key.Prefix)
	return k.store.RevokeAPIKey(ctx, id, actor)
}

// Verify returns the live key that presented is, or ErrInvalidAPIKey. The stored
// hash is compared in constant time. The key's last-used time is noted for the
// next background write (to the minute); Verify itself never writes.
func (k *APIKeys) Verify(ctx context.Context, presented string) (*models.APIKey, error) {
	prefix, ok := apiKeyPrefix(presented)
	if !ok {
		return nil, ErrInvalidAPIKey
	}
	key, err := k.lookup(ctx, prefix)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrInvalidAPIKey
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(hashAPIKey(presented)), []byte(key.KeyHash)) != 1 || key.Revoked() {
		return nil, ErrInvalidAPIKey
	}
	k.noteUse(key, k.now())
	return key, nil
}

// noteUse remembers a key's use for FlushUses, at most once per touchEvery.
func (k *APIKeys) noteUse(key *models.APIKey, now time.Time) {
	k.touchMu.Lock()
	defer k.touchMu.Unlock()
	last := k.touched[key.ID]
	if key.LastUsedAt != nil && key.LastUsedAt.After(last) {
		last = *key.LastUsedAt
	}
	if !last.IsZero() && now.Sub(last) < touchEvery {
		return
	}
	if len(k.touched) > 10_000 {
		k.touched = map[string]time.Time{} // bounded; the worst case is an extra write
	}
	k.touches[key.ID], k.touched[key.ID] = now, now
}

// FlushUses writes the noted last-used times. A failure is logged and the uses are
// kept for the next flush; nothing waits on it.
func (k *APIKeys) FlushUses(ctx context.Context) {
	k.touchMu.Lock()
	batch := k.touches
	k.touches = map[string]time.Time{}
	k.touchMu.Unlock()
	for id, at := range batch {
		if err := k.store.TouchAPIKey(ctx, id, at); err != nil {
			k.log.Warn("could not record an API key's last use; will try again", "key", id, "error", err)
			k.touchMu.Lock()
			if _, newer := k.touches[id]; !newer {
				k.touches[id] = at
			}
			k.touchMu.Unlock()
			return
		}
	}
}

// Run writes the noted uses every touchFlush, and once more when ctx ends.
func (k *APIKeys) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			k.FlushUses(flushCtx)
			cancel()
			return
		case <-time.After(touchFlush):
			k.FlushUses(ctx)
		}
	}
}

// lookup reads the key with prefix, from the cache when it is current. Where keys
// are not cached (PostgreSQL), the key last read answers while the database
// cannot be reached, so the token route keeps working through an outage.
func (k *APIKeys) lookup(ctx context.Context, prefix string) (*models.APIKey, error) {
	if !k.cacheable {
		key, err := k.store.APIKeyByPrefix(ctx, prefix)
		switch {
		case err == nil:
			k.held.put(prefix, *key)
			return key, nil
		case errors.Is(err, models.ErrNotFound):
			k.held.drop(prefix)
		case models.StorageProblemOf(err) == models.ProblemUnreachable:
			if held, ok := k.held.get(prefix); ok {
				return &held, nil
			}
		}
		return nil, err
	}
	now := time.Now()
	if key, ok := k.cache.get(prefix, k.store.Changes(), now); ok {
		return &key, nil
	}
	key, changes, err := k.store.FreshAPIKey(ctx, prefix)
	if err != nil {
		return nil, err
	}
	k.cache.put(prefix, *key, changes, now)
	return key, nil
}

// apiKeyPrefix returns the prefix of a well-formed key.
func apiKeyPrefix(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, apiKeyScheme)
	if !ok {
		return "", false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 8 || len(secret) != 52 {
		return "", false
	}
	return apiKeyScheme + id, true
}

func hashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
