package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// ErrStorageUnavailable matches the error of any store operation that failed
// because the database refuses writes (disk full, read-only) or cannot be reached.
// Handlers answer it with 503 storage_unavailable, never a bare 500.
var ErrStorageUnavailable = errors.New("the database is unavailable")

// StorageProblem names why the database refuses work.
type StorageProblem string

// The storage problems grconnect tells apart.
const (
	ProblemDiskFull    StorageProblem = "disk_full"
	ProblemReadOnly    StorageProblem = "read_only"
	ProblemUnreachable StorageProblem = "unreachable"
	ProblemIO          StorageProblem = "io_error"
)

// Describe says what the problem means, for people.
func (p StorageProblem) Describe() string {
	switch p {
	case ProblemDiskFull:
		return "the disk holding the database is full"
	case ProblemReadOnly:
		return "the database is read-only"
	case ProblemUnreachable:
		return "the database cannot be reached"
	case ProblemIO:
		return "the database reports I/O errors"
	}
	return "the database refuses writes"
}

// classifyStorage names the storage problem behind err, or "" when err is not one
// (a missing row, a duplicate key, a cancelled request).
func classifyStorage(err error) StorageProblem {
	if err == nil || errors.Is(err, gorm.ErrRecordNotFound) || errors.Is(err, gorm.ErrDuplicatedKey) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sql.ErrNoRows) {
		return ""
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == "53100":
			return ProblemDiskFull
		case pg.Code == "25006":
			return ProblemReadOnly
		case strings.HasPrefix(pg.Code, "08"), strings.HasPrefix(pg.Code, "57P"), strings.HasPrefix(pg.Code, "53"):
			return ProblemUnreachable
		case strings.HasPrefix(pg.Code, "58"):
			return ProblemIO
		}
		return ""
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) {
		return ProblemUnreachable
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "database or disk is full"), strings.Contains(msg, "no space left on device"):
		return ProblemDiskFull
	case strings.Contains(msg, "readonly database"), strings.Contains(msg, "read-only file system"):
		return ProblemReadOnly
	case strings.Contains(msg, "disk i/o error"), strings.Contains(msg, "unable to open database file"):
		return ProblemIO
	case strings.Contains(msg, "conn closed"), strings.Contains(msg, "connection refused"), strings.Contains(msg, "failed to connect"),
		strings.Contains(msg, "broken pipe"), strings.Contains(msg, "connection reset"), strings.Contains(msg, "unexpected eof"):
		return ProblemUnreachable
	}
	return ""
}

// Health is what the store has seen of the database lately.
type Health struct {
	// Problem is "" while the last write (or read, for an unreachable database)
	// succeeded.
	Problem StorageProblem
	// Since is when the problem was first seen.
	Since time.Time
	// Err is the last failure, for the log (it may name the database host).
	Err error
	// LastFailure is when a statement last failed for a storage problem (zero:
	// never), even when the problem has cleared since.
	LastFailure time.Time
}

// OK reports whether the database accepts writes as far as the store knows.
func (h Health) OK() bool { return h.Problem == "" }

// health tracks the database's answers: every failed statement that is a storage
// problem marks the store unhealthy, the next successful write (a probe, a retried
// commit) marks it healthy again.
type health struct {
	mu      sync.Mutex
	problem StorageProblem
	since   time.Time
	err     error
	// failed is the last failure: a success clears the problem only once hold has
	// passed since, so a full disk whose small writes still fit now and then (a
	// reused WAL) does not flap between ready and not.
	failed time.Time
	hold   time.Duration
	now    func() time.Time // nil: time.Now
	// changed is closed and replaced on every change, so waiters can wake.
	changed chan struct{}
}

func (h *health) note(p StorageProblem, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if h.now != nil {
		now = h.now()
	}
	if p != "" {
		h.failed = now
	} else if h.problem != "" && now.Sub(h.failed) < h.hold {
		return // too soon after a failure to call the database healthy
	}
	if p == h.problem && (p == "" || h.err != nil) {
		if p != "" {
			h.err = err
		}
		return
	}
	if h.problem == "" {
		h.since = now
	}
	h.problem, h.err = p, err
	if p == "" {
		h.since = time.Time{}
	}
	if h.changed != nil {
		close(h.changed)
	}
	h.changed = make(chan struct{})
}

// DefaultHealthHold is how long after the last failed write a success may clear a
// storage problem.
const DefaultHealthHold = 3 * time.Second

// SetHealthHold changes how long after the last failed write a success may clear a
// storage problem (tests that free a "full disk" at once set 0).
func (s *Store) SetHealthHold(d time.Duration) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	s.health.hold = d
}

// healthPlugin watches every statement's outcome.
type healthPlugin struct{ h *health }

// Name names the plugin.
func (healthPlugin) Name() string { return "grconnect:health" }

// Initialize registers the watching callbacks.
func (p healthPlugin) Initialize(db *gorm.DB) error {
	write := func(db *gorm.DB) {
		if db.Error != nil {
			if prob := classifyStorage(db.Error); prob != "" {
				p.h.note(prob, db.Error)
			}
			return
		}
		p.h.note("", nil)
	}
	read := func(db *gorm.DB) {
		if db.Error != nil {
			if prob := classifyStorage(db.Error); prob != "" {
				p.h.note(prob, db.Error)
			}
			return
		}
		// A read says the database is reachable, not that it takes writes.
		p.h.mu.Lock()
		unreachable := p.h.problem == ProblemUnreachable
		p.h.mu.Unlock()
		if unreachable {
			p.h.note("", nil)
		}
	}
	cb := db.Callback()
	return errors.Join(
		cb.Create().After("gorm:create").Register("grconnect:health", write),
		cb.Update().After("gorm:update").Register("grconnect:health", write),
		cb.Delete().After("gorm:delete").Register("grconnect:health", write),
		cb.Raw().After("gorm:raw").Register("grconnect:health", write),
		cb.Query().After("gorm:query").Register("grconnect:health", read),
		cb.Row().After("gorm:row").Register("grconnect:health", read),
	)
}

// noteRead records a failed read that bypassed GORM (the prepared hot-path
// reads), so that an unreachable database shows in Health at once, and returns
// err.
func (s *Store) noteRead(err error) error {
	if p := classifyStorage(err); p != "" {
		s.health.note(p, err)
	}
	return err
}

// Health returns what the store has seen of the database lately.
func (s *Store) Health() Health {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return Health{Problem: s.health.problem, Since: s.health.since, Err: s.health.err, LastFailure: s.health.failed}
}

// HealthChanged returns a channel closed at the next change of Health.
func (s *Store) HealthChanged() <-chan struct{} {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if s.health.changed == nil {
		s.health.changed = make(chan struct{})
	}
	return s.health.changed
}

// ProbeWrite makes the smallest write the database must accept (one row's
// timestamp); its outcome updates Health like any other write.
func (s *Store) ProbeWrite(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := s.db.WithContext(ctx).Exec("UPDATE store_probe SET probed_at = ? WHERE id = 1", Now()).Error
	return storeError(err, "write the storage probe")
}
