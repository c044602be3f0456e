package tokens

import (
	"net/http"
	"sync"
	"time"

	"github.com/grconnect/grconnect/services/getresponse"
)

// GetResponse allows each account 30,000 calls per 10 minutes, 80 a second and 10
// at once; refreshes count against the same budget as the proxy's calls. The
// engine remembers the last budget each account's answers reported and, after a
// 429, until when GetResponse asked to be left alone: a refresh for that account
// waits until then instead of spending a call GetResponse would refuse.

// Budget is what GetResponse last said of an account's rate limit.
type Budget struct {
	RateLimit getresponse.RateLimit
	// Seen is when it was said.
	Seen time.Time
	// BlockedUntil is when GetResponse lets calls through again after a 429 (zero: not blocked).
	BlockedUntil time.Time
}

type budgets struct {
	mu sync.Mutex
	m  map[string]Budget
}

// budgetKey names an account of an app's API: its MAX domain (X-Domain, "" for
// standard accounts) and account ID. The proxy's limits use the same key.
func budgetKey(apiURL, maxDomain, accountID string) string {
	return apiURL + "\x00" + maxDomain + "\x00" + accountID
}

// ObserveAnswer records what an answer from GetResponse for an account said of its
// budget.
func (t *Tokens) ObserveAnswer(apiURL, maxDomain, accountID string, status int, h http.Header) {
	t.observeBudget(apiURL, maxDomain, accountID, getresponse.ParseRateLimit(h), getresponse.BackoffAfter(status, h))
}

// observeBudget records an account's reported budget and any wait GetResponse asked for.
func (t *Tokens) observeBudget(apiURL, maxDomain, accountID string, rl getresponse.RateLimit, wait time.Duration) {
	if rl.Limit == 0 && wait <= 0 {
		return
	}
	t.budget.mu.Lock()
	defer t.budget.mu.Unlock()
	if t.budget.m == nil || len(t.budget.m) > 100_000 {
		t.budget.m = map[string]Budget{}
	}
	key := budgetKey(apiURL, maxDomain, accountID)
	b := t.budget.m[key]
	now := time.Now()
	if rl.Limit != 0 && !rl.PerSecond() {
		b.RateLimit, b.Seen = rl, now // the 10-minute window is the budget worth showing
	}
	if until := now.Add(wait); wait > 0 && until.After(b.BlockedUntil) {
		b.BlockedUntil = until
	}
	t.budget.m[key] = b
}

// AccountBudget returns what is known of an account's budget.
func (t *Tokens) AccountBudget(apiURL, maxDomain, accountID string) (Budget, bool) {
	t.budget.mu.Lock()
	defer t.budget.mu.Unlock()
	b, ok := t.budget.m[budgetKey(apiURL, maxDomain, accountID)]
	return b, ok
}

// accountBlocked reports until when GetResponse asked to leave the account alone.
func (t *Tokens) accountBlocked(apiURL, maxDomain, accountID string, now time.Time) (time.Time, bool) {
	b, ok := t.AccountBudget(apiURL, maxDomain, accountID)
	return b.BlockedUntil, ok && b.BlockedUntil.After(now)
}
