package services

import (
	"sync"
	"time"
)

// Row caches of the API's hot path (API keys, connections' sealed tokens).
const (
	// rowCacheMaxAge bounds how long an entry answers at all: writes by another
	// process (a second grconnect on the same SQLite file) are not counted here, so
	// they show after at most this long.
	rowCacheMaxAge = time.Second
	// rowCacheMaxEntries bounds the memory: a full cache starts over.
	rowCacheMaxEntries = 10_000
)

// rowCache keeps rows as read from the database, each tagged with the store's write
// count (models.Store.Changes) at its read. An entry answers only while that count
// has not moved, so any write of this process (a refresh, a reconnect, a disconnect,
// a revoked key) retires every entry at once, before the writing transaction commits.
// It holds what the database holds: sealed tokens and key hashes, never a plaintext
// token.
type rowCache[T any] struct {
	mu      sync.RWMutex
	entries map[string]rowEntry[T]
}

type rowEntry[T any] struct {
	row     T
	changes uint64
	read    time.Time
}

// get returns a copy of key's row if it is still current.
func (c *rowCache[T]) get(key string, changes uint64, now time.Time) (T, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok || e.changes != changes || now.Sub(e.read) >= rowCacheMaxAge || now.Before(e.read) {
		var zero T
		return zero, false
	}
	return e.row, true
}

// put stores a row read when the write count was changes.
func (c *rowCache[T]) put(key string, row T, changes uint64, read time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= rowCacheMaxEntries {
		c.entries = make(map[string]rowEntry[T])
	}
	c.entries[key] = rowEntry[T]{row: row, changes: changes, read: read}
}

// heldRowsMax bounds the held rows: a full set forgets one row for each new one.
const heldRowsMax = 100_000

// heldRows keep, where rows are not cached (PostgreSQL), the last row the database
// gave for each key, for one use only: answering while the database cannot be
// reached. While it answers, every read goes to it and replaces the held row, so
// a row another replica changed is never served from here while it is up.
type heldRows[T any] struct {
	mu   sync.Mutex
	rows map[string]T
}

// put holds row for key.
func (h *heldRows[T]) put(key string, row T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rows == nil {
		h.rows = make(map[string]T)
	}
	if _, ok := h.rows[key]; !ok && len(h.rows) >= heldRowsMax {
		for k := range h.rows {
			delete(h.rows, k)
			break
		}
	}
	h.rows[key] = row
}

// get returns key's held row.
func (h *heldRows[T]) get(key string) (T, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	row, ok := h.rows[key]
	return row, ok
}

// drop forgets key's row (deleted, disconnected).
func (h *heldRows[T]) drop(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.rows, key)
}
