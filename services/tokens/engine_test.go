package tokens_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
	"github.com/grconnect/grconnect/services/tokens"
	"github.com/grconnect/grconnect/services/tokens/tokenstest"
)

// engine is the test's token engine (tokenstest.Engine), with this package's
// helpers as methods.
type engine struct{ *tokenstest.Engine }

func newEngine(t testing.TB, fo getresponsetest.Options) *engine {
	t.Helper()
	return &engine{tokenstest.New(t, fo)}
}

func discard() *slog.Logger { return tokenstest.Discard() }

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
			e.Fake.SetTokenLatency(latency)
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			go e.Tokens.RunNudges(ctx)
			c := e.Seed(models.StatusActive, e.Clock.Now().Add(tc.left), nil)
			oldAccess, _ := e.Box.Open(c.AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token"))
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
					g, err := e.Tokens.AccessToken(context.Background(), c.ID, "api")
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
				for deadline := time.Now().Add(10 * time.Second); e.Get(c.ID).AccessTokenEnc == c.AccessTokenEnc && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
				if e.Get(c.ID).AccessTokenEnc == c.AccessTokenEnc {
					t.Fatalf("the background refresh was not stored within 10 s (%d refresh calls)", e.Refreshes())
				}
				time.Sleep(100 * time.Millisecond) // room for a second, which must not come
			}
			if got := e.Refreshes(); got != 1 {
				t.Fatalf("%d concurrent requests made %d refresh calls, want exactly 1", n, got)
			}
			newAccess, err := e.Box.Open(e.Get(c.ID).AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token"))
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
	e.Fake.SetTokenLatency(100 * time.Millisecond)
	// A second process: its own pool on the same file, its own engine.
	other, err := models.Open(e.DBPath, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	engines := []*tokens.Tokens{e.Tokens, e.NewTokens(other)}
	for round := range 5 {
		c := e.Seed(models.StatusActive, e.Clock.Now().Add(time.Minute), nil)
		before := e.Refreshes()
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
		if got := e.Refreshes() - before; got != 1 {
			t.Fatalf("round %d: two engines made %d refresh calls, want 1", round, got)
		}
		for i, err := range results {
			if err != nil {
				t.Fatalf("round %d caller %d: %v", round, i, err)
			}
		}
		if got := e.Get(c.ID); got.Status != models.StatusActive || got.LeaseOwner != "" {
			t.Fatalf("round %d: status %s, lease %q", round, got.Status, got.LeaseOwner)
		}
	}
}

func TestRefresherPicksOnlyDueConnections(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	now := e.Clock.Now()
	past, future := now.Add(-time.Minute), now.Add(time.Hour)
	old := now.Add(-25 * time.Hour)
	due := map[string]bool{}
	add := func(name string, isDue bool, status models.Status, expires time.Time, mutate func(*models.Connection)) {
		c := e.Seed(status, expires, mutate)
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

	lim := &tokenstest.CountingLimiter{Budget: 1000}
	r := tokenstest.NewRefresher(e.Tokens, e.Store, lim, tokens.RefresherConfig{})
	n, err := r.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantDue := 0
	for id, isDue := range due {
		c := e.Get(id)
		refreshed := c.LastRefreshAt != nil && c.LastRefreshAt.After(now.Add(-time.Second)) && c.Status == models.StatusActive && c.ExpiresAt.After(now.Add(55*time.Minute))
		if isDue {
			wantDue++
		}
		if refreshed != isDue {
			t.Errorf("%s (%s): refreshed = %v, want %v", id, c.Status, refreshed, isDue)
		}
	}
	if n != wantDue || e.Refreshes() != wantDue {
		t.Fatalf("attempted %d, fake saw %d refreshes, want %d", n, e.Refreshes(), wantDue)
	}
	if lim.Waits.Load() != int64(wantDue) {
		t.Fatalf("limiter consulted %d times for %d refreshes", lim.Waits.Load(), wantDue)
	}
	// A second pass finds nothing left to do.
	if n, _ := r.RunOnce(context.Background()); n != 0 {
		t.Fatalf("second pass attempted %d", n)
	}
}

func TestRefresherRespectsTheRateLimit(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	for range 10 {
		e.Seed(models.StatusActive, e.Clock.Now().Add(time.Minute), nil)
	}
	lim := &tokenstest.CountingLimiter{Budget: 3}
	r := tokenstest.NewRefresher(e.Tokens, e.Store, lim, tokens.RefresherConfig{Concurrency: 4})
	n, _ := r.RunOnce(context.Background())
	if n != 3 || e.Refreshes() != 3 {
		t.Fatalf("with 3 tokens in the bucket: attempted %d, fake saw %d", n, e.Refreshes())
	}
	if lim.Waits.Load() != 10 {
		t.Fatalf("limiter consulted %d times, want once per due connection (10)", lim.Waits.Load())
	}
}

func TestBackoffNeverMoreThanOneAttemptPerWindow(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	c := e.Seed(models.StatusActive, e.Clock.Now().Add(time.Minute), nil)
	e.Fake.FailToken(getresponsetest.TokenServerError, -1)
	var attempts []time.Time
	e.Tokens.BeforeCommit = func(string) error { attempts = append(attempts, e.Clock.Now()); return nil }
	r := tokenstest.NewRefresher(e.Tokens, e.Store, &tokenstest.CountingLimiter{Budget: 1 << 30}, tokens.RefresherConfig{})
	start := e.Clock.Now()
	for e.Clock.Now().Sub(start) < time.Hour {
		if _, err := r.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(5 * time.Second)
	}
	// Windows of 30 s doubling (±20 %) to 1 h: attempts at about 0, 30, 90, 210, 450, 930, 1890 s.
	if got := e.Refreshes(); got < 5 || got > 8 {
		t.Fatalf("%d refresh calls in a simulated hour of failures, want 5–8", got)
	}
	for i := 1; i < len(attempts); i++ {
		gap := attempts[i].Sub(attempts[i-1])
		window := 30 * time.Second << (i - 1)
		if gap < window*8/10 {
			t.Fatalf("attempt %d came %v after the previous one, inside its %v window", i+1, gap, window)
		}
	}
	got := e.Get(c.ID)
	if got.Status != models.StatusRefreshFailing || got.FailureCount != e.Refreshes() {
		t.Fatalf("status %s, failures %d, calls %d", got.Status, got.FailureCount, e.Refreshes())
	}
	// An expired token is not served while a backoff window is open, and asking does
	// not call GetResponse. (Pin the window open: the simulated hour may end just as
	// the last window closes.)
	window := e.Clock.Now().Add(10 * time.Minute)
	e.Store.DB().Model(&models.Connection{}).Where("id = ?", c.ID).Update("next_attempt_at", window)
	before := e.Refreshes()
	if _, err := e.Tokens.AccessToken(context.Background(), c.ID, "api"); !errors.Is(err, tokens.ErrTransient) {
		t.Fatalf("expired token inside a backoff window: %v", err)
	}
	if e.Refreshes() != before {
		t.Fatal("an on-demand request ignored the backoff window")
	}
	// Recovery: the next attempt succeeds and says so.
	e.Fake.FailToken(getresponsetest.TokenOK, 0)
	e.Clock.Advance(2 * time.Hour)
	r.RunOnce(context.Background())
	got = e.Get(c.ID)
	var types []string
	e.Store.DB().Model(&models.Event{}).Where("connection_id = ?", c.ID).Order("id").Pluck("type", &types)
	if got.Status != models.StatusActive || got.FailureCount != 0 || types[len(types)-1] != "connection.recovered" {
		t.Fatalf("after recovery: %s, %d failures, events %v", got.Status, got.FailureCount, types)
	}
}

func TestStillValidTokenServedWhileRefreshFails(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	// About to expire (inside the 60 s floor), so the request waits for the refresh.
	c := e.Seed(models.StatusActive, e.Clock.Now().Add(45*time.Second), nil)
	old, _ := e.Box.Open(c.AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token"))
	e.Fake.FailToken(getresponsetest.TokenHang, 1)
	g, err := e.Tokens.AccessToken(context.Background(), c.ID, "api")
	if err != nil || g.Token != old || g.Refreshed {
		t.Fatalf("AccessToken during a hung refresh: err %v", err)
	}
	// The failure is recorded on the row even though the caller was served.
	if got := e.Get(c.ID); got.Status != models.StatusRefreshFailing {
		t.Fatalf("status after a hung refresh = %s", got.Status)
	}
	if got := e.Get(c.ID); got.Status != models.StatusRefreshFailing || got.NextAttemptAt == nil {
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
			c := e.Seed(models.StatusActive, e.Clock.Now().Add(2*time.Minute), nil)
			crash := errors.New("process killed")
			e.Tokens.BeforeCommit = func(string) error { return crash }
			if _, err := e.Tokens.Refresh(context.Background(), c.ID, "system"); !errors.Is(err, crash) {
				t.Fatalf("Refresh = %v", err)
			}
			after := e.Get(c.ID)
			if after.AccessTokenEnc != c.AccessTokenEnc || after.RefreshTokenEnc != c.RefreshTokenEnc || after.Status != models.StatusActive {
				t.Fatal("a refresh that died before its commit changed the stored tokens")
			}
			if after.LeaseOwner == "" {
				t.Fatal("the dead refresh's lease vanished")
			}
			// A restarted process: new engine, same database. Until the lease expires nobody retries.
			restarted := e.NewTokens(e.Store)
			r := tokenstest.NewRefresher(restarted, e.Store, &tokenstest.CountingLimiter{Budget: 100}, tokens.RefresherConfig{})
			if n, _ := r.RunOnce(context.Background()); n != 0 {
				t.Fatalf("retried %d while the lease was live", n)
			}
			e.Clock.Advance(2 * time.Minute)
			if n, _ := r.RunOnce(context.Background()); n != 1 {
				t.Fatalf("retried %d after the lease expired, want 1", n)
			}
			got := e.Get(c.ID)
			if got.Status != tc.want || got.LeaseOwner != "" {
				t.Fatalf("after retry: %s (lease %q), want %s", got.Status, got.LeaseOwner, tc.want)
			}
			// The timeline says what happened: a loss is explained, a save is noted.
			events, _, _ := e.Store.ConnectionEvents(context.Background(), c.ID, 0, 5)
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
			if _, err := e.Box.Open(got.AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token")); err != nil {
				t.Fatal("stored access token does not open")
			}
		})
	}
}

func TestGracefulShutdownMidBatch(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	e.Fake.SetTokenLatency(300 * time.Millisecond)
	var ids []string
	for range 12 {
		ids = append(ids, e.Seed(models.StatusActive, e.Clock.Now().Add(time.Minute), nil).ID)
	}
	e.Tokens.SetRefreshRate(80)
	r := tokens.NewRefresher(e.Tokens, e.Store, tokens.RefresherConfig{Concurrency: 3}, discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	deadline := time.After(10 * time.Second)
	for e.Fake.Count(getresponsetest.EndpointToken) == 0 {
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
		c := e.Get(id)
		if c.LeaseOwner != "" {
			t.Errorf("%s left with a lease after shutdown", id)
		}
		if c.ExpiresAt.After(e.Clock.Now().Add(30 * time.Minute)) {
			committed++
		}
	}
	if calls := e.Refreshes(); calls != committed || committed == 0 || committed == len(ids) {
		t.Fatalf("refresh calls %d, committed %d of %d: every sent refresh must commit, and shutdown must stop the batch", calls, committed, len(ids))
	}
}

func TestManualRefreshIgnoresBackoffButOnDemandDoesNot(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	future := e.Clock.Now().Add(time.Hour)
	c := e.Seed(models.StatusRefreshFailing, e.Clock.Now().Add(2*time.Minute), func(c *models.Connection) { c.NextAttemptAt = &future; c.FailureCount = 3 })
	if g, err := e.Tokens.AccessToken(context.Background(), c.ID, "api"); err != nil || g.Refreshed || e.Refreshes() != 0 {
		t.Fatalf("on-demand inside backoff: err=%v calls=%d", err, e.Refreshes())
	}
	if _, err := e.Tokens.Refresh(context.Background(), c.ID, "ann@example.com"); err != nil || e.Refreshes() != 1 {
		t.Fatalf("manual refresh: %v, calls %d", err, e.Refreshes())
	}
}

// TestUnsentRefreshReleasesItsLease: a refresh that fails before anything is sent
// (here a refresh token the key cannot open) gives its lease back at once, so the
// connection is not held for a minute nor later taken for a crash's victim.
func TestUnsentRefreshReleasesItsLease(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	c := e.Seed(models.StatusActive, e.Clock.Now().Add(30*time.Second), func(c *models.Connection) { c.RefreshTokenEnc = "v1.damaged" })
	if _, err := e.Tokens.Refresh(context.Background(), c.ID, "system"); err == nil {
		t.Fatal("a refresh with an unreadable refresh token succeeded")
	}
	if got := e.Get(c.ID); got.LeaseOwner != "" || got.LeaseUntil != nil || e.Refreshes() != 0 {
		t.Fatalf("after an unsent refresh: lease %q until %v, %d refresh calls", got.LeaseOwner, got.LeaseUntil, e.Refreshes())
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
		c := e.Seed(models.StatusActive, e.Clock.Now().Add(30*time.Second), nil)
		if _, err := e.Tokens.Refresh(context.Background(), c.ID, "system"); err != nil {
			t.Fatal(err)
		}
		var msg string
		e.Store.DB().Model(&models.Event{}).Where("connection_id = ? AND type = ?", c.ID, models.EventRefreshSucceeded).Pluck("message", &msg)
		if got := strings.Contains(msg, "new refresh token stored"); got != tc.want {
			t.Errorf("rotation %v: event %q; want mention of a new refresh token: %v", tc.rotation, msg, tc.want)
		}
	}
}

// TestExplicitRefreshSharesACallThatRanWhileItWasAsked: a refresh asked for before
// another's call ended shares that call's outcome though it reaches the engine
// after it (its request waited elsewhere); one asked for after it gets a call.
func TestExplicitRefreshSharesACallThatRanWhileItWasAsked(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	c := e.Seed(models.StatusActive, e.Clock.Now().Add(time.Hour), nil)
	ctx := context.Background()
	asked := time.Now()
	first, err := e.Tokens.Refresh(ctx, c.ID, "ann@example.com")
	if err != nil || e.Refreshes() != 1 {
		t.Fatalf("first refresh: %v, %d calls", err, e.Refreshes())
	}
	late, err := e.Tokens.Refresh(tokens.WithAskedAt(ctx, asked), c.ID, "bob@example.com")
	if err != nil || e.Refreshes() != 1 || !late.ExpiresAt.Equal(*first.ExpiresAt) {
		t.Fatalf("a refresh asked for while the call ran: %v, %d calls", err, e.Refreshes())
	}
	if _, err := e.Tokens.Refresh(tokens.WithAskedAt(ctx, time.Now()), c.ID, "bob@example.com"); err != nil || e.Refreshes() != 2 {
		t.Fatalf("a refresh asked for after the call: %v, %d calls, want 2", err, e.Refreshes())
	}
}
