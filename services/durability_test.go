package services_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// Issue 28: held pairs keep their lease across processes, a pair lands with its
// state recomputed, automatic refreshes pass one gate, tokens are served from held
// rows while PostgreSQL is unreachable, and gone replicas' leases end.

// openAccess opens a connection's stored access token.
func (e *engine) openAccess(c *models.Connection) string {
	e.t.Helper()
	access, err := e.box.Open(c.AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token"))
	if err != nil {
		e.t.Fatal(err)
	}
	return access
}

// otherProcess is a second process on the engine's database: its own store (so
// nothing the first process's store saw of the database is shared) and engine.
func (e *engine) otherProcess() (*models.Store, *services.Tokens) {
	e.t.Helper()
	store := modelstest.NewAt(e.t, e.dbPath)
	return store, e.newTokens(store)
}

func (e *engine) eventTypes(id string) []models.EventType {
	e.t.Helper()
	evs, _, err := e.store.ConnectionEvents(context.Background(), id, 0, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []models.EventType
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

// holdPair makes process e.tokens receive a new pair for a connection about to
// expire while the database refuses writes: it is kept in memory, under the
// connection's lease. It returns the connection and the pair's access token.
func (e *engine) holdPair(full *atomic.Bool) (*models.Connection, string) {
	e.t.Helper()
	c := e.seed(models.StatusActive, e.clock.Now().Add(30*time.Second), nil)
	full.Store(true)
	g, err := e.tokens.AccessToken(context.Background(), c.ID, "api")
	if err != nil {
		e.t.Fatalf("AccessToken while writes fail: %v", err)
	}
	if e.tokens.PendingPairs() != 1 || e.refreshes() != 1 {
		e.t.Fatalf("%d pairs held after %d refreshes; want 1 and 1", e.tokens.PendingPairs(), e.refreshes())
	}
	return c, g.Token
}

// TestStartingReplicaLeavesAHeldPairAlone: process A holds a received pair while
// the database is down longer than the lease; process B starts as it comes back.
// B takes over no lease that merely ended until it has settled, so it never
// refreshes with the refresh token A's pair replaced; A's pair lands, and the
// connection is active with A's tokens (no needs_reconnect, no dead-token call).
func TestStartingReplicaLeavesAHeldPairAlone(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
	full := failWrites(t, e.store)
	e.store.SetHealthHold(0)
	c, held := e.holdPair(full)

	e.clock.Advance(75 * time.Second) // the outage outlasts the 60 s lease
	full.Store(false)
	storeB, b := e.otherProcess()
	b.JustStartedForTest()
	if b.SettledForTest() {
		t.Fatal("a process that just started counts as settled")
	}
	r := newRefresher(b, storeB, &countingLimiter{allow: 100}, services.RefresherConfig{})
	if n, err := r.RunOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("B's refresher refreshed %d connections (%v) while A held a pair under an ended lease", n, err)
	}
	if e.refreshes() != 1 {
		t.Fatalf("%d refresh calls; B must not have sent one", e.refreshes())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lost := e.tokens.Drain(ctx); len(lost) != 0 {
		t.Fatalf("A's pair was not stored: %v", lost)
	}
	stored := e.get(c.ID)
	if stored.Status != models.StatusActive || e.openAccess(stored) != held || stored.LeaseOwner != "" {
		t.Fatalf("after A's pair landed: %s, A's token stored %v, lease %q", stored.Status, e.openAccess(stored) == held, stored.LeaseOwner)
	}
	// B refreshes with the pair A stored: GetResponse takes it.
	if _, err := b.Refresh(context.Background(), c.ID, "ann@example.com"); err != nil {
		t.Fatalf("B's refresh after A's pair landed: %v", err)
	}
	if n := e.fake.Stat(getresponsetest.StatDeadRefreshToken); n != 0 || e.get(c.ID).Status != models.StatusActive {
		t.Fatalf("%d refreshes presented a dead token; status %s", n, e.get(c.ID).Status)
	}
}

// TestHeldPairRenewsItsLease: while the pair's own write keeps failing and the
// database takes small writes, the holder renews the lease before it ends, so a
// settled process does not take the connection over; the pair lands later.
func TestHeldPairRenewsItsLease(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
	e.tokens.SetLease(9 * time.Second)
	var refuse atomic.Bool
	// Only the pair's UPDATE fails (a database refusing the row's growth).
	if err := e.store.DB().Callback().Raw().Before("gorm:raw").Register("test:refuse_pairs", func(db *gorm.DB) {
		if refuse.Load() && strings.Contains(db.Statement.SQL.String(), "token_version = token_version + 1") {
			db.AddError(errors.New("database or disk is full (13)"))
		}
	}); err != nil {
		t.Fatal(err)
	}
	c, held := e.holdPair(&refuse)
	first := e.get(c.ID).LeaseUntil
	if first == nil {
		t.Fatal("the held pair's connection has no lease")
	}
	e.clock.Advance(7 * time.Second) // 2 s of the 9 s lease left
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	e.tokens.Drain(ctx) // attempts that fail, and renew the lease
	cancel()
	renewed := e.get(c.ID)
	if renewed.LeaseUntil == nil || !renewed.LeaseUntil.After(first.Add(5*time.Second)) || renewed.LeaseOwner == "" {
		t.Fatalf("lease until %v (was %v), owner %q: not renewed", renewed.LeaseUntil, first, renewed.LeaseOwner)
	}
	e.clock.Advance(5 * time.Second) // past the first lease's end
	storeB, _ := e.otherProcess()
	now := e.clock.Now()
	if rows, err := storeB.AcquireLeases(context.Background(), []string{c.ID}, "b/1", now, now.Add(time.Minute)); err != nil || len(rows) != 0 {
		t.Fatalf("a settled process took the renewed lease: %d rows, %v", len(rows), err)
	}
	refuse.Store(false)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lost := e.tokens.Drain(ctx); len(lost) != 0 {
		t.Fatalf("not stored: %v", lost)
	}
	if got := e.get(c.ID); e.openAccess(got) != held || got.LeaseOwner != "" {
		t.Fatalf("the pair did not land, or the lease was kept (%q)", got.LeaseOwner)
	}
}

// TestHeldPairLandsOverAnotherProcessFailure: when a settled process did take the
// connection over while the pair was held (a replica cut off from the database,
// say) and its refresh with the dead token wrote needs_reconnect, the pair still
// lands, and the connection's state is recomputed from what is stored: active,
// with a recovery on its timeline, and its token handed out.
func TestHeldPairLandsOverAnotherProcessFailure(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
	full := failWrites(t, e.store)
	e.store.SetHealthHold(0)
	c, held := e.holdPair(full)
	e.clock.Advance(75 * time.Second)
	full.Store(false)
	_, b := e.otherProcess()
	if _, err := b.Refresh(context.Background(), c.ID, "ann@example.com"); !errors.Is(err, services.ErrNeedsReconnect) {
		t.Fatalf("B's refresh with the replaced token: %v, want needs_reconnect", err)
	}
	if e.get(c.ID).Status != models.StatusNeedsReconnect {
		t.Fatal("B's failure was not written")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lost := e.tokens.Drain(ctx); len(lost) != 0 {
		t.Fatalf("A's pair was not stored: %v", lost)
	}
	got := e.get(c.ID)
	if got.Status != models.StatusActive || got.LastError != "" || e.openAccess(got) != held {
		t.Fatalf("after A's pair: %s %q, A's token %v", got.Status, got.LastError, e.openAccess(got) == held)
	}
	if !slices.Contains(e.eventTypes(c.ID), models.EventRecovered) {
		t.Fatalf("no recovery on the timeline: %v", e.eventTypes(c.ID))
	}
	g, err := b.AccessToken(context.Background(), c.ID, "api")
	if err != nil || g.Token != held {
		t.Fatalf("B's token after A's pair landed: %v (A's: %v)", err, g != nil && g.Token == held)
	}
}

// TestFailureAfterAnotherPairLandedChangesNothing: a refresh that presented the
// dead token while another process's pair was landing is recognised by the token
// version: its needs_reconnect is not written, no such event is recorded, and its
// caller gets the pair that landed.
func TestFailureAfterAnotherPairLandedChangesNothing(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
	full := failWrites(t, e.store)
	e.store.SetHealthHold(0)
	c, held := e.holdPair(full)
	e.clock.Advance(75 * time.Second)
	full.Store(false)
	_, b := e.otherProcess()
	// A's pair lands after GetResponse refused B's refresh and before B commits.
	b.BeforeCommit = func(string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if lost := e.tokens.Drain(ctx); len(lost) != 0 {
			t.Errorf("A's pair was not stored: %v", lost)
		}
		return nil
	}
	conn, err := b.Refresh(context.Background(), c.ID, "ann@example.com")
	if err != nil || e.openAccess(conn) != held {
		t.Fatalf("B's refresh: %v; want the pair A stored", err)
	}
	if n := e.fake.Stat(getresponsetest.StatDeadRefreshToken); n != 1 {
		t.Fatalf("%d dead-token refreshes, want B's one", n)
	}
	got := e.get(c.ID)
	if got.Status != models.StatusActive || got.LastError != "" || slices.Contains(e.eventTypes(c.ID), models.EventNeedsReconnect) {
		t.Fatalf("the dead-token failure changed the connection: %s %q %v", got.Status, got.LastError, e.eventTypes(c.ID))
	}
}

// TestGateHoldsBackAutomaticRefreshes: once storage is known to refuse writes, no
// refresh grconnect starts by itself reaches GetResponse — not a nudge after a
// token request, not the refresh a token about to expire waits for, not a
// proxied call's refresh after 1014 — while valid tokens are still handed out.
// A pair held in memory keeps the gate shut after the disk frees, until it lands.
// An explicit refresh is not gated.
func TestGateHoldsBackAutomaticRefreshes(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
	full := failWrites(t, e.store)
	e.store.SetHealthHold(0)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go e.tokens.RunNudges(ctx)
	now := e.clock.Now()
	roomy := e.seed(models.StatusActive, now.Add(5*time.Minute), nil) // inside the margin: a nudge
	expiring := e.seed(models.StatusActive, now.Add(30*time.Second), nil)
	expired := e.seed(models.StatusActive, now.Add(-time.Minute), nil)
	roomyGrant, err := e.tokens.AccessToken(ctx, roomy.ID, "api") // read before the fault, as a proxied call would
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	base := e.refreshes() // the nudge of that first read, if it went

	full.Store(true)
	if err := e.store.ProbeWrite(ctx); err == nil || e.store.Health().OK() {
		t.Fatal("the probe write should fail and mark storage unhealthy")
	}
	for range 20 {
		if g, err := e.tokens.AccessToken(ctx, roomy.ID, "api"); err != nil || g.Token == "" {
			t.Fatalf("a valid token inside the margin while the disk is full: %v", err)
		}
		if g, err := e.tokens.AccessToken(ctx, expiring.ID, "api"); err != nil || g.Token != e.openAccess(expiring) {
			t.Fatalf("a token about to expire while the disk is full: %v (the stored one: %v)", err, g != nil && g.Token == e.openAccess(expiring))
		}
	}
	if _, err := e.tokens.AccessToken(ctx, expired.ID, "api"); !errors.Is(err, services.ErrRefreshesPaused) || !errors.Is(err, models.ErrStorageUnavailable) {
		t.Fatalf("an expired token while the disk is full: %v, want paused (storage unavailable)", err)
	}
	if _, err := e.tokens.RefreshRefused(ctx, roomyGrant, "api"); !errors.Is(err, services.ErrRefreshesPaused) {
		t.Fatalf("a proxied call's refresh after 1014 while the disk is full: %v, want paused", err)
	}
	time.Sleep(300 * time.Millisecond) // the nudge workers had their turn
	if n := e.refreshes() - base; n != 0 {
		t.Fatalf("%d automatic refreshes reached GetResponse after storage was known unhealthy", n)
	}
	if why := e.tokens.RefreshesPaused(ctx); why == "" {
		t.Fatal("RefreshesPaused says nothing while the disk is full")
	}

	// An operator's refresh still asks GetResponse; its pair cannot be stored.
	if _, err := e.tokens.Refresh(ctx, expiring.ID, "ann@example.com"); err != nil || e.tokens.PendingPairs() != 1 {
		t.Fatalf("explicit refresh while the disk is full: %v, %d pending", err, e.tokens.PendingPairs())
	}
	full.Store(false)
	if err := e.store.ProbeWrite(ctx); err != nil || !e.store.Health().OK() {
		t.Fatalf("the disk freed, but storage is not healthy: %v", err)
	}
	before := e.refreshes()
	if _, err := e.tokens.AccessToken(ctx, expired.ID, "api"); !errors.Is(err, services.ErrRefreshesPaused) {
		t.Fatalf("an expired token while a pair is held: %v, want paused", err)
	}
	if e.refreshes() != before {
		t.Fatal("a refresh started while a pair was held")
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if lost := e.tokens.Drain(dctx); len(lost) != 0 {
		t.Fatalf("not stored: %v", lost)
	}
	if g, err := e.tokens.AccessToken(ctx, expired.ID, "api"); err != nil || !g.Refreshed || e.refreshes() != before+1 {
		t.Fatalf("once the pair landed, an expired token is refreshed again: %v", err)
	}
}

// callTimes records when each token call left for GetResponse.
type callTimes struct {
	next http.RoundTripper
	mu   sync.Mutex
	at   []time.Time
}

func (c *callTimes) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") {
		c.mu.Lock()
		c.at = append(c.at, time.Now())
		c.mu.Unlock()
	}
	return c.next.RoundTrip(r)
}

// maxInWindow is the most calls that left within any window of length d.
func (c *callTimes) maxInWindow(d time.Duration) int {
	c.mu.Lock()
	at := slices.Clone(c.at)
	c.mu.Unlock()
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	most := 0
	for i := range at {
		j := i
		for j < len(at) && at[j].Sub(at[i]) < d {
			j++
		}
		most = max(most, j-i)
	}
	return most
}

// TestAutomaticRefreshesShareOneRate: the refresher, nudges after token requests
// and the refreshes that tokens about to expire wait for all count against one
// rate: with 10 a second and token requests hammering 30 due connections, no
// one-second window sees more than 10 refresh calls, and every request gets a
// token.
func TestAutomaticRefreshesShareOneRate(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationRotate})
	rec := &callTimes{}
	tokens := e.newTokensVia(e.store, func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec })
	tokens.SetRefreshRate(10)
	now := e.clock.Now()
	var ids []string
	for i := range 30 {
		left := 5 * time.Minute // nudged
		if i%2 == 1 {
			left = 40 * time.Second // waits for its refresh
		}
		ids = append(ids, e.seed(models.StatusActive, now.Add(left), nil).ID)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	r := services.NewRefresher(tokens, e.store, services.RefresherConfig{Interval: 50 * time.Millisecond, Concurrency: 4}, discard())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	wg.Go(func() { tokens.RunNudges(ctx) })
	var asked atomic.Int64
	deadline := time.Now().Add(20 * time.Second)
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil && e.refreshes() < len(ids) && time.Now().Before(deadline) {
				id := ids[rand.IntN(len(ids))]
				asked.Add(1)
				if g, err := tokens.AccessToken(context.Background(), id, "api"); err != nil || g.Token == "" {
					t.Errorf("AccessToken: %v", err)
				}
			}
		})
	}
	for e.refreshes() < len(ids) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	wg.Wait()
	if got := e.refreshes(); got != len(ids) {
		t.Fatalf("%d refreshes for %d due connections", got, len(ids))
	}
	if most := rec.maxInWindow(time.Second); most > 10 {
		t.Fatalf("%d refresh calls within one second at a rate of 10 (%d token requests)", most, asked.Load())
	}
	rec.mu.Lock()
	span := rec.at[len(rec.at)-1].Sub(rec.at[0])
	rec.mu.Unlock()
	if span < 2800*time.Millisecond {
		t.Fatalf("30 refreshes took %s: faster than 10 a second", span)
	}
	t.Logf("%d token requests, %d refreshes over %s, at most %d in a second", asked.Load(), len(ids), span.Round(time.Millisecond), rec.maxInWindow(time.Second))
}

