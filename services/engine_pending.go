package services

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/grconnect/grconnect/models"
)

// Under strict rotation GetResponse kills the old refresh token the moment it
// issues a new pair, so a pair received and not stored is a customer who must
// reconnect. A pair whose commit fails (disk full, read-only, database down) is
// therefore kept here and committed again until it lands; meanwhile the connection
// is not refreshed again, its pending access token is the one handed out, and its
// lease is renewed whenever the database takes that write, so no other process
// refreshes it with the refresh token the pair replaced. A lease that ended
// during an outage is not taken over by anyone until they have settled
// (engine_replicas.go), which gives this process the time to renew it or store
// the pair.

// pendingRetry bounds the wait between attempts to store pending pairs.
const (
	pendingRetryMin = 200 * time.Millisecond
	pendingRetryMax = 2 * time.Second
)

// pendingPair is a received token pair not yet stored.
type pendingPair struct {
	out      models.RefreshOutcome
	access   string // the plaintext access token, to hand out meanwhile
	expires  time.Time
	received time.Time
	attempts int
	// leaseUntil is when the pair's lease ends as last written; leaseLost is set
	// once a renewal found it released or taken over.
	leaseUntil time.Time
	leaseLost  bool
}

// pendingPairs holds the pairs waiting for the database.
type pendingPairs struct {
	mu   sync.Mutex
	byID map[string]*pendingPair
	// wake nudges the retry loop when a pair arrives.
	wake chan struct{}
}

func (p *pendingPairs) add(id string, pair *pendingPair) {
	p.mu.Lock()
	if p.byID == nil {
		p.byID = map[string]*pendingPair{}
	}
	p.byID[id] = pair
	p.mu.Unlock()
	select {
	case p.wakeChan() <- struct{}{}:
	default:
	}
}

func (p *pendingPairs) wakeChan() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wake == nil {
		p.wake = make(chan struct{}, 1)
	}
	return p.wake
}

func (p *pendingPairs) get(id string) *pendingPair {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byID[id]
}

func (p *pendingPairs) remove(id string, pair *pendingPair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byID[id] == pair {
		delete(p.byID, id)
	}
}

func (p *pendingPairs) snapshot() map[string]*pendingPair {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]*pendingPair, len(p.byID))
	for id, pair := range p.byID {
		out[id] = pair
	}
	return out
}

// PendingPairs returns how many received token pairs wait to be stored.
func (t *Tokens) PendingPairs() int {
	t.pending.mu.Lock()
	defer t.pending.mu.Unlock()
	return len(t.pending.byID)
}

// commit stores a refresh outcome. A new token pair is written first, in an UPDATE
// of its own; its events follow, to events (the refresher's group commit) or, when
// events is nil, in a transaction of their own. A pair that cannot be stored is
// kept pending (and retried by RunPending): the caller still gets the connection as
// it will be, with the new tokens. A failure outcome is written with its events in
// one transaction; if that fails the old pair is intact anyway.
func (t *Tokens) commit(ctx context.Context, out models.RefreshOutcome, plaintextAccess string, received time.Time, events chan<- []*models.Event) (*models.Connection, error) {
	ctx = context.WithoutCancel(ctx)
	if out.Result.Tokens == nil {
		return t.store.SaveRefresh(ctx, out.Prev, out.Result)
	}
	saved, evs, err := t.store.StoreRefreshTokens(ctx, out.Prev, out.Result)
	if err == nil {
		t.holdStored(saved)
		t.observeCommit(time.Since(received))
		t.recordEvents(ctx, evs, events)
		return saved, nil
	}
	if errors.Is(err, models.ErrDisconnected) || errors.Is(err, models.ErrSuperseded) {
		return nil, err
	}
	t.log.Error("a new token pair could not be stored; keeping it and retrying until it is",
		"connection", out.Prev.ID, "error", err)
	pair := &pendingPair{out: out, access: plaintextAccess, expires: out.Result.Tokens.ExpiresAt, received: received, attempts: 1}
	if out.Prev.LeaseUntil != nil {
		pair.leaseUntil = *out.Prev.LeaseUntil
	}
	t.pending.add(out.Prev.ID, pair)
	return pair.connection(), nil
}

