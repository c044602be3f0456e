package services_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// engine is a token engine on a fresh database, against a fake GetResponse.
type engine struct {
	t      testing.TB
	store  *models.Store
	box    *secrets.Box
	fake   *getresponsetest.Server
	apps   *services.Apps
	tokens *services.Tokens
	app    *models.App
	clock  *modelstest.Clock
	dbPath string
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var testKey = func() []byte {
	k := make([]byte, secrets.KeySize)
	rand.Read(k)
	return k
}()

func newEngine(t testing.TB, fo getresponsetest.Options) *engine {
	t.Helper()
	dbPath := modelstest.Database(t, t.TempDir())
	store := modelstest.NewAt(t, dbPath)
	clock := modelstest.NewClock(time.Now().UTC().Truncate(time.Microsecond))
	if fo.Now == nil {
		fo.Now = clock.Now
	}
	fake := getresponsetest.NewServer(fo)
	t.Cleanup(fake.Close)
	box, _ := secrets.New(testKey)
	apps := services.NewApps(store, box, services.AppDefaults{AuthURL: fake.AuthURL(), APIURL: fake.APIURL()})
	app, err := apps.Create(context.Background(), services.AppInput{Name: "Acme", ClientID: "acme", ClientSecret: "acme-secret"})
	if err != nil {
		t.Fatal(err)
	}
	fake.AddClient("acme", "acme-secret", "http://grconnect.test/oauth/callback")
	e := &engine{t: t, store: store, box: box, fake: fake, apps: apps, app: app, clock: clock, dbPath: dbPath}
	e.tokens = e.newTokens(store)
	return e
}

// newTokens builds another engine instance (another "process") on store.
func (e *engine) newTokens(store *models.Store) *services.Tokens {
	return e.newTokensVia(store, nil)
}

// newTokensVia is newTokens whose calls to GetResponse go through wrap (nil: as
// they are).
func (e *engine) newTokensVia(store *models.Store, wrap func(http.RoundTripper) http.RoundTripper) *services.Tokens {
	// As serve configures it: enough idle connections per host for the workers.
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 32
	var transport http.RoundTripper = base
	if wrap != nil {
		transport = wrap(base)
	}
	gr := getresponse.New(&http.Client{Transport: transport, Timeout: 10 * time.Second})
	gr.TokenTimeout = 2 * time.Second
	tk := services.NewTokens(store, e.box, e.apps, gr, services.DuePolicy{Margin: 10 * time.Minute, Keepalive: 24 * time.Hour}, "http://grconnect.test/oauth/callback", discard())
	tk.Now = e.clock.Now
	return tk
}

// seed inserts a connection holding real tokens from the fake, expiring at expires.
func (e *engine) seed(status models.Status, expires time.Time, mutate func(*models.Connection)) *models.Connection {
	e.t.Helper()
	id := models.NewID("con")
	accountID := e.fake.AddAccount(getresponsetest.Account{AccountID: "A" + id[4:], Email: id + "@example.com"})
	access, refresh, err := e.fake.IssueTokens("acme", accountID)
	if err != nil {
		e.t.Fatal(err)
	}
	now := e.clock.Now()
	// Refreshed a while ago, as a token about to expire would have been.
	last := now.Add(-50 * time.Minute)
	c := &models.Connection{ID: id, AppID: e.app.ID, AccountID: accountID, Status: status, ConnectedAt: now, LastRefreshAt: &last, ExpiresAt: &expires}
	c.AccessTokenEnc, _ = e.box.Seal(access, secrets.AAD("connection", id, "access_token"))
	c.RefreshTokenEnc, _ = e.box.Seal(refresh, secrets.AAD("connection", id, "refresh_token"))
	if mutate != nil {
		mutate(c)
	}
	if err := e.store.DB().Create(c).Error; err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *engine) get(id string) *models.Connection {
	e.t.Helper()
	c, err := e.store.ConnectionByID(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *engine) refreshes() int { return e.fake.Count(getresponsetest.EndpointTokenRefresh) }

func TestThousandConcurrentTokenRequestsRefreshOnce(t *testing.T) {
	// A token about to expire (inside the 60 s floor): every caller waits for the one
	// refresh and gets the new token. A token still valid for minutes: nobody waits —
	// every caller gets the current token at once — and one background refresh
	// follows.
	for _, tc := range []struct {
		name     string
		left     time.Duration
		mustWait bool
	}{{"about to expire", 30 * time.Second, true}, {"valid for minutes", 2 * time.Minute, false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
			// Keep the refresh in flight while requests pile up. When nobody should wait,
			// far longer than the callers take: a caller that got the new token waited.
			latency := 50 * time.Millisecond
			if !tc.mustWait {
				latency = time.Second // under the test client's 2 s TokenTimeout
			}
			e.fake.SetTokenLatency(latency)
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			go e.tokens.RunNudges(ctx)
			c := e.seed(models.StatusActive, e.clock.Now().Add(tc.left), nil)
			oldAccess, _ := e.box.Open(c.AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token"))
			const n = 1000
			tokens := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					g, err := e.tokens.AccessToken(context.Background(), c.ID, "api")
					if g != nil {
						tokens[i] = g.Token
					}
					errs[i] = err
				}()
			}
			close(start)
			wg.Wait()
			if !tc.mustWait {
				// The background refresh the requests asked for, stored.
				for deadline := time.Now().Add(10 * time.Second); e.get(c.ID).AccessTokenEnc == c.AccessTokenEnc && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
				if e.get(c.ID).AccessTokenEnc == c.AccessTokenEnc {
					t.Fatalf("the background refresh was not stored within 10 s (%d refresh calls)", e.refreshes())
				}
				time.Sleep(100 * time.Millisecond) // room for a second, which must not come
			}
			if got := e.refreshes(); got != 1 {
				t.Fatalf("%d concurrent requests made %d refresh calls, want exactly 1", n, got)
			}
			newAccess, err := e.box.Open(e.get(c.ID).AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token"))
			if err != nil {
				t.Fatal(err)
			}
			served := map[string]int{}
			for i := range n {
				if errs[i] != nil || (tokens[i] != newAccess && (tc.mustWait || tokens[i] != oldAccess)) {
					t.Fatalf("request %d got %q, %v; want the new token", i, tokens[i][:min(6, len(tokens[i]))], errs[i])
				}
				served[tokens[i]]++
			}
			if !tc.mustWait && served[oldAccess] != n {
				t.Fatalf("%d of %d callers waited for the refresh of a token valid for minutes", n-served[oldAccess], n)
			}
		})
	}
}

func TestTwoEnginesOnOneDatabaseRefreshOnce(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
	e.fake.SetTokenLatency(100 * time.Millisecond)
	// A second process: its own pool on the same file, its own engine.
	other, err := models.Open(e.dbPath, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	engines := []*services.Tokens{e.tokens, e.newTokens(other)}
	for round := range 5 {
		c := e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil)
		before := e.refreshes()
		var wg sync.WaitGroup
		results := make([]error, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, results[i] = engines[i%2].AccessToken(context.Background(), c.ID, "api")
			}()
		}
		wg.Wait()
		if got := e.refreshes() - before; got != 1 {
			t.Fatalf("round %d: two engines made %d refresh calls, want 1", round, got)
		}
		for i, err := range results {
			if err != nil {
				t.Fatalf("round %d caller %d: %v", round, i, err)
			}
		}
		if got := e.get(c.ID); got.Status != models.StatusActive || got.LeaseOwner != "" {
			t.Fatalf("round %d: status %s, lease %q", round, got.Status, got.LeaseOwner)
		}
	}
}

