package services_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// failWrites makes every plain-SQL write of the store fail as SQLite does on a full
// disk while on is set (reads and the lease, a RETURNING query, still work: the
// worst case, where a refresh is sent and its answer cannot be stored).
func failWrites(t *testing.T, store *models.Store) *atomic.Bool {
	t.Helper()
	var on atomic.Bool
	err := store.DB().Callback().Raw().Before("gorm:raw").Register("test:disk_full", func(db *gorm.DB) {
		if on.Load() {
			db.AddError(errors.New("database or disk is full (13)"))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return &on
}

// TestReceivedPairKeptUntilStored: under strict rotation a pair whose commit fails
// is kept and served, the connection is not refreshed again meanwhile, the
// refresher pauses, and the pair lands once the database takes writes again.
func TestReceivedPairKeptUntilStored(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
	full := failWrites(t, e.store)
	e.store.SetHealthHold(0) // the "disk" is freed at once below
	c := e.seed(models.StatusActive, e.clock.Now().Add(30*time.Second), nil)
	other := e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil)
	full.Store(true)

	g, err := e.tokens.AccessToken(context.Background(), c.ID, "api")
	if err != nil {
		t.Fatalf("AccessToken while the disk is full: %v", err)
	}
	if e.refreshes() != 1 || e.tokens.PendingPairs() != 1 {
		t.Fatalf("%d refreshes, %d pending; want 1 and 1", e.refreshes(), e.tokens.PendingPairs())
	}
	if stored := e.get(c.ID); stored.AccessTokenEnc != c.AccessTokenEnc {
		t.Fatal("the pair was stored despite the full disk")
	}
	if h := e.store.Health(); h.Problem != models.ProblemDiskFull {
		t.Fatalf("health = %+v, want disk_full", h)
	}
	// The pending token is the one handed out, and no second refresh is made.
	again, err := e.tokens.AccessToken(context.Background(), c.ID, "api")
	if err != nil || again.Token != g.Token {
		t.Fatalf("second AccessToken = %v", err)
	}
	// An explicit refresh is refused (429 refresh_too_soon), not answered with the
	// pending pair as if it had asked GetResponse.
	var tooSoon *services.TooSoonError
	if _, err := e.tokens.Refresh(context.Background(), c.ID, "ann@example.com"); !errors.As(err, &tooSoon) || e.refreshes() != 1 {
		t.Fatalf("a refresh while a pair is pending: %v, %d calls", err, e.refreshes())
	}
	// The refresher pauses instead of sending refreshes it could not store.
	r := newRefresher(e.tokens, e.store, &countingLimiter{allow: 100}, services.RefresherConfig{})
	if n, _ := r.RunOnce(context.Background()); n != 0 || e.refreshes() != 1 {
		t.Fatalf("the refresher sent %d refreshes while the disk was full", n)
	}

	full.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lost := e.tokens.Drain(ctx); len(lost) != 0 {
		t.Fatalf("pairs not stored after the disk freed: %v", lost)
	}
	stored := e.get(c.ID)
	access, err := e.box.Open(stored.AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token"))
	if err != nil || access != g.Token || stored.TokenVersion != 1 || e.tokens.PendingPairs() != 0 {
		t.Fatalf("after the disk freed: stored the served token %v, version %d, %d pending", access == g.Token, stored.TokenVersion, e.tokens.PendingPairs())
	}
	// The stored refresh token is the live one (strict rotation killed the old one).
	if _, err := e.tokens.Refresh(context.Background(), c.ID, "ann@example.com"); err != nil {
		t.Fatalf("refresh with the stored pair: %v", err)
	}
	if n := e.fake.Stat(getresponsetest.StatDeadRefreshToken); n != 0 {
		t.Fatalf("%d refreshes presented a dead refresh token", n)
	}
	// With the database healthy again, the refresher resumes.
	if n, _ := r.RunOnce(context.Background()); n != 1 || e.get(other.ID).TokenVersion != 1 {
		t.Fatalf("the refresher after recovery refreshed %d", n)
	}
}
