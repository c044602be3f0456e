package tokens

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/grconnect/grconnect/services/getresponse"
)

// The proxy paces calls per GetResponse account (per API base, MAX domain and
// account ID, budgetKey) so that GetResponse's own limits are never hit: at most
// 10 calls in flight, at most 78 sent in any second (GetResponse allows 80; two
// are left to grconnect's own calls), and the 30,000 of its 10-minute window. A call that would break a limit waits in its account's queue,
// first come first served, up to the proxy's maximum wait; accounts never wait for
// one another. A wait known to be longer (GetResponse asked to be left alone after
// a 429, or the window's calls are spent) is answered at once with a 429 that says
// how long.
//
// A call's second is counted from when it is sent until a second after its answer
// ended: however long the answer took, GetResponse saw the call inside that span,
// so no second of GetResponse's clock ever holds more than 80.

// paceLimits are an account's limits.
type paceLimits struct {
	InFlight  int
	PerSecond int
	Window    int
	WindowLen time.Duration
}

// ownCallsReserve is the calls a second of each account the proxy leaves to
// grconnect's own calls (a refresh, a test call, a new connection's first look at
// the account), which GetResponse counts in the same second.
const ownCallsReserve = 2

// getResponseLimits are GetResponse's documented limits per account, less the
// reserve for grconnect's own calls.
var getResponseLimits = paceLimits{
	InFlight: getresponse.LimitParallel, PerSecond: getresponse.LimitPerSecond - ownCallsReserve,
	Window: getresponse.LimitPerWindow, WindowLen: getresponse.LimitWindow,
}

// paceShare is the part of an account's limits this process may use: all of them
// on one process; across replicas on PostgreSQL, what the fleet granted it
// (proxy_fleet.go). One slot is one call in flight and a tenth of the calls a
// second and of the window.
type paceShare struct{ slots int }

// perSecond is how many calls a second slots carry (78 for all ten).
func (l paceLimits) perSecond(slots int) int { return slots * l.PerSecond / l.InFlight }

// pacer holds every account's queue and counts.
type pacer struct {
	limits  paceLimits
	now     func() time.Time
	maxWait time.Duration
	// shared is set on a fleet: accounts start with no slots, and poke asks the
	// fleet for a share at once.
	shared bool
	poke   func()

	mu       sync.Mutex
	accounts map[string]*pacedAccount
}

func newPacer(limits paceLimits, now func() time.Time, maxWait time.Duration) *pacer {
	return &pacer{limits: limits, now: now, maxWait: maxWait, poke: func() {}, accounts: map[string]*pacedAccount{}}
}

// pacedAccount is one account's state; every field is guarded by pacer.mu.
type pacedAccount struct {
	key      string
	share    paceShare
	inFlight int
	// recent holds, in order, when the seconds of the calls answered lately end
	// (a second after each answer): with inFlight, the calls of the last second.
	recent []time.Time
	queue  []*paceWaiter
	// blockedUntil is when GetResponse lets calls through again (after a 429, or
	// once an answer said the window's calls are spent).
	blockedUntil time.Time
	// The 10-minute window: what GetResponse's last answer said (windowLeft calls
	// left, minus the calls in flight then, until windowReset) and the calls sent
	// since; without such an answer, a count of this process's own calls from
	// localStart.
	windowKnown bool
	windowLeft  int
	windowSent  int
	windowReset time.Time
	localStart  time.Time
	localUsed   int
	timer       *time.Timer
	// refused counts, on a fleet without waiting (maxWait 0), the calls refused
	// for want of a share since the fleet last asked: they count in what the
	// account wants, or it would never get more than one slot.
	refused int
}

// paceWaiter is a call in an account's queue. When ready closes, it either was
// let through (granted) or refused (err).
type paceWaiter struct {
	ready   chan struct{}
	granted bool
	err     error
}

// paceTicket is a call let through: End it when its answer has ended.
type paceTicket struct {
	p       *pacer
	account *pacedAccount
	once    sync.Once
}

func (p *pacer) account(key string) *pacedAccount {
	a := p.accounts[key]
	if a == nil {
		a = &pacedAccount{key: key}
		if !p.shared {
			a.share = paceShare{slots: p.limits.InFlight}
		}
		p.accounts[key] = a
	}
	return a
}