// countingLimiter lets allow calls through, then refuses; it counts every Wait.
// newRefresher is a refresher whose gate admits what lim allows (and no cap per
// second).
func newRefresher(tokens *services.Tokens, store *models.Store, lim services.Limiter, cfg services.RefresherConfig) *services.Refresher {
	tokens.SetRefreshLimiter(lim)
	return services.NewRefresher(tokens, store, cfg, discard())
}

type countingLimiter struct {
	waits atomic.Int64
	allow int64
}

func (l *countingLimiter) Wait(ctx context.Context) error {
	if l.waits.Add(1) > l.allow {
		return errors.New("rate limit: no tokens left")
	}
	return nil
}

// Allow takes a token if one is left, as rate.Limiter's Allow does; a refusal
// takes nothing.
func (l *countingLimiter) Allow() bool {
	for {
		n := l.waits.Load()
		if n >= l.allow {
			return false
		}
		if l.waits.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func TestRefresherPicksOnlyDueConnections(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	now := e.clock.Now()
	past, future := now.Add(-time.Minute), now.Add(time.Hour)
	old := now.Add(-25 * time.Hour)
	due := map[string]bool{}
	add := func(name string, isDue bool, status models.Status, expires time.Time, mutate func(*models.Connection)) {
		c := e.seed(status, expires, mutate)
		due[c.ID] = isDue
		_ = name
	}
	add("expiring inside the margin", true, models.StatusActive, now.Add(5*time.Minute), nil)
	add("already expired", true, models.StatusActive, now.Add(-time.Minute), nil)
	add("fresh", false, models.StatusActive, now.Add(50*time.Minute), nil)
	add("keep-alive", true, models.StatusActive, now.Add(50*time.Minute), func(c *models.Connection) { c.LastRefreshAt = &old })
	add("needs reconnect", false, models.StatusNeedsReconnect, now.Add(time.Minute), nil)
	add("disconnected", false, models.StatusDisconnected, now.Add(time.Minute), nil)
	add("failing, window open", true, models.StatusRefreshFailing, now.Add(time.Minute), func(c *models.Connection) { c.NextAttemptAt = &past })
	add("failing, inside backoff", false, models.StatusRefreshFailing, now.Add(time.Minute), func(c *models.Connection) { c.NextAttemptAt = &future })
	add("leased by another worker", false, models.StatusActive, now.Add(time.Minute), func(c *models.Connection) { c.LeaseOwner, c.LeaseUntil = "other", &future })

	lim := &countingLimiter{allow: 1000}
	r := newRefresher(e.tokens, e.store, lim, services.RefresherConfig{})
	n, err := r.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantDue := 0
	for id, isDue := range due {
		c := e.get(id)
		refreshed := c.LastRefreshAt != nil && c.LastRefreshAt.After(now.Add(-time.Second)) && c.Status == models.StatusActive && c.ExpiresAt.After(now.Add(55*time.Minute))
		if isDue {
			wantDue++
		}
		if refreshed != isDue {
			t.Errorf("%s (%s): refreshed = %v, want %v", id, c.Status, refreshed, isDue)
		}
	}
	if n != wantDue || e.refreshes() != wantDue {
		t.Fatalf("attempted %d, fake saw %d refreshes, want %d", n, e.refreshes(), wantDue)
	}
	if lim.waits.Load() != int64(wantDue) {
		t.Fatalf("limiter consulted %d times for %d refreshes", lim.waits.Load(), wantDue)
	}
	// A second pass finds nothing left to do.
	if n, _ := r.RunOnce(context.Background()); n != 0 {
		t.Fatalf("second pass attempted %d", n)
	}
}

func TestRefresherRespectsTheRateLimit(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	for range 10 {
		e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil)
	}
	lim := &countingLimiter{allow: 3}
	r := newRefresher(e.tokens, e.store, lim, services.RefresherConfig{Concurrency: 4})
	n, _ := r.RunOnce(context.Background())
	if n != 3 || e.refreshes() != 3 {
		t.Fatalf("with 3 tokens in the bucket: attempted %d, fake saw %d", n, e.refreshes())
	}
	if lim.waits.Load() != 10 {
		t.Fatalf("limiter consulted %d times, want once per due connection (10)", lim.waits.Load())
	}
}

func TestBackoffNeverMoreThanOneAttemptPerWindow(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	c := e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil)
	e.fake.FailToken(getresponsetest.TokenServerError, -1)
	var attempts []time.Time
	e.tokens.BeforeCommit = func(string) error { attempts = append(attempts, e.clock.Now()); return nil }
	r := newRefresher(e.tokens, e.store, &countingLimiter{allow: 1 << 30}, services.RefresherConfig{})
	start := e.clock.Now()
	for e.clock.Now().Sub(start) < time.Hour {
		if _, err := r.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(5 * time.Second)
	}
	// Windows of 30 s doubling (±20 %) to 1 h: attempts at about 0, 30, 90, 210, 450, 930, 1890 s.
	if got := e.refreshes(); got < 5 || got > 8 {
		t.Fatalf("%d refresh calls in a simulated hour of failures, want 5–8", got)
	}
	for i := 1; i < len(attempts); i++ {
		gap := attempts[i].Sub(attempts[i-1])
		window := 30 * time.Second << (i - 1)
		if gap < window*8/10 {
			t.Fatalf("attempt %d came %v after the previous one, inside its %v window", i+1, gap, window)
		}
	}
	got := e.get(c.ID)
	if got.Status != models.StatusRefreshFailing || got.FailureCount != e.refreshes() {
		t.Fatalf("status %s, failures %d, calls %d", got.Status, got.FailureCount, e.refreshes())
	}
	// An expired token is not served while a backoff window is open, and asking does
	// not call GetResponse. (Pin the window open: the simulated hour may end just as
	// the last window closes.)
	window := e.clock.Now().Add(10 * time.Minute)
	e.store.DB().Model(&models.Connection{}).Where("id = ?", c.ID).Update("next_attempt_at", window)
	before := e.refreshes()
	if _, err := e.tokens.AccessToken(context.Background(), c.ID, "api"); !errors.Is(err, services.ErrTransient) {
		t.Fatalf("expired token inside a backoff window: %v", err)
	}
	if e.refreshes() != before {
		t.Fatal("an on-demand request ignored the backoff window")
	}
	// Recovery: the next attempt succeeds and says so.
	e.fake.FailToken(getresponsetest.TokenOK, 0)
	e.clock.Advance(2 * time.Hour)
	r.RunOnce(context.Background())
	got = e.get(c.ID)
	var types []string
	e.store.DB().Model(&models.Event{}).Where("connection_id = ?", c.ID).Order("id").Pluck("type", &types)
	if got.Status != models.StatusActive || got.FailureCount != 0 || types[len(types)-1] != "connection.recovered" {
		t.Fatalf("after recovery: %s, %d failures, events %v", got.Status, got.FailureCount, types)
	}
}