// TestTokenAboutToExpireWaitsOnlyForItsTurn: a token request whose token is about
// to expire waits for its refresh's turn at the rate; when the turn cannot come
// in time it gets the still-valid token, or, expired, an error that says to try
// again — and no refresh goes out past the pace.
func TestTokenAboutToExpireWaitsOnlyForItsTurn(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
	e.tokens.SetRefreshLimiter(&countingLimiter{allow: 0})
	now := e.clock.Now()
	expiring := e.seed(models.StatusActive, now.Add(30*time.Second), nil)
	expired := e.seed(models.StatusActive, now.Add(-time.Second), nil)
	ctx := context.Background()
	if g, err := e.tokens.AccessToken(ctx, expiring.ID, "api"); err != nil || g.Token != e.openAccess(expiring) || g.Refreshed {
		t.Fatalf("a token about to expire with no turn left: %v; want the stored token", err)
	}
	_, err := e.tokens.AccessToken(ctx, expired.ID, "api")
	var rerr *services.RefreshError
	if !errors.As(err, &rerr) || !errors.Is(err, services.ErrTransient) || rerr.RetryAfter <= 0 || !strings.Contains(rerr.Message, "GRCONNECT_REFRESH_RATE") {
		t.Fatalf("an expired token with no turn left: %v; want a transient error naming the pace", err)
	}
	if e.refreshes() != 0 {
		t.Fatalf("%d refreshes went out past the pace", e.refreshes())
	}
	e.tokens.SetRefreshLimiter(&countingLimiter{allow: 1})
	if g, err := e.tokens.AccessToken(ctx, expired.ID, "api"); err != nil || !g.Refreshed || e.refreshes() != 1 {
		t.Fatalf("with a turn, the expired token is refreshed: %v", err)
	}
}