// acquire waits for key's account to allow one more call, and returns the call's
// ticket and how long it waited. Refusals are *RateLimitedError (carrying the
// wait) and, when ctx ends, *UnavailableError.
func (p *pacer) acquire(ctx context.Context, key string) (*paceTicket, time.Duration, error) {
	start := p.now()
	p.mu.Lock()
	a := p.account(key)
	if d := a.blockedFor(p, start); d > 0 && d >= p.maxWait {
		p.mu.Unlock()
		return nil, 0, &RateLimitedError{RetryAfter: d}
	}
	if len(a.queue) == 0 && a.canSend(p, start) {
		t := a.send(p, start)
		p.mu.Unlock()
		return t, 0, nil
	}
	if p.maxWait <= 0 || len(a.queue) >= p.queueCap() {
		if p.shared && p.maxWait <= 0 {
			a.refused++
			p.poke()
		}
		p.mu.Unlock()
		return nil, 0, &RateLimitedError{RetryAfter: time.Second, Busy: true}
	}
	w := &paceWaiter{ready: make(chan struct{})}
	a.queue = append(a.queue, w)
	p.schedule(a, start)
	if a.share.slots < min(len(a.queue)+a.inFlight, p.limits.InFlight) {
		p.poke() // the fleet may grant more at once (a first call, a burst)
	}
	p.mu.Unlock()

	timer := time.NewTimer(p.maxWait)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		if w.err != nil {
			return nil, 0, queuedFor(w.err, p.now().Sub(start))
		}
		return &paceTicket{p: p, account: a}, p.now().Sub(start), nil
	case <-ctx.Done():
		err = &UnavailableError{Err: ctx.Err()}
	case <-timer.C:
		err = &RateLimitedError{RetryAfter: time.Second, Busy: true}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case w.granted: // let through as the wait ran out: it goes
		return &paceTicket{p: p, account: a}, p.now().Sub(start), nil
	case w.err != nil:
		return nil, 0, queuedFor(w.err, p.now().Sub(start))
	}
	for i, q := range a.queue {
		if q == w {
			a.queue = append(a.queue[:i], a.queue[i+1:]...)
			break
		}
	}
	if rl, ok := err.(*RateLimitedError); ok {
		rl.Queued = p.now().Sub(start)
		if d := a.blockedFor(p, p.now()); d > 0 {
			rl.RetryAfter, rl.Busy = d, false
		}
	}
	p.forgetIfIdle(a, p.now())
	return nil, 0, err
}

// queuedFor notes on a refusal how long the call waited.
func queuedFor(err error, d time.Duration) error {
	if rl, ok := err.(*RateLimitedError); ok {
		rl.Queued = d
	}
	return err
}

// queueCap is the most calls an account's queue holds: what its share of the
// per-second limit can send within the maximum wait (a call behind them would
// wait longer anyway).
func (p *pacer) queueCap() int {
	return max(p.limits.PerSecond*int(p.maxWait/time.Second+1), p.limits.InFlight)
}