func TestStillValidTokenServedWhileRefreshFails(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	// About to expire (inside the 60 s floor), so the request waits for the refresh.
	c := e.seed(models.StatusActive, e.clock.Now().Add(45*time.Second), nil)
	old, _ := e.box.Open(c.AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token"))
	e.fake.FailToken(getresponsetest.TokenHang, 1)
	g, err := e.tokens.AccessToken(context.Background(), c.ID, "api")
	if err != nil || g.Token != old || g.Refreshed {
		t.Fatalf("AccessToken during a hung refresh: err %v", err)
	}
	// The failure is recorded on the row even though the caller was served.
	if got := e.get(c.ID); got.Status != models.StatusRefreshFailing {
		t.Fatalf("status after a hung refresh = %s", got.Status)
	}
	if got := e.get(c.ID); got.Status != models.StatusRefreshFailing || got.NextAttemptAt == nil {
		t.Fatalf("hung token call not recorded as transient: %s", got.Status)
	}
}

func TestKillBetweenTokenCallAndCommit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rotation getresponsetest.Rotation
		want     models.Status
	}{
		{"refresh token kept by GetResponse", getresponsetest.RotationNone, models.StatusActive},
		{"rotation, old one still valid", getresponsetest.RotationRotate, models.StatusActive},
		// A provider grace period keeps the old token alive a while: nothing is lost.
		{"strict rotation with a grace period", getresponsetest.RotationGrace, models.StatusActive},
		// GetResponse killed the old token the moment it issued the new one, which the
		// dead process never stored: only a reconnect can help, and that is what it says.
		{"strict rotation", getresponsetest.RotationStrict, models.StatusNeedsReconnect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, getresponsetest.Options{Rotation: tc.rotation, RotationGrace: 10 * time.Minute})
			c := e.seed(models.StatusActive, e.clock.Now().Add(2*time.Minute), nil)
			crash := errors.New("process killed")
			e.tokens.BeforeCommit = func(string) error { return crash }
			if _, err := e.tokens.Refresh(context.Background(), c.ID, "system"); !errors.Is(err, crash) {
				t.Fatalf("Refresh = %v", err)
			}
			after := e.get(c.ID)
			if after.AccessTokenEnc != c.AccessTokenEnc || after.RefreshTokenEnc != c.RefreshTokenEnc || after.Status != models.StatusActive {
				t.Fatal("a refresh that died before its commit changed the stored tokens")
			}
			if after.LeaseOwner == "" {
				t.Fatal("the dead refresh's lease vanished")
			}
			// A restarted process: new engine, same database. Until the lease expires nobody retries.
			restarted := e.newTokens(e.store)
			r := newRefresher(restarted, e.store, &countingLimiter{allow: 100}, services.RefresherConfig{})
			if n, _ := r.RunOnce(context.Background()); n != 0 {
				t.Fatalf("retried %d while the lease was live", n)
			}
			e.clock.Advance(2 * time.Minute)
			if n, _ := r.RunOnce(context.Background()); n != 1 {
				t.Fatalf("retried %d after the lease expired, want 1", n)
			}
			got := e.get(c.ID)
			if got.Status != tc.want || got.LeaseOwner != "" {
				t.Fatalf("after retry: %s (lease %q), want %s", got.Status, got.LeaseOwner, tc.want)
			}
			// The timeline says what happened: a loss is explained, a save is noted.
			events, _, _ := e.store.ConnectionEvents(context.Background(), c.ID, 0, 5)
			if len(events) == 0 {
				t.Fatal("no event for the retried refresh")
			}
			last := events[0].Message
			if tc.want == models.StatusNeedsReconnect {
				if !strings.Contains(got.LastError, "lost in a crash during refresh") || !strings.Contains(last, "lost in a crash during refresh") {
					t.Fatalf("the loss is not explained: last error %q, event %q", got.LastError, last)
				}
			} else if !strings.Contains(last, "cut off before its answer was stored") || got.InterruptedBy != "" {
				t.Fatalf("the retry after a crash: event %q, interrupted_by %q", last, got.InterruptedBy)
			}
			if _, err := e.box.Open(got.AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token")); err != nil {
				t.Fatal("stored access token does not open")
			}
		})
	}
}

