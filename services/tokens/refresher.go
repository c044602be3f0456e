package tokens

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grconnect/grconnect/models"
)

// RefresherConfig tunes the background refresher.
type RefresherConfig struct {
	Interval    time.Duration // how often it wakes (±20 % jitter); default 15 s
	Batch       int           // connections picked per query; default 50
	Concurrency int           // refreshes in flight at once; default 4
}

// Refresher keeps connections alive: it wakes periodically, picks the connections due
// for a refresh in small batches ordered by expiry, and refreshes them with bounded
// concurrency through the gate of automatic refreshes (engine_gate.go: paused
// while storage refuses writes, paced at the refresh rate it shares with every
// other automatic refresh). Every replica may run one: leases make each refresh
// happen once.
type Refresher struct {
	tokens *Tokens
	store  *models.Store
	cfg    RefresherConfig
	log    *slog.Logger
}

// NewRefresher returns a refresher over the token engine.
func NewRefresher(tokens *Tokens, store *models.Store, cfg RefresherConfig, log *slog.Logger) *Refresher {
	if cfg.Interval <= 0 {
		cfg.Interval = 15 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 50
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	return &Refresher{tokens: tokens, store: store, cfg: cfg, log: log}
}

// Announce logs the refresher's settings as it starts (synchronously, so the log
// says it before anything the server prints after starting its work).
func (r *Refresher) Announce() {
	policy := r.tokens.Policy()
	r.log.Info("refresher started", "interval", r.cfg.Interval, "concurrency", r.cfg.Concurrency, "margin", policy.Margin, "keepalive", policy.Keepalive)
}

// Run refreshes due connections until ctx ends. On shutdown it stops picking and
// waits for the refreshes in flight: each either commits or never sent its request.
// Its start is logged by Announce, before it runs.
func (r *Refresher) Run(ctx context.Context) {
	for {
		n, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Error("refresher pass failed", "error", err)
		}
		if ctx.Err() != nil {
			r.log.Info("refresher stopped")
			return
		}
		wait := time.Duration(float64(r.cfg.Interval) * (0.8 + 0.4*rand.Float64()))
		if n >= r.cfg.Batch {
			wait = 0 // a full batch may have left more due connections behind
		}
		select {
		case <-ctx.Done():
			r.log.Info("refresher stopped")
			return
		case <-time.After(wait):
		}
	}
}

// RunOnce picks one batch of due connections and refreshes them, returning how many
// it attempted. A connection is leased only once its request is about to be sent
// (a free worker and the rate limiter's go-ahead), so a batch waiting its turn holds
// no leases: on-demand callers and other replicas are never stalled behind it, and
// a crash leaves only the refreshes really in flight to wait out their lease. When
// several can be sent at once (free workers, rate to spare) they are leased in one
// statement.
func (r *Refresher) RunOnce(ctx context.Context) (int, error) {
	if why := r.tokens.RefreshesPaused(ctx); why != "" {
		r.log.Warn("automatic refreshes paused", "reason", why)
		return 0, nil
	}
	policy := r.tokens.Policy()
	now := r.tokens.Now()
	probes, err := r.claimProbes(ctx, now)
	if err != nil {
		return 0, err
	}
	ids, err := r.store.DueConnections(ctx, policy.Query(now, r.cfg.Batch))
	if err != nil {
		return 0, err
	}
	for id := range probes {
		ids = append([]string{id}, ids...)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	// New pairs are stored one by one as they arrive; their events, and failures
	// (no new tokens), are written in groups by one committer.
	failures := make(chan models.RefreshOutcome, 2*r.cfg.Concurrency)
	events := make(chan []*models.Event, 2*r.cfg.Concurrency)
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		r.commitGroups(ctx, failures, events)
	}()
	slots := make(chan struct{}, r.cfg.Concurrency)
	for range r.cfg.Concurrency {
		slots <- struct{}{}
	}
	var wg sync.WaitGroup
	var attempted atomic.Int64
	var leaseFailed atomic.Bool
	for next := 0; next < len(ids); {
		select {
		case <-slots:
		case <-ctx.Done():
		}
		// The gate is the last chance to stop: past it, requests are sent and
		// run to their commit even if shutdown begins.
		if ctx.Err() != nil || r.tokens.gateShut() || leaseFailed.Load() {
			break // shutting down, or the database stopped taking writes
		}
		if err := r.tokens.gate.pace().Wait(ctx); err != nil {
			slots <- struct{}{}
			next++ // not this one now; it stays due
			continue
		}
		group := []string{ids[next]}
		next++
		// With many workers, a group waits a moment (groupWait) for a quarter of
		// them to be free: each lease statement is a commit, and at a thousand
		// refreshes a second one per refresh would keep the database's log
		// flushing for them alone.
		minGroup := r.cfg.Concurrency / 4
	more:
		for next < len(ids) && len(group) < r.cfg.Concurrency {
			select {
			case <-slots:
			default:
				if len(group) >= minGroup {
					break more
				}
				select {
				case <-slots:
				case <-time.After(groupWait):
					break more
				case <-ctx.Done():
					break more
				}
			}
			if !r.tokens.allowNow() {
				slots <- struct{}{}
				break
			}
			group = append(group, ids[next])
			next++
		}
		// Leased off the loop, which gathers the next group meanwhile: where each
		// commit waits for the disk (PostgreSQL), the leases of several groups
		// share one flush instead of queueing one behind the other.
		wg.Go(func() {
			owner := r.tokens.LeaseOwner()
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.tokens.refreshDeadline())
			now := r.tokens.Now()
			rows, err := r.store.AcquireLeases(lctx, group, owner, r.tokens.leaseCutoff(now), now.Add(r.tokens.leaseTTL))
			cancel()
			if err != nil {
				r.log.Error("lease", "connections", len(group), "error", err)
				leaseFailed.Store(true)
			}
			for range len(group) - len(rows) {
				slots <- struct{}{} // another worker holds those
			}
			for i := range rows {
				wg.Go(func() {
					defer func() { slots <- struct{}{} }()
					if r.refreshLeased(ctx, &rows[i], owner, probes[rows[i].ID], outcomeSink{failures: failures, events: events}) {
						attempted.Add(1)
					}
				})
			}
		})
	}
	wg.Wait()
	close(failures)
	close(events)
	<-committed
	return int(attempted.Load()), nil
}

