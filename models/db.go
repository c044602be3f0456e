// Package models holds grconnect's GORM models, the schema migrations and the
// queries on them. It knows nothing of HTTP, views or GetResponse.
package models

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/plugin/dbresolver"
)

// Store is the database handle with the queries on it. It is safe for concurrent use.
type Store struct {
	db       *gorm.DB
	postgres bool
	// stmts holds the prepared statements of the few hot reads (see prepared.go).
	stmts sync.Map
	// reads is SQLite's pool for reads; writes go through db's single connection.
	reads *sql.DB
	// health is what the statements' outcomes say of the database (health.go).
	health *health
	// path is the SQLite file ("" on PostgreSQL); minFree is the room its file
	// system must have left to be ready (MinFreeSpace; space.go).
	path    string
	minFree uint64
	// plans remembers how recent searches run (search.go).
	plans planCache
	// appWrites counts this process's finished writes to apps (AppWrites).
	appWrites atomic.Uint64
	// tokenCommits group-commits new token pairs (token_commit.go).
	tokenCommits tokenCommits
	// folding is set while a read's fold of the connection counts runs in
	// background, which Close waits for (counts.go).
	folding    atomic.Bool
	background sync.WaitGroup
}

// SQLiteDSN returns the DSN that gives every pooled SQLite connection the pragmas
// grconnect relies on. The glebarez driver reads only _pragma, _time_format and
// _txlock; _txlock=immediate avoids SQLITE_BUSY on read-then-write transactions.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// Open connects to database (a SQLite file path or a postgres:// URL). It does not
// migrate; call Migrate.
func Open(database string, log *slog.Logger) (*Store, error) {
	isPG := strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
	var dialector gorm.Dialector
	if isPG {
		dialector = postgres.Open(database)
	} else {
		if err := createPrivate(database); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		registerSearchFunc()
		// The one writer keeps a larger page cache: a refresh rewrites a few index
		// entries, and at a million connections the indexes' upper pages are worth
		// keeping between writes.
		dialector = sqlite.Open(SQLiteDSN(database) + "&_pragma=cache_size(-32768)")
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		TranslateError: true,
		NowFunc:        Now,
		// Statements are prepared once per connection and reused, which saves GORM's
		// own statement building (the pure-Go SQLite driver still compiles the SQL).
		PrepareStmt: true,
		// Parameterized: a slow or failing query is logged without its values.
		Logger: logger.New(slog.NewLogLogger(log.Handler(), slog.LevelWarn), logger.Config{
			SlowThreshold:             time.Second,
			LogLevel:                  logger.Warn,
			IgnoreRecordNotFoundError: true,
			ParameterizedQueries:      true,
			Colorful:                  false,
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %s", redactDSN(err.Error(), database))
	}
	if err := db.Use(&changeCounter{}); err != nil { // see changes.go
		return nil, err
	}
	h := &health{hold: DefaultHealthHold}
	if err := db.Use(healthPlugin{h: h}); err != nil { // see health.go
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetConnMaxIdleTime(10 * time.Minute)
	if isPG {
		sqlDB.SetMaxOpenConns(16)
		sqlDB.SetMaxIdleConns(16)
		return &Store{db: db, postgres: true, health: h}, nil
	}
	// SQLite has one writer at a time. Writers queued on one pooled connection wait
	// their turn in Go; writers on several connections would poll SQLite's busy
	// handler with sleeps of up to 25 ms. Reads (WAL: never blocked by the writer)
	// get a pool of their own, and GORM's resolver routes each statement: queries to
	// the read pool, writes and transactions to the write connection.
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetMaxIdleConns(1)
	reads, err := sql.Open(sqlite.DriverName, SQLiteDSN(database))
	if err != nil {
		return nil, err
	}
	// Max idle = max open: an idle pool smaller than the open one makes requests
	// open fresh SQLite connections and re-run the pragmas.
	reads.SetMaxOpenConns(4)
	reads.SetMaxIdleConns(4)
	reads.SetConnMaxIdleTime(10 * time.Minute)
	if err := db.Use(dbresolver.Register(dbresolver.Config{
		Replicas: []gorm.Dialector{sqlite.Dialector{DriverName: sqlite.DriverName, DSN: SQLiteDSN(database), Conn: reads}},
	})); err != nil {
		reads.Close()
		return nil, err
	}
	return &Store{db: db, reads: reads, health: h, path: database, minFree: MinFreeSpace}, nil
}

// createPrivate creates the SQLite file with mode 0600 when it does not exist yet:
// SQLite would create it 0644 (less the umask), readable by every local user, and it
// gives its -wal and -shm files the main file's mode.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// redactDSN removes a password that an error message may have quoted.
func redactDSN(msg, dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// DB returns the underlying GORM handle, for tests and tools.
func (s *Store) DB() *gorm.DB { return s.db }

// IsPostgres reports whether the store runs on PostgreSQL.
func (s *Store) IsPostgres() bool { return s.postgres }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return storeError(err, "ping the database")
	}
	return storeError(sqlDB.PingContext(ctx), "ping the database")
}

// Close closes the connection pools.
func (s *Store) Close() error {
	s.background.Wait()
	sqlDB, err := s.db.DB()
	if err != nil {
		return storeError(err, "close the database")
	}
	if s.reads != nil {
		s.reads.Close()
	}
	return storeError(sqlDB.Close(), "close the database")
}

// readPool is the pool for read-only statements: SQLite's read pool, or the one pool.
func (s *Store) readPool() (*sql.DB, error) {
	if s.reads != nil {
		return s.reads, nil
	}
	return s.db.DB()
}

// Pools returns the underlying connection pools (the write pool first), for tests
// and tools that check every connection.
func (s *Store) Pools() []*sql.DB {
	sqlDB, _ := s.db.DB()
	if s.reads == nil {
		return []*sql.DB{sqlDB}
	}
	return []*sql.DB{sqlDB, s.reads}
}

// Now returns the current time in UTC truncated to microseconds, the precision both
// engines store, so a value read back equals the value written.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// NewID returns a random identifier with a readable prefix, such as "con_k3j…".
// IDs are made before the insert because they are part of the encryption's
// additional data.
func NewID(prefix string) string {
	return prefix + "_" + RandomToken(10)
}

// RandomToken returns n random bytes encoded as lowercase base32 without padding.
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on a working system
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// translate maps GORM's errors to the package's.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return ErrDuplicate
	}
	return err
}
