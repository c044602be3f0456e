package models

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync/atomic"

	"gorm.io/gorm"
)

// changeCounterName names the GORM plugin that counts writes.
const changeCounterName = "grconnect:changes"

// changeCounter counts every write statement this process runs (create, update,
// delete, raw) but those to the log tables (logTables), from a GORM callback that
// runs inside the statement's transaction, before it commits. It lets caches of
// rows notice any write at all, whoever made it: the token engine, the OAuth
// callback, a disconnect, an app deletion.
type changeCounter struct {
	n atomic.Uint64
	// apps counts the writes to the apps table alone, for the app cache.
	apps atomic.Uint64
}

// Name names the plugin.
func (*changeCounter) Name() string { return changeCounterName }

// Initialize registers the counting callbacks.
func (c *changeCounter) Initialize(db *gorm.DB) error {
	count := func(db *gorm.DB) {
		if db.Statement == nil {
			c.n.Add(1)
			return
		}
		table := db.Statement.Table
		if table == "" {
			table = rawWriteTable(db.Statement.SQL.String())
		}
		if logTables[table] {
			return // no cached row lives there
		}
		c.n.Add(1)
		if table == "apps" {
			c.apps.Add(1)
		}
	}
	cb := db.Callback()
	return errors.Join(
		cb.Create().After("gorm:create").Register(changeCounterName, count),
		cb.Update().After("gorm:update").Register(changeCounterName, count),
		cb.Delete().After("gorm:delete").Register(changeCounterName, count),
		cb.Raw().After("gorm:raw").Register(changeCounterName, count),
	)
}

// Changes returns how many writes this process has made; any write, committed or
// about to be, has raised it.
func (s *Store) Changes() uint64 {
	c, _ := s.db.Config.Plugins[changeCounterName].(*changeCounter)
	if c == nil {
		return 0
	}
	return c.n.Load()
}

// logTables are the tables whose writes leave every cached row (connections,
// API keys, apps) as it was: timelines, the webhook outbox and GetResponse's
// inbound events, written by the thousand when events flow. A statement that
// also changes a cached row writes that row's table itself, and counts.
var logTables = map[string]bool{"events": true, "webhook_deliveries": true, "inbound_events": true}

// rawWriteTable returns the table a raw SQL write names ("" for anything else).
func rawWriteTable(sql string) string {
	head := strings.ToLower(strings.TrimSpace(sql[:min(len(sql), 60)]))
	for _, verb := range []string{"update ", "insert into ", "delete from "} {
		if rest, ok := strings.CutPrefix(head, verb); ok {
			rest = strings.TrimLeft(rest, ` "`)
			if end := strings.IndexAny(rest, ` "(`); end >= 0 {
				return rest[:end]
			}
			return rest
		}
	}
	return ""
}

// AppWrites returns how many writes to the apps table this process has made,
// through GORM's models or raw SQL.
func (s *Store) AppWrites() uint64 {
	c, _ := s.db.Config.Plugins[changeCounterName].(*changeCounter)
	if c == nil {
		return 0
	}
	return c.apps.Load()
}

// CanCacheRows reports whether FreshTokenRow and FreshAPIKey give cacheable answers.
// They do on SQLite, where every write of this process goes through one connection;
// on PostgreSQL writes run on many connections at once (and usually in several
// replicas), so nothing there is cached.
func (s *Store) CanCacheRows() bool {
	if s.postgres || s.db.Config.Plugins[changeCounterName] == nil {
		return false
	}
	sqlDB, err := s.db.DB()
	return err == nil && sqlDB.Stats().MaxOpenConnections == 1
}

// readFresh runs fn on the write connection and returns Changes as of fn's read.
// SQLite writes of this process run on that single connection, each transaction from
// its BEGIN to its COMMIT, and count themselves in Changes before committing: a
// read holding the connection sees every counted write committed, so a cache entry
// tagged with the returned count is current exactly as long as Changes still equals
// it.
func (s *Store) readFresh(ctx context.Context, fn func(conn *sql.Conn) error) (uint64, error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return 0, err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	changes := s.Changes()
	return changes, fn(conn)
}

// FreshTokenRow reads a connection's token columns for a cache: the row, and the
// Changes count it is current for (see readFresh).
func (s *Store) FreshTokenRow(ctx context.Context, id string) (*TokenRow, uint64, error) {
	var row *TokenRow
	changes, err := s.readFresh(ctx, func(conn *sql.Conn) error {
		var err error
		row, err = scanTokenRow(conn.QueryRowContext(ctx, tokenRowQuery, id), id)
		return err
	})
	return row, changes, storeError(err, "read the token of connection %s", id)
}

// FreshAPIKey reads an API key for a cache: the key, and the Changes count it is
// current for (see readFresh).
func (s *Store) FreshAPIKey(ctx context.Context, prefix string) (*APIKey, uint64, error) {
	var key *APIKey
	changes, err := s.readFresh(ctx, func(conn *sql.Conn) error {
		var err error
		key, err = scanAPIKey(conn.QueryRowContext(ctx, apiKeyQuery, prefix))
		return err
	})
	return key, changes, storeError(err, "fetch API key by prefix")
}