// probeClaim is how long a claimed probe keeps others from probing the same app;
// the probe's outcome sets the real next time.
const probeClaim = time.Minute

// claimProbes claims, for each unhealthy app whose retry time has come, one probe:
// one due connection of that app, refreshed to test whether the app works again.
// Exactly one worker of any process gets each claim.
func (r *Refresher) claimProbes(ctx context.Context, now time.Time) (map[string]bool, error) {
	apps, err := r.store.UnhealthyApps(ctx)
	if err != nil || len(apps) == 0 {
		return nil, err
	}
	probes := map[string]bool{}
	policy := r.tokens.Policy()
	for _, app := range apps {
		if app.HealthRetryAt != nil && app.HealthRetryAt.After(now) {
			continue
		}
		q := policy.Query(now, 1)
		q.AppID = app.ID
		ids, err := r.store.DueConnections(ctx, q)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			continue
		}
		claimed, err := r.store.ClaimAppProbe(ctx, app.ID, now, now.Add(probeClaim))
		if err != nil {
			return nil, err
		}
		if claimed {
			probes[ids[0]] = true
			r.log.Info("probing an unhealthy app", "app", app.ID, "health", app.Health, "connection", ids[0])
		}
	}
	return probes, nil
}

// refreshLeased refreshes one leased connection through the engine's one leased
// path (runLeased) if it is still due — and, for an unhealthy app's connection,
// only as that app's probe — with the group committer as its sink. It reports
// whether a request was sent.
func (r *Refresher) refreshLeased(ctx context.Context, conn *models.Connection, owner string, probe bool, sink outcomeSink) bool {
	// Leased means sent: it runs to its commit even if shutdown begins.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.tokens.refreshDeadline())
	defer cancel()
	due := func(c *models.Connection, now time.Time) bool {
		if !r.tokens.Policy().Background(c, now) {
			return false // refreshed a moment ago
		}
		app, err := r.tokens.App(ctx, c.AppID)
		return err != nil || app.Health.Healthy() || probe // an unhealthy app: only its probe goes
	}
	_, sent, err := r.tokens.runLeased(ctx, conn, owner, "system", due, refreshRules{automatic: true}, sink)
	var rerr *RefreshError
	if err != nil && !errors.As(err, &rerr) && !errors.Is(err, models.ErrDisconnected) {
		r.log.Warn("refresh", "connection", conn.ID, "error", err)
	}
	return sent
}

// groupWait is how long a lease group waits for more free workers (see RunOnce).
const groupWait = 5 * time.Millisecond

// maxGroupCommit caps how many refresh outcomes share one transaction.
const maxGroupCommit = 256

// commitGroups writes failed refreshes' outcomes and the events of stored pairs in
// groups until both channels close: each transaction takes what is waiting, so a
// group never waits for more. A group that cannot be written is only logged:
// failures carry no new tokens (the stored pair is intact, the connections are
// retried), and the events' pairs are already stored.
func (r *Refresher) commitGroups(ctx context.Context, failures <-chan models.RefreshOutcome, events <-chan []*models.Event) {
	ctx = context.WithoutCancel(ctx) // outcomes of sent requests are always committed
	ready := make(chan struct{})     // always ready: a select on it never waits
	close(ready)
	for failures != nil || events != nil {
		var group []models.RefreshOutcome
		var evs []*models.Event
		// take receives one item, waiting for it unless wait is unset; it reports
		// whether anything was received or a channel closed.
		take := func(wait bool) bool {
			var idle <-chan struct{}
			if !wait {
				idle = ready
			}
			select {
			case o, ok := <-failures:
				if !ok {
					failures = nil
				} else {
					group = append(group, o)
				}
			case e, ok := <-events:
				if !ok {
					events = nil
				} else {
					evs = append(evs, e...)
				}
			case <-idle:
				return false
			}
			return true
		}
		// Wait for the first item, then take whatever else is already waiting.
		take(true)
		for len(group)+len(evs) < maxGroupCommit && (failures != nil || events != nil) && take(false) {
		}
		if len(group)+len(evs) == 0 {
			continue
		}
		_, errs, err := r.store.SaveRefreshes(ctx, group, evs...)
		if err != nil {
			r.log.Error("commit a group of refresh outcomes and events", "failures", len(group), "events", len(evs), "error", err)
			continue
		}
		for i, e := range errs {
			if e != nil && !errors.Is(e, models.ErrDisconnected) && !errors.Is(e, models.ErrSuperseded) {
				r.log.Warn("refresh not saved", "connection", group[i].Prev.ID, "error", e)
			}
		}
	}
}
