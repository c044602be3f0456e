package getresponsetest

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
)

// plan is what is in store for one account, set by a consent outcome or
// SetOutage. Snapshot saves it.
type plan struct {
	// outageArmed starts an outage of Options.OutageLength at the account's
	// next successful API call or its next token call.
	outageArmed bool
	outageUntil time.Time
	// blocked is a GetResponse block code (1016, 1017, 1018 or 1019) every
	// token and API call of the account is answered with, until cleared.
	blocked int
}

// ErrNotABlock is SetBlocked's error for a code that is not one of
// GetResponse's blocks.
var ErrNotABlock = errors.New("getresponsetest: not a block code (1016, 1017, 1018, 1019)")

// SetBlocked makes every token and API call for accountID answer GetResponse's
// block code — 1016 (temporarily blocked), 1017 (permanently blocked), 1018
// (IP address blocked) or 1019 (maintenance), HTTP 403 — until it is cleared
// with code 0. Snapshot saves it: a blocked account stays blocked.
func (f *Fake) SetBlocked(accountID string, code int) error {
	if code != 0 && (code < 1016 || code > 1019) {
		return ErrNotABlock
	}
	f.mu.Lock()
	if _, ok := f.accountLocked(accountID); !ok {
		f.mu.Unlock()
		return ErrUnknownAccount
	}
	f.planLocked(accountID).blocked = code
	f.mu.Unlock()
	f.changed()
	return nil
}

// SetOutage makes every token and API call for accountID answer 503 until
// until, by the Fake's clock; a zero until ends it.
func (f *Fake) SetOutage(accountID string, until time.Time) error {
	f.mu.Lock()
	if _, ok := f.accountLocked(accountID); !ok {
		f.mu.Unlock()
		return ErrUnknownAccount
	}
	p := f.planLocked(accountID)
	p.outageArmed, p.outageUntil = false, until
	f.mu.Unlock()
	f.changed()
	return nil
}

// Outage returns when accountID's outage ends, and whether one is running
// now or armed (an armed one has a zero end until it starts).
func (f *Fake) Outage(accountID string) (until time.Time, ok bool) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.plans[accountID]
	switch {
	case p == nil:
		return time.Time{}, false
	case p.outageArmed:
		return time.Time{}, true
	case now.Before(p.outageUntil):
		return p.outageUntil, true
	}
	return time.Time{}, false
}

func (f *Fake) planLocked(accountID string) *plan {
	p := f.plans[accountID]
	if p == nil {
		p = &plan{}
		f.plans[accountID] = p
	}
	return p
}

// outageLocked reports whether accountID is in an outage at now, and until
// when; with start, an armed outage starts now. f.mu must be held.
func (f *Fake) outageLocked(accountID string, now time.Time, start bool) (until time.Time, in, started bool) {
	p := f.plans[accountID]
	if p == nil {
		return time.Time{}, false, false
	}
	if start && p.outageArmed {
		p.outageArmed, p.outageUntil = false, now.Add(f.opts.OutageLength)
		started = true
	}
	return p.outageUntil, now.Before(p.outageUntil), started
}

// checkOutage answers 503 and returns false when accountID is in an
// outage, or the account's block when it is blocked (SetBlocked); start makes
// an armed outage begin with this call.
func (f *Fake) checkOutage(w http.ResponseWriter, accountID string, start bool) bool {
	if accountID == "" {
		return true
	}
	now := f.now()
	f.mu.Lock()
	until, in, started := f.outageLocked(accountID, now, start)
	blocked := 0
	if p := f.plans[accountID]; p != nil {
		blocked = p.blocked
	}
	f.mu.Unlock()
	if started {
		f.changed()
	}
	switch {
	case in:
		writeOutage(w, until.Sub(now))
		return false
	case blocked != 0:
		writeCodeAnswer(w, blocked)
		return false
	}
	return true
}

// writeOutage answers 503 with Retry-After until the outage ends.
func writeOutage(w http.ResponseWriter, left time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(left.Seconds()))))
	writeEnvelope(w, http.StatusServiceUnavailable, 1, "Internal error",
		"GetResponse is temporarily unavailable, please try again later (simulated outage)", []string{})
}

// FailTokenFor is FailToken for the calls of one client only (identified by
// the Basic user, before authentication): the next n token calls of
// clientID fail with mode (n < 0: until cleared; n == 0 or TokenOK: clear).
// A client's own switch is used before the global one.
func (f *Fake) FailTokenFor(clientID string, mode TokenFailure, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if mode == TokenOK || n == 0 {
		delete(f.tokenFailFor, clientID)
		return
	}
	f.tokenFailFor[clientID] = &failure[TokenFailure]{mode: mode, n: n}
}

// FailAPIFor is FailAPI for the calls made with tokens of one account only:
// the next n of them fail with mode (n < 0: until cleared; n == 0 or APIOK:
// clear). An account's own switch is used before the global one.
func (f *Fake) FailAPIFor(accountID string, mode APIFailure, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if mode == APIOK || n == 0 {
		delete(f.apiFailFor, accountID)
		return
	}
	f.apiFailFor[accountID] = &failure[APIFailure]{mode: mode, n: n}
}
