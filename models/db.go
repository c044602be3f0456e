// Package models holds grconnect's GORM models, the schema migrations and the
// queries on them. It knows nothing of HTTP, views or GetResponse.
package models

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Store is the database handle with the queries on it. It is safe for concurrent use.
type Store struct {
	db       *gorm.DB
	postgres bool
}

// ErrNotFound is returned when a looked-up record does not exist.
var ErrNotFound = errors.New("not found")

// ErrDuplicate is returned when a unique value (an email, a name) is already taken.
var ErrDuplicate = errors.New("already exists")

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
		dialector = sqlite.Open(SQLiteDSN(database))
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		TranslateError: true,
		NowFunc:        Now,
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
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if isPG {
		sqlDB.SetMaxOpenConns(16)
		sqlDB.SetMaxIdleConns(16)
	} else {
		// Max idle = max open: an idle pool smaller than the open one makes requests
		// open fresh SQLite connections and re-run the pragmas.
		sqlDB.SetMaxOpenConns(4)
		sqlDB.SetMaxIdleConns(4)
	}
	sqlDB.SetConnMaxIdleTime(10 * time.Minute)
	return &Store{db: db, postgres: isPG}, nil
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
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close closes the connection pool.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
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
