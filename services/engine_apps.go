package services

import (
	"context"
	"sync"
	"time"

	"github.com/grconnect/grconnect/models"
)

// appCacheMaxAge bounds how long an app row read earlier answers: writes of this
// process retire entries at once (models.Store.AppWrites), writes by another
// replica show within this long.
const appCacheMaxAge = 5 * time.Second

// appCache keeps app rows for the hot paths: every refresh, proxied call and test
// call needs its connection's app, and apps rarely change. Entries are shared and
// must not be modified.
type appCache struct {
	store   *models.Store
	mu      sync.Mutex
	entries map[string]appEntry
}

type appEntry struct {
	app    *models.App
	writes uint64
	read   time.Time
}

// App returns a live app, from the cache when no app was written since it was read.
func (t *Tokens) App(ctx context.Context, id string) (*models.App, error) {
	return t.appRows.get(ctx, id)
}

func (c *appCache) get(ctx context.Context, id string) (*models.App, error) {
	now := time.Now()
	writes := c.store.AppWrites()
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && e.writes == writes && now.Sub(e.read) < appCacheMaxAge && !now.Before(e.read) {
		return e.app, nil
	}
	app, err := c.store.AppByID(ctx, id)
	if ok && models.StorageProblemOf(err) == models.ProblemUnreachable {
		// PostgreSQL cannot be reached: the app as last read serves the token
		// route and the proxy meanwhile.
		return e.app, nil
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.entries == nil || len(c.entries) >= 1000 {
		c.entries = map[string]appEntry{}
	}
	c.entries[id] = appEntry{app: app, writes: writes, read: now}
	c.mu.Unlock()
	return app, nil
}
