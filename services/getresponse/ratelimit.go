package getresponse

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// GetResponse's documented limits, per account (user).
const (
	// LimitPerSecond is the calls allowed per second.
	LimitPerSecond = 80
	// LimitPerWindow is the calls allowed per LimitWindow.
	LimitPerWindow = 30000
	// LimitWindow is the length of the long rate-limit window.
	LimitWindow = 10 * time.Minute
	// LimitParallel is the requests allowed in flight at once.
	LimitParallel = 10
)

// RateLimit is what the X-RateLimit-* headers of an answer say. Keep the one
// of an account's last answer to show its remaining budget.
type RateLimit struct {
	Limit     int           // X-RateLimit-Limit: calls per window
	Remaining int           // X-RateLimit-Remaining: calls left in the window
	Reset     time.Duration // X-RateLimit-Reset: time until the window resets
	// Window is the window the headers describe: time.Second on a per-second
	// refusal (X-RateLimit-Limit: 80, or a reset of at most a second with no
	// larger limit), else LimitWindow; 0 when Known is false.
	Window time.Duration
	Known  bool // whether any of the headers was present and readable
}

// PerSecond reports whether the headers describe the per-second window, as
// GetResponse's per-second 429s do (X-RateLimit-Limit: 80,
// X-RateLimit-Reset: 1 seconds).
func (rl RateLimit) PerSecond() bool { return rl.Window == time.Second }

// ParseRateLimit reads X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset. GetResponse sends the reset as "432 seconds"; a bare
// integer (seconds) and other units ("2 minutes", "30s") are accepted too.
// Unreadable headers are ignored.
func ParseRateLimit(h http.Header) RateLimit {
	var rl RateLimit
	limitKnown, resetKnown := false, false
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Limit"))); err == nil && n >= 0 {
		rl.Limit, rl.Known, limitKnown = n, true, true
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Remaining"))); err == nil && n >= 0 {
		rl.Remaining, rl.Known = n, true
	}
	if d, ok := parseDurationText(h.Get("X-RateLimit-Reset")); ok {
		rl.Reset, rl.Known, resetKnown = d, true, true
	}
	switch {
	case !rl.Known:
	case limitKnown && rl.Limit == LimitPerSecond,
		resetKnown && rl.Reset <= time.Second && (!limitKnown || rl.Limit <= LimitPerSecond):
		rl.Window = time.Second
	default:
		rl.Window = LimitWindow
	}
	return rl
}

// BackoffAfter says how long to leave an account alone after an answer with
// status and headers h; zero means not at all.
//
// After a 429 it is, in order of preference: Retry-After (GetResponse's word
// for this refusal); a second when the headers describe the per-second window
// or the long window still has quota left (a per-second or parallel-call
// refusal: never minutes); until the long window resets when its quota is
// spent; else a second. Never less than a second after a 429. After any
// other answer that spent the window's last call (X-RateLimit-Remaining: 0)
// it is until the reset.
func BackoffAfter(status int, h http.Header) time.Duration {
	return backoff(status, h, nil, time.Now())
}

// backoff is BackoffAfter, also reading a 1015 envelope's
// context.timeToReset when there is no Retry-After and the headers do not
// point to a short refusal.
func backoff(status int, h http.Header, env *envelope, now time.Time) time.Duration {
	rl := ParseRateLimit(h)
	limited := status == http.StatusTooManyRequests || (env != nil && env.Code == CodeQuotaReached)
	if !limited {
		if rl.Known && rl.Remaining == 0 && rl.Reset > 0 && h.Get("X-RateLimit-Remaining") != "" {
			return rl.Reset
		}
		return 0
	}
	quotaLeft := rl.Known && rl.Remaining > 0
	if d, ok := parseRetryAfter(h, now); ok {
		return max(d, time.Second)
	}
	if rl.PerSecond() || quotaLeft {
		return time.Second
	}
	if env != nil {
		if d, ok := env.timeToReset(); ok {
			return max(d, time.Second)
		}
	}
	if rl.Reset > 0 {
		return max(rl.Reset, time.Second)
	}
	return time.Second
}

// retryAfter is how long an error answer asks to wait: backoff for a 429 or
// 1015, else its Retry-After, else 0.
func retryAfter(status int, h http.Header, env *envelope, now time.Time) time.Duration {
	if status == http.StatusTooManyRequests || (env != nil && env.Code == CodeQuotaReached) {
		return backoff(status, h, env, now)
	}
	if d, ok := parseRetryAfter(h, now); ok {
		return d
	}
	return 0
}

// parseDurationText parses "432 seconds", "432", "1 second", "2 minutes",
// "30s" or "1.5 hours" into a non-negative duration.
func parseDurationText(s string) (time.Duration, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return 0, false
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch strings.TrimSpace(s[i:]) {
	case "", "s", "sec", "secs", "second", "seconds":
		unit = time.Second
	case "ms", "millisecond", "milliseconds":
		unit = time.Millisecond
	case "m", "min", "mins", "minute", "minutes":
		unit = time.Minute
	case "h", "hour", "hours":
		unit = time.Hour
	default:
		return 0, false
	}
	return time.Duration(n * float64(unit)), true
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
