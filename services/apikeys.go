package services

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
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

// Rolling a key: the old secret keeps working for an overlap the operator
// chooses, so the backends that hold it can move to the new one without a gap.
const (
	DefaultRollOverlap = 24 * time.Hour
	MaxRollOverlap     = 30 * 24 * time.Hour
	// MaxAPIKeyLifetime bounds an expiry chosen for a new key.
	MaxAPIKeyLifetime = 5 * 365 * 24 * time.Hour
)

// ErrInvalidAPIKey is returned for a missing, unknown, wrong or revoked API key.
var ErrInvalidAPIKey = errors.New("invalid API key")

// APIKeyExpiredError is returned for a key whose expiry has passed; it is an
// ErrInvalidAPIKey (401) whose message says so.
type APIKeyExpiredError struct{ At time.Time }

func (e *APIKeyExpiredError) Error() string {
	return "this API key expired at " + e.At.UTC().Format(time.RFC3339) + "; make a new one"
}

// Is makes an expired key an invalid one.
func (e *APIKeyExpiredError) Is(target error) bool { return target == ErrInvalidAPIKey }

// APIKeys manages the keys of the JSON API.
type APIKeys struct {
	store *models.Store
	// Now is the clock; tests replace it.
	Now func() time.Time
	// cache spares each API request its key read, where the store allows it.
	cache     rowCache[models.APIKey]
	cacheable bool
	// held keeps, where keys are not cached (PostgreSQL), each key as last read,
	// to verify with only while the database cannot be reached.
	held heldRows[models.APIKey]
	// Last uses are noted per request and written in the background, so a
	// database that refuses writes never fails an API call.
	touchMu sync.Mutex
	touches map[string]keyUse    // key ID → last use not yet written
	touched map[string]time.Time // key ID → last use written (or noted) by this process
	log     *slog.Logger
}

// keyUse is one noted use of a key: when, and from which client address.
type keyUse struct {
	at time.Time
	ip string
}

// NewAPIKeys returns the API key service.
func NewAPIKeys(store *models.Store, log *slog.Logger) *APIKeys {
	return &APIKeys{store: store, Now: models.Now, cacheable: store.CanCacheRows(), log: log,
		touches: map[string]keyUse{}, touched: map[string]time.Time{}}
}

// APIKeyInput is a new key: its name, scopes (none: every scope), the one app it
// is limited to ("" for all) and how long it works (0: until revoked).
type APIKeyInput struct {
	Name      string
	Scopes    []string
	AppID     string
	ExpiresIn time.Duration
	CreatedBy string
}

// Create makes a key and returns it with the key itself, which is shown once and
// never again. Problems come back as FieldErrors on "name", "scopes", "app_id"
// and "expires".
func (k *APIKeys) Create(ctx context.Context, in APIKeyInput) (*models.APIKey, string, error) {
	fe := FieldErrors{}
	name := strings.TrimSpace(in.Name)
	switch {
	case name == "":
		fe.Add("name", "Name the key after what uses it, like \"billing backend\".")
	case utf8.RuneCountInString(name) > apiKeyMaxName:
		fe.Add("name", "Use at most 100 characters.")
	case hasUnprintable(name):
		fe.Add("name", unprintableProblem)
	}
	var scopes []models.APIScope
	for _, raw := range in.Scopes {
		s := models.APIScope(strings.TrimSpace(raw))
		if !s.Known() {
			fe.Add("scopes", "Unknown scope "+strconvQuote(raw)+". Use "+scopeNames()+".")
			break
		}
		scopes = append(scopes, s)
	}
	var app *models.App
	if in.AppID != "" {
		var err error
		app, err = k.store.AppByID(ctx, in.AppID)
		switch {
		case errors.Is(err, models.ErrNotFound):
			fe.Add("app_id", "There is no app "+strconvQuote(in.AppID)+".")
		case err != nil:
			return nil, "", err
		}
	}
	if in.ExpiresIn < 0 || in.ExpiresIn > MaxAPIKeyLifetime {
		fe.Add("expires", "A key works from one minute to five years, or until revoked.")
	} else if in.ExpiresIn > 0 && in.ExpiresIn < time.Minute {
		fe.Add("expires", "A key works from one minute to five years, or until revoked.")
	}
	if err := fe.OrNil(); err != nil {
		return nil, "", err
	}
	now := k.Now()
	prefix := apiKeyScheme + models.RandomToken(prefixBytes)
	plain := prefix + "_" + models.RandomToken(secretBytes)
	key := &models.APIKey{
		ID: models.NewID("key"), Name: name, Prefix: prefix, KeyHash: hashAPIKey(plain),
		CreatedBy: in.CreatedBy, CreatedAt: now, Scopes: models.JoinScopes(scopes), AppID: in.AppID,
	}
	if in.ExpiresIn > 0 {
		at := now.Add(in.ExpiresIn)
		key.ExpiresAt = &at
	}
	ctx = auditing(ctx, models.AuditAPIKeyCreated, TargetAPIKey, key.ID, "API key \""+name+"\" ("+prefix+"_…) created: "+DescribeKeyAccess(key, app))
	if err := k.store.CreateAPIKey(ctx, key); err != nil {
		return nil, "", err
	}
	return key, plain, nil
}