// connection is the connection as it will be once the pair is stored.
func (p *pendingPair) connection() *models.Connection {
	c := *p.out.Prev
	expires := p.expires
	c.AccessTokenEnc, c.ExpiresAt, c.Status = p.out.Result.Tokens.AccessEnc, &expires, models.StatusActive
	c.LeaseOwner, c.LeaseUntil, c.LastError, c.NextAttemptAt = "", nil, "", nil
	return &c
}

// recordEvents writes a stored refresh's events: to events when given (a group
// commit), else at once. Losing them is logged, nothing more: the tokens are stored.
func (t *Tokens) recordEvents(ctx context.Context, evs []*models.Event, events chan<- []*models.Event) {
	if events != nil {
		events <- evs
		return
	}
	if err := t.store.RecordRefreshEvents(context.WithoutCancel(ctx), evs); err != nil {
		t.log.Error("refresh events not recorded (the tokens are stored)", "error", err)
	}
}

// RunPending stores pending pairs until ctx ends, retrying with a growing pause
// while the database refuses them, and at once when the store sees the database
// change (back after an outage).
func (t *Tokens) RunPending(ctx context.Context) {
	wait := pendingRetryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.pending.wakeChan():
			wait = pendingRetryMin
		case <-t.store.HealthChanged():
			wait = pendingRetryMin
		case <-time.After(wait):
		}
		if t.storePending(ctx) {
			wait = pendingRetryMin
		} else {
			wait = min(wait*2, pendingRetryMax)
		}
	}
}

// storePending tries every pending pair once and reports whether none is left; a
// pair that still cannot be stored has its lease renewed when the database takes
// that.
func (t *Tokens) storePending(ctx context.Context) bool {
	left := false
	for id, pair := range t.pending.snapshot() {
		saved, evs, err := t.store.StoreRefreshTokens(context.WithoutCancel(ctx), pair.out.Prev, pair.out.Result)
		switch {
		case err == nil:
			t.pending.remove(id, pair)
			t.holdStored(saved)
			t.recordEvents(ctx, evs, nil)
			took := time.Since(pair.received)
			t.observeCommit(took)
			t.log.Info("a pending token pair was stored", "connection", id, "after", took.Round(time.Millisecond), "attempts", pair.attempts+1)
		case errors.Is(err, models.ErrDisconnected), errors.Is(err, models.ErrSuperseded):
			// Disconnected meanwhile, or a newer pair was stored: this one is moot.
			t.pending.remove(id, pair)
			t.log.Warn("a pending token pair was dropped", "connection", id, "reason", err)
		default:
			pair.attempts++
			left = true
			t.renewPending(ctx, id, pair)
		}
	}
	return !left
}

// renewPending renews a pending pair's lease once a third of it is left or less
// (or it ended during an outage), so that no other process refreshes the
// connection with the refresh token the pair replaced.
func (t *Tokens) renewPending(ctx context.Context, id string, pair *pendingPair) {
	now := t.Now()
	if pair.leaseLost || pair.leaseUntil.Sub(now) > t.leaseTTL/3 {
		return
	}
	until := now.Add(t.leaseTTL)
	held, err := t.store.RenewLease(context.WithoutCancel(ctx), id, pair.out.Result.LeaseOwner, until)
	switch {
	case err != nil:
		// The database refuses this write too: the next attempt tries again.
	case held:
		pair.leaseUntil = until
	default:
		pair.leaseLost = true
		t.log.Warn("the lease of a pending token pair was taken over; the pair is still stored unless a newer one was", "connection", id)
	}
}

// Drain stores pending pairs until none is left or ctx ends (shutdown), and says
// which connections' pairs could not be stored.
func (t *Tokens) Drain(ctx context.Context) []string {
	wait := pendingRetryMin
	for !t.storePending(ctx) {
		select {
		case <-ctx.Done():
			var lost []string
			for id := range t.pending.snapshot() {
				lost = append(lost, id)
			}
			return lost
		case <-time.After(wait):
		}
		wait = min(wait*2, pendingRetryMax)
	}
	return nil
}