// blockedFor is how long GetResponse asked to leave the account alone: after a
// 429, or until the window resets once its calls are spent.
func (a *pacedAccount) blockedFor(p *pacer, now time.Time) time.Duration {
	until := a.blockedUntil
	if a.windowSpent(p, now) {
		until = later(until, a.windowEnd(p))
	}
	return max(until.Sub(now), 0)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// windowEnd is when the window being counted resets.
func (a *pacedAccount) windowEnd(p *pacer) time.Time {
	if a.windowKnown {
		return a.windowReset
	}
	return a.localStart.Add(p.limits.WindowLen)
}

// windowSpent reports whether this process's part of the 10-minute window is used up.
func (a *pacedAccount) windowSpent(p *pacer, now time.Time) bool {
	if a.windowKnown && !now.Before(a.windowReset) {
		a.windowKnown = false // reset: count afresh
		a.localStart, a.localUsed = time.Time{}, 0
	}
	if !a.windowKnown && !a.localStart.IsZero() && !now.Before(a.localStart.Add(p.limits.WindowLen)) {
		a.localStart, a.localUsed = time.Time{}, 0
	}
	if a.share.slots == 0 {
		return false // no share yet: nothing of the window is this process's to spend
	}
	part := func(n int) int { return n * a.share.slots / p.limits.InFlight }
	if a.windowKnown {
		return a.windowSent >= part(a.windowLeft)
	}
	return !a.localStart.IsZero() && a.localUsed >= part(p.limits.Window)
}

// busySeconds counts the calls of the last second at now (dropping those that ended).
func (a *pacedAccount) busySeconds(now time.Time) int {
	i := 0
	for i < len(a.recent) && !a.recent[i].After(now) {
		i++
	}
	if i > 0 {
		a.recent = append(a.recent[:0], a.recent[i:]...)
	}
	return a.inFlight + len(a.recent)
}

// canSend reports whether a call may go now.
func (a *pacedAccount) canSend(p *pacer, now time.Time) bool {
	return a.inFlight < a.share.slots &&
		a.busySeconds(now) < p.limits.perSecond(a.share.slots) &&
		!now.Before(a.blockedUntil) && !a.windowSpent(p, now)
}

// send counts a call that goes now and returns its ticket.
func (a *pacedAccount) send(p *pacer, now time.Time) *paceTicket {
	a.inFlight++
	if a.windowKnown {
		a.windowSent++
	} else {
		if a.localStart.IsZero() {
			a.localStart = now
		}
		a.localUsed++
	}
	return &paceTicket{p: p, account: a}
}

// dispatch lets queued calls go while the limits allow, first come first served,
// and arranges to be called again when only time holds the next one back.
func (p *pacer) dispatch(a *pacedAccount, now time.Time) {
	if d := a.blockedFor(p, now); d > 0 && d >= p.maxWait {
		// GetResponse asked for a longer wait than the queue may: say so now.
		for _, w := range a.queue {
			w.err = &RateLimitedError{RetryAfter: d}
			close(w.ready)
		}
		clear(a.queue)
		a.queue = a.queue[:0]
	}
	for len(a.queue) > 0 && a.canSend(p, now) {
		w := a.queue[0]
		a.queue[0] = nil
		a.queue = a.queue[1:]
		a.send(p, now)
		w.granted = true
		close(w.ready)
	}
	p.schedule(a, now)
}

// schedule sets the account's timer: for when time alone lets its next queued call
// go, or, once it is idle, for when it can be forgotten.
func (p *pacer) schedule(a *pacedAccount, now time.Time) {
	var at time.Time
	switch {
	case len(a.queue) > 0:
		if !now.Before(a.blockedUntil) {
			at = now
		} else {
			at = a.blockedUntil
		}
		if a.windowSpent(p, now) {
			at = later(at, a.windowEnd(p))
		}
		if a.inFlight < a.share.slots && a.busySeconds(now) >= p.limits.perSecond(a.share.slots) && len(a.recent) > 0 {
			at = later(at, a.recent[0])
		}
		if !at.After(now) {
			return // waits for an answer to end or for a share, not for time
		}
	case a.inFlight == 0:
		at = now
		if len(a.recent) > 0 {
			at = a.recent[len(a.recent)-1]
		}
		at = later(at, a.blockedUntil)
	default:
		return // the last answer to end takes over
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	a.timer = time.AfterFunc(max(at.Sub(now), time.Millisecond), func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		now := p.now()
		if len(a.queue) > 0 {
			p.dispatch(a, now)
			return
		}
		p.forgetIfIdle(a, now)
	})
}

// forgetIfIdle drops an account with nothing queued, in flight or in its last
// second, and nothing worth remembering: no wait GetResponse asked for, and a
// window far from spent.
func (p *pacer) forgetIfIdle(a *pacedAccount, now time.Time) {
	if len(a.queue) > 0 || a.busySeconds(now) > 0 || now.Before(a.blockedUntil) || p.accounts[a.key] != a {
		return
	}
	if a.windowKnown && a.windowLeft-a.windowSent < p.limits.Window/10 && now.Before(a.windowReset) {
		return
	}
	if !a.windowKnown && a.localUsed > p.limits.Window/10 && now.Before(a.windowEnd(p)) {
		return
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	delete(p.accounts, a.key)
}

// observe reads an answer's status and rate-limit headers: a 429 (or an answer
// that spent the window) blocks the account until GetResponse's reset, and the
// window's remaining calls replace the count.
func (t *paceTicket) observe(status int, h http.Header) {
	p, a := t.p, t.account
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if d := getresponse.BackoffAfter(status, h); d > 0 {
		a.blockedUntil = later(a.blockedUntil, now.Add(d))
	}
	if rl := getresponse.ParseRateLimit(h); rl.Known && rl.Window == getresponse.LimitWindow && h.Get("X-RateLimit-Remaining") != "" {
		// The calls still in flight may not be counted in that figure yet.
		a.windowKnown, a.windowLeft, a.windowSent = true, max(rl.Remaining-(a.inFlight-1), 0), 0
		a.windowReset = now.Add(rl.Reset)
	}
	if len(a.queue) > 0 {
		p.dispatch(a, now)
	}
}

// end frees the call's place once its answer has ended (or it never went out).
func (t *paceTicket) end() {
	t.once.Do(func() {
		p, a := t.p, t.account
		p.mu.Lock()
		defer p.mu.Unlock()
		now := p.now()
		a.inFlight--
		a.recent = append(a.recent, now.Add(time.Second))
		p.dispatch(a, now)
	})
}

// paceDemand is what one account asks of the fleet.
type paceDemand struct {
	key string
	// want is the slots it could use now (queued and in-flight calls, at most the limit).
	want int
	// held is the slots it still occupies: its share in force, its calls in
	// flight, and those of its last second (a slot carries a tenth of the calls a
	// second).
	held int
}

// demand lists what every known account asks of the fleet.
func (p *pacer) demand() []paceDemand {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	out := make([]paceDemand, 0, len(p.accounts))
	for key, a := range p.accounts {
		busy := a.busySeconds(now)
		// The slots whose calls a second its busy calls need.
		secondSlots := (busy*p.limits.InFlight + p.limits.PerSecond - 1) / p.limits.PerSecond
		// Until the fleet's new share is set, calls may still go under the one in
		// force: it is held too (giving slots back takes one more rebalancing).
		out = append(out, paceDemand{key: key,
			want: min(len(a.queue)+a.inFlight+a.refused, p.limits.InFlight),
			held: max(a.inFlight, secondSlots, a.share.slots)})
		a.refused = 0
	}
	return out
}

// setShares hands each account its share of the limits, lets its queue move on,
// and records how long GetResponse asked the fleet to leave it alone.
func (p *pacer) setShares(shares map[string]int, blocked map[string]time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for key, a := range p.accounts {
		if n, ok := shares[key]; ok {
			a.share.slots = n
		}
		if until, ok := blocked[key]; ok {
			a.blockedUntil = later(a.blockedUntil, until)
		}
		if len(a.queue) > 0 {
			p.dispatch(a, now)
		}
	}
}