// DescribeKeyAccess says what a key may do, in words, for the audit log and the
// command line: its scopes, its app and its expiry.
func DescribeKeyAccess(key *models.APIKey, app *models.App) string {
	var b strings.Builder
	if key.AllScopes() {
		b.WriteString("every scope")
	} else {
		b.WriteString("scopes ")
		for i, s := range key.ScopeList() {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(string(s))
		}
	}
	switch {
	case key.AppID == "":
		b.WriteString("; every app")
	case app != nil:
		b.WriteString("; only the app \"" + app.Name + "\" (" + app.ID + ")")
	default:
		b.WriteString("; only the app " + key.AppID)
	}
	if key.ExpiresAt != nil {
		b.WriteString("; expires " + key.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
	} else {
		b.WriteString("; never expires")
	}
	return b.String()
}

func scopeNames() string {
	names := make([]string, len(models.APIScopes))
	for i, s := range models.APIScopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// strconvQuote quotes s for a message, cut to a readable length.
func strconvQuote(s string) string { return strconv.Quote(truncate(s, 60)) }

// Roll gives a live key a new secret, returned once, and keeps its current secret
// working for overlap (0: it stops at once; a secret rolled before stops at once
// too). The key keeps its prefix, scopes, app and expiry. An expired, revoked or
// unknown key gives models.ErrNotFound; an overlap out of range, FieldErrors.
func (k *APIKeys) Roll(ctx context.Context, id string, overlap time.Duration) (*models.APIKey, string, error) {
	if overlap < 0 || overlap > MaxRollOverlap {
		return nil, "", FieldErrors{"overlap": "Keep the old secret working for up to 30 days, or not at all."}
	}
	key, err := k.store.APIKeyByID(ctx, id)
	if err != nil {
		return nil, "", err
	}
	now := k.Now()
	if !key.Live(now) {
		return nil, "", models.ErrNotFound
	}
	plain := key.Prefix + "_" + models.RandomToken(secretBytes)
	until := now.Add(overlap)
	details := "API key \"" + key.Name + "\" (" + key.Prefix + "_…) rolled: the old secret stops working at once"
	if overlap > 0 {
		details = "API key \"" + key.Name + "\" (" + key.Prefix + "_…) rolled: the old secret works until " + until.UTC().Format("2006-01-02 15:04 UTC")
	}
	ctx = auditing(ctx, models.AuditAPIKeyRolled, TargetAPIKey, key.ID, details)
	if err := k.store.RollAPIKey(ctx, key.ID, hashAPIKey(plain), until, now); err != nil {
		return nil, "", err
	}
	key, err = k.store.APIKeyByID(ctx, id)
	if err != nil {
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
		if use, ok := k.touches[keys[i].ID]; ok && (keys[i].LastUsedAt == nil || use.at.After(*keys[i].LastUsedAt)) {
			keys[i].LastUsedAt, keys[i].LastUsedIP = &use.at, use.ip
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

// Verify returns the live key that presented is, or ErrInvalidAPIKey (an
// *APIKeyExpiredError once its expiry has passed). The stored hashes (the
// current secret's, and during a roll's overlap the previous one's) are compared
// in constant time. The key's use, from the client address ip, is noted for the
// next background write (to the minute); Verify itself never writes.
func (k *APIKeys) Verify(ctx context.Context, presented, ip string) (*models.APIKey, error) {
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
	now := k.Now()
	hash := []byte(hashAPIKey(presented))
	current := subtle.ConstantTimeCompare(hash, []byte(key.KeyHash)) == 1
	previous := subtle.ConstantTimeCompare(hash, []byte(key.PreviousHash)) == 1 && key.PreviousWorks(now)
	switch {
	case !current && !previous || key.Revoked():
		return nil, ErrInvalidAPIKey
	case key.Expired(now):
		return nil, &APIKeyExpiredError{At: *key.ExpiresAt}
	}
	k.noteUse(key, now, ip)
	return key, nil
}

// noteUse remembers a key's use for FlushUses, at most once per touchEvery.
func (k *APIKeys) noteUse(key *models.APIKey, now time.Time, ip string) {
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
	k.touches[key.ID], k.touched[key.ID] = keyUse{at: now, ip: ip}, now
}

// FlushUses writes the noted last-used times. A failure is logged and the uses are
// kept for the next flush; nothing waits on it.
func (k *APIKeys) FlushUses(ctx context.Context) {
	k.touchMu.Lock()
	batch := k.touches
	k.touches = map[string]keyUse{}
	k.touchMu.Unlock()
	for id, use := range batch {
		if err := k.store.TouchAPIKey(ctx, id, use.at, use.ip); err != nil {
			k.log.Warn("could not record an API key's last use; will try again", "key", id, "error", err)
			k.touchMu.Lock()
			if _, newer := k.touches[id]; !newer {
				k.touches[id] = use
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
