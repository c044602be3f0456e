package getresponse_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

func TestParseRateLimit(t *testing.T) {
	const long = getresponse.LimitWindow
	tests := []struct {
		name                 string
		limit, remain, reset string
		want                 getresponse.RateLimit
	}{
		{"getresponse form", "30000", "29995", "432 seconds", getresponse.RateLimit{Limit: 30000, Remaining: 29995, Reset: 432 * time.Second, Window: long, Known: true}},
		{"per-second 429", "80", "0", "1 seconds", getresponse.RateLimit{Limit: 80, Remaining: 0, Reset: time.Second, Window: time.Second, Known: true}},
		{"per-second limit, long reset", "80", "0", "432 seconds", getresponse.RateLimit{Limit: 80, Reset: 432 * time.Second, Window: time.Second, Known: true}},
		{"bare integer reset", "80", "0", "1", getresponse.RateLimit{Limit: 80, Remaining: 0, Reset: time.Second, Window: time.Second, Known: true}},
		{"singular unit, last second of the window", "30000", "1", "1 second", getresponse.RateLimit{Limit: 30000, Remaining: 1, Reset: time.Second, Window: long, Known: true}},
		{"no limit, reset of a second", "", "0", "1 seconds", getresponse.RateLimit{Reset: time.Second, Window: time.Second, Known: true}},
		{"minutes", "", "", "2 minutes", getresponse.RateLimit{Reset: 2 * time.Minute, Window: long, Known: true}},
		{"go-ish unit", "", "", "30s", getresponse.RateLimit{Reset: 30 * time.Second, Window: long, Known: true}},
		{"spaces", " 30000 ", " 12 ", " 100 seconds ", getresponse.RateLimit{Limit: 30000, Remaining: 12, Reset: 100 * time.Second, Window: long, Known: true}},
		{"absent", "", "", "", getresponse.RateLimit{}},
		{"garbage", "lots", "-", "soon", getresponse.RateLimit{}},
		{"negative numbers", "-1", "-5", "-5 seconds", getresponse.RateLimit{}},
		{"only remaining", "", "7", "", getresponse.RateLimit{Remaining: 7, Window: long, Known: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			set := func(k, v string) {
				if v != "" {
					h.Set(k, v)
				}
			}
			set("X-RateLimit-Limit", tt.limit)
			set("X-RateLimit-Remaining", tt.remain)
			set("X-RateLimit-Reset", tt.reset)
			got := getresponse.ParseRateLimit(h)
			if got != tt.want {
				t.Errorf("ParseRateLimit() = %+v, want %+v", got, tt.want)
			}
			if got.PerSecond() != (tt.want.Window == time.Second) {
				t.Errorf("PerSecond() = %v", got.PerSecond())
			}
		})
	}
}

func TestBackoffAfter(t *testing.T) {
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name     string
		status   int
		header   map[string]string
		min, max time.Duration // the wait is exact unless an HTTP date makes it approximate
	}{
		{"per-second 429 as reported live", 429, map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "80", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1 seconds"}, time.Second, time.Second},
		{"per-second 429 carrying the 10-minute reset: Retry-After wins", 429, map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "30000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "100 seconds"}, time.Second, time.Second},
		{"per-second headers without Retry-After", 429, map[string]string{"X-RateLimit-Limit": "80", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1 seconds"}, time.Second, time.Second},
		{"per-second limit with a 10-minute reset, no Retry-After", 429, map[string]string{"X-RateLimit-Limit": "80", "X-RateLimit-Reset": "432 seconds"}, time.Second, time.Second},
		{"quota left: a per-second or parallel refusal", 429, map[string]string{"X-RateLimit-Limit": "30000", "X-RateLimit-Remaining": "29000", "X-RateLimit-Reset": "400 seconds"}, time.Second, time.Second},
		{"quota spent, no Retry-After: until the window resets", 429, map[string]string{"X-RateLimit-Limit": "30000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "432 seconds"}, 432 * time.Second, 432 * time.Second},
		{"a longer Retry-After wins too", 429, map[string]string{"Retry-After": "7", "X-RateLimit-Remaining": "29000", "X-RateLimit-Reset": "400 seconds"}, 7 * time.Second, 7 * time.Second},
		{"Retry-After as an HTTP date", 429, map[string]string{"Retry-After": httpDate}, 85 * time.Second, 90 * time.Second},
		{"Retry-After 0: at least a second", 429, map[string]string{"Retry-After": "0"}, time.Second, time.Second},
		{"unreadable Retry-After", 429, map[string]string{"Retry-After": "soon", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "50 seconds"}, 50 * time.Second, 50 * time.Second},
		{"bare 429", 429, nil, time.Second, time.Second},
		{"the window's last call", 200, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "42 seconds"}, 42 * time.Second, 42 * time.Second},
		{"an ordinary answer", 200, map[string]string{"X-RateLimit-Remaining": "29999", "X-RateLimit-Reset": "42 seconds"}, 0, 0},
		{"an ordinary answer without Remaining", 200, map[string]string{"X-RateLimit-Reset": "42 seconds"}, 0, 0},
		{"an error with no limit headers", 500, nil, 0, 0},
		{"a 503 with Retry-After is not a rate limit", 503, map[string]string{"Retry-After": "30"}, 0, 0},
	} {
		h := http.Header{}
		for k, v := range tc.header {
			h.Set(k, v)
		}
		if got := getresponse.BackoffAfter(tc.status, h); got < tc.min || got > tc.max {
			t.Errorf("%s: %v, want %v..%v", tc.name, got, tc.min, tc.max)
		}
	}
}

// TestRateLimitOfTokenAnswers: a refresh reports the account's budget,
// success or failure, since refreshes count against it.
func TestRateLimitOfTokenAnswers(t *testing.T) {
	s, app := newFake(t, getresponsetest.Options{WindowCalls: 3, PerSecond: -1})
	c := getresponse.New(s.Client())
	tok := connect(t, c, s, app)
	for i, want := range []int{2, 1, 0} {
		next, err := c.Refresh(context.Background(), app, tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		rl := next.RateLimit
		if !rl.Known || rl.Limit != 3 || rl.Remaining != want || rl.Window != getresponse.LimitWindow || rl.Reset <= 0 || rl.Reset > 10*time.Minute {
			t.Errorf("refresh %d: RateLimit = %+v, want %d remaining", i, rl, want)
		}
	}
	_, err := c.Refresh(context.Background(), app, tok.RefreshToken)
	var te *getresponse.TokenError
	if !errors.As(err, &te) || te.Kind != getresponse.KindRateLimited || te.RateLimit.Remaining != 0 || te.RateLimit.Limit != 3 {
		t.Fatalf("fourth refresh: %#v", err)
	}
	// No Retry-After: the refusal's own time to reset, the same as the window's.
	if te.RetryAfter != te.RateLimit.Reset || te.RetryAfter <= 0 {
		t.Errorf("RetryAfter = %v, RateLimit.Reset = %v", te.RetryAfter, te.RateLimit.Reset)
	}
	if got := s.Stat(getresponsetest.StatRefusedWindow); got != 1 {
		t.Errorf("StatRefusedWindow = %d, want 1", got)
	}
}
