// Package tokenstest gives tests a token engine on a fresh database against the
// fake GetResponse (getresponsetest), with one registered app, a clock the test
// moves, and connections seeded with real tokens from the fake.
package tokenstest

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
	"github.com/grconnect/grconnect/services/tokens"
)

// RedirectURL is the redirect URL the app is registered with at the fake.
const RedirectURL = "http://grconnect.test/oauth/callback"

// Engine is a token engine on a fresh database, against a fake GetResponse.
type Engine struct {
	T      testing.TB
	Store  *models.Store
	Box    *secrets.Box
	Fake   *getresponsetest.Server
	Apps   *services.Apps
	Tokens *tokens.Tokens
	App    *models.App // "Acme", client acme / acme-secret
	Clock  *modelstest.Clock
	DBPath string
}

// Discard is a logger that writes nowhere.
func Discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Key is the process's encryption key for tests.
var Key = func() []byte {
	k := make([]byte, secrets.KeySize)
	rand.Read(k)
	return k
}()

// New returns an engine on a fresh database (the test's database: SQLite, or
// PostgreSQL when GRCONNECT_TEST_DATABASE says so) and a fake started with fo.
func New(t testing.TB, fo getresponsetest.Options) *Engine {
	t.Helper()
	dbPath := modelstest.Database(t, t.TempDir())
	store := modelstest.NewAt(t, dbPath)
	clock := modelstest.NewClock(time.Now().UTC().Truncate(time.Microsecond))
	if fo.Now == nil {
		fo.Now = clock.Now
	}
	fake := getresponsetest.NewServer(fo)
	t.Cleanup(fake.Close)
	box, _ := secrets.New(Key)
	apps := services.NewApps(store, box, services.AppDefaults{AuthURL: fake.AuthURL(), APIURL: fake.APIURL()})
	app, err := apps.Create(context.Background(), services.AppInput{Name: "Acme", ClientID: "acme", ClientSecret: "acme-secret"})
	if err != nil {
		t.Fatal(err)
	}
	fake.AddClient("acme", "acme-secret", RedirectURL)
	e := &Engine{T: t, Store: store, Box: box, Fake: fake, Apps: apps, App: app, Clock: clock, DBPath: dbPath}
	e.Tokens = e.NewTokens(store)
	return e
}

// NewTokens builds another engine instance (another "process") on store.
func (e *Engine) NewTokens(store *models.Store) *tokens.Tokens {
	return e.NewTokensVia(store, nil)
}

// NewTokensVia is NewTokens whose calls to GetResponse go through wrap (nil: as
// they are).
func (e *Engine) NewTokensVia(store *models.Store, wrap func(http.RoundTripper) http.RoundTripper) *tokens.Tokens {
	// As serve configures it: enough idle connections per host for the workers.
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 32
	var transport http.RoundTripper = base
	if wrap != nil {
		transport = wrap(base)
	}
	gr := getresponse.New(&http.Client{Transport: transport, Timeout: 10 * time.Second})
	gr.TokenTimeout = 2 * time.Second
	tk := tokens.NewTokens(store, e.Box, gr, tokens.DuePolicy{Margin: 10 * time.Minute, Keepalive: 24 * time.Hour}, RedirectURL, Discard())
	tk.Now = e.Clock.Now
	return tk
}

// Seed inserts a connection holding real tokens from the fake, expiring at expires.
func (e *Engine) Seed(status models.Status, expires time.Time, mutate func(*models.Connection)) *models.Connection {
	e.T.Helper()
	id := models.NewID("con")
	accountID := e.Fake.AddAccount(getresponsetest.Account{AccountID: "A" + id[4:], Email: id + "@example.com"})
	access, refresh, err := e.Fake.IssueTokens("acme", accountID)
	if err != nil {
		e.T.Fatal(err)
	}
	now := e.Clock.Now()
	// Refreshed a while ago, as a token about to expire would have been.
	last := now.Add(-50 * time.Minute)
	c := &models.Connection{ID: id, AppID: e.App.ID, AccountID: accountID, Status: status, ConnectedAt: now, LastRefreshAt: &last, ExpiresAt: &expires}
	c.AccessTokenEnc, _ = e.Box.Seal(access, secrets.AAD("connection", id, "access_token"))
	c.RefreshTokenEnc, _ = e.Box.Seal(refresh, secrets.AAD("connection", id, "refresh_token"))
	if mutate != nil {
		mutate(c)
	}
	if err := e.Store.DB().Create(c).Error; err != nil {
		e.T.Fatal(err)
	}
	return c
}

// Get reads connection id as stored.
func (e *Engine) Get(id string) *models.Connection {
	e.T.Helper()
	c, err := e.Store.ConnectionByID(context.Background(), id)
	if err != nil {
		e.T.Fatal(err)
	}
	return c
}

// Refreshes counts the refresh-token calls the fake has answered.
func (e *Engine) Refreshes() int { return e.Fake.Count(getresponsetest.EndpointTokenRefresh) }

// NewRefresher is a refresher of tk whose gate admits what lim allows (and no cap
// per second).
func NewRefresher(tk *tokens.Tokens, store *models.Store, lim tokens.Limiter, cfg tokens.RefresherConfig) *tokens.Refresher {
	tk.SetRefreshLimiter(lim)
	return tokens.NewRefresher(tk, store, cfg, Discard())
}

// CountingLimiter lets Budget calls through, then refuses; it counts every Wait.
type CountingLimiter struct {
	Waits  atomic.Int64
	Budget int64
}

// Wait takes a token, or fails once the budget is spent.
func (l *CountingLimiter) Wait(ctx context.Context) error {
	if l.Waits.Add(1) > l.Budget {
		return errors.New("rate limit: no tokens left")
	}
	return nil
}

// Allow takes a token if one is left, as rate.Limiter's Allow does; a refusal
// takes nothing.
func (l *CountingLimiter) Allow() bool {
	for {
		n := l.Waits.Load()
		if n >= l.Budget {
			return false
		}
		if l.Waits.CompareAndSwap(n, n+1) {
			return true
		}
	}
}