// TestGoneReplicaLeasesEnd: a process killed with a lease (its heartbeat stops)
// is ended by a settled replica once the beat is replicaGone old: its lease ends
// at once and the connection is refreshed by the other, seconds later instead of
// a whole lease later. A replica that has just started judges nobody.
func TestGoneReplicaLeasesEnd(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationRotate})
	ctx := context.Background()
	c := e.seed(models.StatusActive, e.clock.Now().Add(30*time.Second), nil)
	e.tokens.BeforeCommit = func(string) error { return errors.New("killed") } // the process dies mid-refresh
	if _, err := e.tokens.Refresh(ctx, c.ID, "ann@example.com"); err == nil {
		t.Fatal("the cut-off refresh succeeded")
	}
	if e.get(c.ID).LeaseOwner == "" {
		t.Fatal("the killed refresh left no lease")
	}
	e.tokens.Beat(ctx)
	storeB, b := e.otherProcess()
	b.Beat(ctx)
	_, starting := e.otherProcess()
	starting.JustStartedForTest()

	e.clock.Advance(11 * time.Second) // A's last beat is now older than replicaGone
	starting.Beat(ctx)
	if until := e.get(c.ID).LeaseUntil; until == nil || !until.After(e.clock.Now()) {
		t.Fatal("a replica that had not settled ended another's leases")
	}
	b.Beat(ctx)
	if until := e.get(c.ID).LeaseUntil; until == nil || until.After(e.clock.Now()) {
		t.Fatalf("the gone replica's lease still runs until %v", until)
	}
	if silent, _ := storeB.SilentReplicas(ctx, e.clock.Now().Add(time.Hour)); slices.ContainsFunc(silent, func(r models.Replica) bool { return r.ID == e.tokens.Process() }) {
		t.Fatal("the gone replica's heartbeat row is still there")
	}
	conn, err := b.Refresh(ctx, c.ID, "ann@example.com")
	if err != nil || conn.Status != models.StatusActive || e.refreshes() != 2 {
		t.Fatalf("B's refresh of the gone replica's connection, 11 s later: %v (%d refresh calls)", err, e.refreshes())
	}
}