func TestGracefulShutdownMidBatch(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	e.fake.SetTokenLatency(300 * time.Millisecond)
	var ids []string
	for range 12 {
		ids = append(ids, e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil).ID)
	}
	e.tokens.SetRefreshRate(80)
	r := services.NewRefresher(e.tokens, e.store, services.RefresherConfig{Concurrency: 3}, discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	deadline := time.After(10 * time.Second)
	for e.fake.Count(getresponsetest.EndpointToken) == 0 {
		select {
		case <-deadline:
			t.Fatal("no refresh started")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	committed := 0
	for _, id := range ids {
		c := e.get(id)
		if c.LeaseOwner != "" {
			t.Errorf("%s left with a lease after shutdown", id)
		}
		if c.ExpiresAt.After(e.clock.Now().Add(30 * time.Minute)) {
			committed++
		}
	}
	if calls := e.refreshes(); calls != committed || committed == 0 || committed == len(ids) {
		t.Fatalf("refresh calls %d, committed %d of %d: every sent refresh must commit, and shutdown must stop the batch", calls, committed, len(ids))
	}
}

func TestManualRefreshIgnoresBackoffButOnDemandDoesNot(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	future := e.clock.Now().Add(time.Hour)
	c := e.seed(models.StatusRefreshFailing, e.clock.Now().Add(2*time.Minute), func(c *models.Connection) { c.NextAttemptAt = &future; c.FailureCount = 3 })
	if g, err := e.tokens.AccessToken(context.Background(), c.ID, "api"); err != nil || g.Refreshed || e.refreshes() != 0 {
		t.Fatalf("on-demand inside backoff: err=%v calls=%d", err, e.refreshes())
	}
	if _, err := e.tokens.Refresh(context.Background(), c.ID, "ann@example.com"); err != nil || e.refreshes() != 1 {
		t.Fatalf("manual refresh: %v, calls %d", err, e.refreshes())
	}
}

// TestUnsentRefreshReleasesItsLease: a refresh that fails before anything is sent
// (here a refresh token the key cannot open) gives its lease back at once, so the
// connection is not held for a minute nor later taken for a crash's victim.
func TestUnsentRefreshReleasesItsLease(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	c := e.seed(models.StatusActive, e.clock.Now().Add(30*time.Second), func(c *models.Connection) { c.RefreshTokenEnc = "v1.damaged" })
	if _, err := e.tokens.Refresh(context.Background(), c.ID, "system"); err == nil {
		t.Fatal("a refresh with an unreadable refresh token succeeded")
	}
	if got := e.get(c.ID); got.LeaseOwner != "" || got.LeaseUntil != nil || e.refreshes() != 0 {
		t.Fatalf("after an unsent refresh: lease %q until %v, %d refresh calls", got.LeaseOwner, got.LeaseUntil, e.refreshes())
	}
}

// TestRefreshEventSaysWhetherTheRefreshTokenChanged: the timeline says "new
// refresh token stored" only when GetResponse sent a new one.
func TestRefreshEventSaysWhetherTheRefreshTokenChanged(t *testing.T) {
	for _, tc := range []struct {
		rotation getresponsetest.Rotation
		want     bool
	}{{getresponsetest.RotationNone, false}, {getresponsetest.RotationOmit, false}, {getresponsetest.RotationStrict, true}} {
		e := newEngine(t, getresponsetest.Options{Rotation: tc.rotation})
		c := e.seed(models.StatusActive, e.clock.Now().Add(30*time.Second), nil)
		if _, err := e.tokens.Refresh(context.Background(), c.ID, "system"); err != nil {
			t.Fatal(err)
		}
		var msg string
		e.store.DB().Model(&models.Event{}).Where("connection_id = ? AND type = ?", c.ID, models.EventRefreshSucceeded).Pluck("message", &msg)
		if got := strings.Contains(msg, "new refresh token stored"); got != tc.want {
			t.Errorf("rotation %v: event %q; want mention of a new refresh token: %v", tc.rotation, msg, tc.want)
		}
	}
}
