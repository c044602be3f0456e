package getresponse

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RateLimit is what the X-RateLimit-* headers of an answer say.
type RateLimit struct {
	Limit     int           // X-RateLimit-Limit: calls per window
	Remaining int           // X-RateLimit-Remaining: calls left in the window
	Reset     time.Duration // X-RateLimit-Reset: time until the window resets
	Known     bool          // whether any of the headers was present and readable
}

// ParseRateLimit reads X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset. GetResponse sends the reset as "432 seconds"; a bare
// integer (seconds) and other units ("2 minutes", "30s") are accepted too.
// Unreadable headers are ignored.
func ParseRateLimit(h http.Header) RateLimit {
	var rl RateLimit
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Limit"))); err == nil {
		rl.Limit, rl.Known = n, true
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Remaining"))); err == nil {
		rl.Remaining, rl.Known = n, true
	}
	if d, ok := parseDurationText(h.Get("X-RateLimit-Reset")); ok {
		rl.Reset, rl.Known = d, true
	}
	return rl
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

// waitHint is the Retry-After of an answer, else its X-RateLimit-Reset.
func waitHint(h http.Header) time.Duration {
	if d, ok := parseRetryAfter(h, time.Now()); ok {
		return d
	}
	if d, ok := parseDurationText(h.Get("X-RateLimit-Reset")); ok {
		return d
	}
	return 0
}