// cutter forwards TCP connections to a database until Cut, which closes them all
// and refuses new ones: the database becomes unreachable, as in an outage.
type cutter struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln}
	t.Cleanup(c.Cut)
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return c
}

// Cut closes the listener and every forwarded connection.
func (c *cutter) Cut() {
	c.ln.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// TestHeldRowsServeWhilePostgresUnreachable (PostgreSQL): with the database cut
// off, the token route's reads — the API key and the token row — answer from the
// rows last read, so still-valid tokens keep being handed out for connections
// seen before; an expired token, or a connection never seen, gets
// storage_unavailable. While the database answered, each read went to it: a token
// another replica replaced is never served from the held copy.
func TestHeldRowsServeWhilePostgresUnreachable(t *testing.T) {
	if !modelstest.Postgres() {
		t.Skip("PostgreSQL only (" + modelstest.EnvDatabase + "): on SQLite the row cache answers, and reads work through a full disk")
	}
	e := newEngine(t, getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
	ctx := context.Background()
	u, err := url.Parse(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	cut := newCutter(t, u.Host)
	u.Host = cut.ln.Addr().String()
	storeCut := modelstest.NewAt(t, u.String())
	tokens := e.newTokens(storeCut)
	keys := services.NewAPIKeys(storeCut, discard())
	_, plain, err := services.NewAPIKeys(e.store, discard()).Create(ctx, services.APIKeyInput{Name: "backend", CreatedBy: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}

	now := e.clock.Now()
	replaced := e.seed(models.StatusActive, now.Add(3*time.Hour), nil)
	soonExpired := e.seed(models.StatusActive, now.Add(90*time.Minute), nil)
	nudged := e.seed(models.StatusActive, now.Add(5*time.Minute), nil)
	unseen := e.seed(models.StatusActive, now.Add(3*time.Hour), nil)
	if _, err := keys.Verify(ctx, plain, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*models.Connection{replaced, soonExpired, nudged} {
		if _, err := tokens.AccessToken(ctx, c.ID, "api"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tokens.App(ctx, e.app.ID); err != nil {
		t.Fatal(err)
	}
	// Another replica refreshes one connection while the database is up: the next
	// read hands out its token, not the copy held before.
	rows, err := e.store.AcquireLeases(ctx, []string{replaced.ID}, "other/1", now, now.Add(time.Minute))
	if err != nil || len(rows) != 1 {
		t.Fatalf("lease: %v", err)
	}
	newAccess, _ := e.box.Seal("access-from-another-replica", secrets.AAD("connection", replaced.ID, "access_token"))
	if _, _, err := e.store.StoreRefreshTokens(ctx, &rows[0], models.RefreshResult{Tokens: &models.SealedTokens{AccessEnc: newAccess, ExpiresAt: now.Add(3 * time.Hour)},
		Event: models.Event{Type: models.EventRefreshSucceeded}, LeaseOwner: "other/1"}); err != nil {
		t.Fatal(err)
	}
	if g, err := tokens.AccessToken(ctx, replaced.ID, "api"); err != nil || g.Token != "access-from-another-replica" {
		t.Fatalf("while the database is up, the token another replica stored: %v", err)
	}

	cut.Cut()
	e.clock.Advance(2 * time.Hour) // soonExpired has expired meanwhile
	if _, err := keys.Verify(ctx, plain, "192.0.2.1"); err != nil {
		t.Fatalf("the API key while PostgreSQL is unreachable: %v", err)
	}
	if _, err := keys.Verify(ctx, plain[:len(plain)-1]+"x", "192.0.2.1"); !errors.Is(err, services.ErrInvalidAPIKey) {
		t.Fatalf("a wrong key while PostgreSQL is unreachable: %v", err)
	}
	for range 3 {
		g, err := tokens.AccessToken(ctx, replaced.ID, "api")
		if err != nil || g.Token != "access-from-another-replica" {
			t.Fatalf("a still-valid token while PostgreSQL is unreachable: %v", err)
		}
	}
	if _, err := tokens.AccessToken(ctx, soonExpired.ID, "api"); !errors.Is(err, models.ErrStorageUnavailable) {
		t.Fatalf("an expired held token: %v, want storage unavailable", err)
	}
	if _, err := tokens.AccessToken(ctx, unseen.ID, "api"); !errors.Is(err, models.ErrStorageUnavailable) {
		t.Fatalf("a connection never read: %v, want storage unavailable", err)
	}
	e.clock.Advance(-2 * time.Hour) // nudged: valid, inside the margin
	if g, err := tokens.AccessToken(ctx, nudged.ID, "api"); err != nil || g.Token != e.openAccess(nudged) {
		t.Fatalf("a held token inside the margin: %v", err)
	}
	if app, err := tokens.App(ctx, e.app.ID); err != nil || app.ID != e.app.ID {
		t.Fatalf("the app while PostgreSQL is unreachable: %v", err)
	}
	if n := e.refreshes(); n != 0 {
		t.Fatalf("%d refreshes while PostgreSQL was unreachable", n)
	}
}
