package getresponsetest

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// usage is one account's use of its rate limits.
type usage struct {
	windowStart time.Time
	windowUsed  int
	secondStart time.Time
	secondUsed  int
	inFlight    int
	peak        int
}

// rateAnswer is what the X-RateLimit-* headers (and Retry-After) of one
// answer say.
type rateAnswer struct {
	limit, remaining int
	reset            time.Duration
	retryAfter       int // seconds; 0 sends none
}

// usageLocked returns accountID's usage with windows that ended restarted at
// now; f.mu must be held.
func (f *Fake) usageLocked(accountID string, now time.Time) *usage {
	u := f.usage[accountID]
	if u == nil {
		u = &usage{windowStart: now, secondStart: now}
		f.usage[accountID] = u
	}
	if now.Sub(u.windowStart) >= f.opts.Window || now.Before(u.windowStart) {
		u.windowStart, u.windowUsed = now, 0
	}
	if now.Sub(u.secondStart) >= time.Second || now.Before(u.secondStart) {
		u.secondStart, u.secondUsed = now, 0
	}
	return u
}

// windowAnswerLocked describes u's 10-minute window; f.mu must be held.
func (f *Fake) windowAnswerLocked(u *usage, now time.Time) rateAnswer {
	limit := f.opts.WindowCalls
	if limit < 0 {
		limit = RateLimitCalls
	}
	return rateAnswer{
		limit:     limit,
		remaining: max(limit-u.windowUsed, 0),
		reset:     u.windowStart.Add(f.opts.Window).Sub(now),
	}
}

// peekRate describes accountID's window without using it; "" (an
// unauthenticated answer) shows a fresh window.
func (f *Fake) peekRate(accountID string) rateAnswer {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	u := &usage{windowStart: now, secondStart: now}
	if accountID != "" {
		u = f.usageLocked(accountID, now)
	}
	return f.windowAnswerLocked(u, now)
}

// consumeLocked uses one call of accountID's per-second and window limits.
// When a limit refuses it, nothing is used and refused names it. f.mu must
// be held.
func (f *Fake) consumeLocked(accountID string, now time.Time) (ra rateAnswer, refused Stat, ok bool) {
	u := f.usageLocked(accountID, now)
	if f.opts.PerSecond > 0 && u.secondUsed >= f.opts.PerSecond {
		reset := u.secondStart.Add(time.Second).Sub(now)
		return rateAnswer{limit: f.opts.PerSecond, reset: reset, retryAfter: 1}, StatRefusedPerSecond, false
	}
	if f.opts.WindowCalls > 0 && u.windowUsed >= f.opts.WindowCalls {
		return f.windowAnswerLocked(u, now), StatRefusedWindow, false
	}
	u.secondUsed++
	u.windowUsed++
	return f.windowAnswerLocked(u, now), 0, true
}

// consume is consumeLocked taking the lock; on a refusal it writes the 429
// and returns false, else it sets the rate headers and returns true.
func (f *Fake) consume(w http.ResponseWriter, accountID string) bool {
	now := f.now()
	f.mu.Lock()
	ra, refused, ok := f.consumeLocked(accountID, now)
	f.mu.Unlock()
	setRateHeaders(w, ra)
	if !ok {
		f.stat(refused)
		writeQuotaEnvelope(w, ra.limit, ra.reset)
	}
	return ok
}

// enter takes one of accountID's parallel slots. When all are taken it
// writes the 429 and returns false; otherwise the caller must call leave.
func (f *Fake) enter(w http.ResponseWriter, accountID string) bool {
	now := f.now()
	f.mu.Lock()
	u := f.usageLocked(accountID, now)
	if f.opts.Parallel > 0 && u.inFlight >= f.opts.Parallel {
		ra := f.windowAnswerLocked(u, now)
		f.mu.Unlock()
		f.stat(StatRefusedParallel)
		ra.retryAfter = 1
		setRateHeaders(w, ra)
		writeQuotaEnvelope(w, f.opts.Parallel, time.Second)
		return false
	}
	u.inFlight++
	u.peak = max(u.peak, u.inFlight)
	f.mu.Unlock()
	return true
}

// leave frees a slot taken by enter.
func (f *Fake) leave(accountID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u := f.usage[accountID]; u != nil && u.inFlight > 0 {
		u.inFlight--
	}
}

// InFlight returns how many requests of accountID are being answered now.
func (f *Fake) InFlight(accountID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u := f.usage[accountID]; u != nil {
		return u.inFlight
	}
	return 0
}

// PeakInFlight returns the most requests of accountID answered at once
// since the start or ResetCounts.
func (f *Fake) PeakInFlight(accountID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u := f.usage[accountID]; u != nil {
		return u.peak
	}
	return 0
}

// setRateHeaders writes the X-RateLimit-* headers, and Retry-After when set.
func setRateHeaders(w http.ResponseWriter, ra rateAnswer) {
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(ra.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(ra.remaining))
	h.Set("X-RateLimit-Reset", secondsText(ra.reset))
	if ra.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(ra.retryAfter))
	}
}

// secondsText writes a duration as GetResponse does: "432 seconds", rounded up.
func secondsText(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(max(d, 0).Seconds()))) + " seconds"
}

// writeQuotaEnvelope writes the 1015 answer for a limit of limit calls that
// resets in reset.
func writeQuotaEnvelope(w http.ResponseWriter, limit int, reset time.Duration) {
	writeEnvelope(w, http.StatusTooManyRequests, 1015,
		"Too many request to API, quota reached, please wait till next quota window",
		"You have reached your requests limit for this time window, please wait...",
		map[string]any{"currentLimit": limit, "timeToReset": secondsText(reset)})
}
