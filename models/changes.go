package models

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"

	"gorm.io/gorm"
)

// changeCounterName names the GORM plugin that counts writes.
const changeCounterName = "grconnect:changes"

// changeCounter counts every write statement this process runs (create, update,
// delete, raw), from a GORM callback that runs inside the statement's transaction,
// before it commits. It lets caches of rows notice any write at all, whoever made it:
// the token engine, the OAuth callback, a disconnect, an app deletion.
type changeCounter struct {
	n atomic.Uint64
}

// Name names the plugin.
func (*changeCounter) Name() string { return changeCounterName }

// Initialize registers the counting callbacks.
func (c *changeCounter) Initialize(db *gorm.DB) error {
	count := func(db *gorm.DB) {
		if db.Statement != nil && db.Statement.Context != nil && db.Statement.Context.Value(logWritesKey{}) != nil {
			return // only log tables: no cached row lives there
		}
		c.n.Add(1)
	}
	cb := db.Callback()
	return errors.Join(
		cb.Create().After("gorm:create").Register(changeCounterName, count),
		cb.Update().After("gorm:update").Register(changeCounterName, count),
		cb.Delete().After("gorm:delete").Register(changeCounterName, count),
		cb.Raw().After("gorm:raw").Register(changeCounterName, count),
	)
}

// logWritesKey marks a context whose statements write only log tables: the
// timeline's events, the webhook outbox, GetResponse's inbound events.
type logWritesKey struct{}

// logWrites returns ctx marked as writing only log tables. The store methods that
// write nothing else say so themselves: no cached row (connections, API keys,
// apps) lives in those tables, so the change counter leaves their statements out,
// and a flood of GetResponse's events does not retire the caches of tokens and
// API keys.
func logWrites(ctx context.Context) context.Context {
	return context.WithValue(ctx, logWritesKey{}, true)
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

// AppWrites returns how many writes to the apps table this process has finished.
// Every Store method that writes apps says so itself (AppsWritten, deferred, so the
// count rises once the write is committed): a cache that reads the count before it
// reads an app row holds that row only while no app was written since.
func (s *Store) AppWrites() uint64 { return s.appWrites.Load() }

// AppsWritten records a finished write to the apps table (see AppWrites). Store
// methods call it themselves; a write made around them (a test's raw UPDATE) must too.
func (s *Store) AppsWritten() { s.appWrites.Add(1) }

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
