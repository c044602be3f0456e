package getresponsetest

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestPerSecondLimit: the 81st call of an account within one second (by the
// Fake's clock) is refused as reported live; the next second starts afresh;
// another account has its own budget.
func TestPerSecondLimit(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	s := newTestServer(t, Options{Now: clk.Now})
	access, _ := tokens(t, s)
	for i := range PerSecondLimit {
		if a := get(t, s, s.APIURL()+"/accounts", bearer(access)); a.status != http.StatusOK {
			t.Fatalf("call %d: %d", i+1, a.status)
		}
	}
	a := get(t, s, s.APIURL()+"/accounts", bearer(access))
	m := a.json(t)
	if a.status != http.StatusTooManyRequests || m["code"] != float64(1015) {
		t.Fatalf("call 81: %d %s", a.status, a.body)
	}
	for k, want := range map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "80", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1 seconds"} {
		if got := a.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if ctx := m["context"].(map[string]any); ctx["currentLimit"] != float64(80) || ctx["timeToReset"] != "1 seconds" {
		t.Errorf("context = %v", ctx)
	}
	if got := s.Stat(StatRefusedPerSecond); got != 1 {
		t.Errorf("StatRefusedPerSecond = %d, want 1", got)
	}

	// Another account is not limited by John's calls.
	redirect, _ := s.Approve(clientID, "s", "Zr2Tx")
	alex := exchange(t, s, codeFrom(t, redirect)).json(t)["access_token"].(string)
	if a := get(t, s, s.APIURL()+"/accounts", bearer(alex)); a.status != http.StatusOK {
		t.Errorf("another account: %d", a.status)
	}

	clk.Add(time.Second)
	a = get(t, s, s.APIURL()+"/accounts", bearer(access))
	if a.status != http.StatusOK || a.header.Get("X-RateLimit-Limit") != "30000" || a.header.Get("X-RateLimit-Remaining") != "29919" {
		t.Errorf("next second: %d %v", a.status, a.header)
	}
}

// TestRefreshesCountAgainstTheLimits: a refresh uses the account's budget,
// and a refused refresh rotates nothing.
func TestRefreshesCountAgainstTheLimits(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	s := newTestServer(t, Options{Now: clk.Now, PerSecond: 2, Rotation: RotationStrict})
	access, refresh := tokens(t, s)
	a := tokenCall(t, s, refreshForm(refresh), nil)
	if a.status != http.StatusOK || a.header.Get("X-RateLimit-Remaining") != "29999" {
		t.Fatalf("refresh: %d %v", a.status, a.header)
	}
	refresh = a.json(t)["refresh_token"].(string)
	if a := get(t, s, s.APIURL()+"/accounts", bearer(access)); a.status != http.StatusOK {
		t.Fatalf("API call: %d", a.status)
	}
	a = tokenCall(t, s, refreshForm(refresh), nil)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" || a.header.Get("X-RateLimit-Limit") != "2" {
		t.Fatalf("third call in the second: %d %v %s", a.status, a.header, a.body)
	}
	clk.Add(time.Second)
	if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusOK {
		t.Errorf("the refused refresh killed the token: %d %s", a.status, a.body)
	}
	if got := s.Stat(StatDeadRefreshToken); got != 0 {
		t.Errorf("StatDeadRefreshToken = %d, want 0", got)
	}
}

// TestWindowLimit: the 10-minute window refuses with its own headers, no
// Retry-After, and context.timeToReset; it resets by the clock.
func TestWindowLimit(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	s := newTestServer(t, Options{Now: clk.Now, WindowCalls: 3, PerSecond: -1})
	access, _ := tokens(t, s)
	for i := range 3 {
		a := get(t, s, s.APIURL()+"/accounts", bearer(access))
		if a.status != http.StatusOK || a.header.Get("X-RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("call %d: %d %v", i+1, a.status, a.header)
		}
	}
	clk.Add(168 * time.Second)
	a := get(t, s, s.APIURL()+"/accounts", bearer(access))
	m := a.json(t)
	if a.status != http.StatusTooManyRequests || m["code"] != float64(1015) || a.header.Get("Retry-After") != "" ||
		a.header.Get("X-RateLimit-Limit") != "3" || a.header.Get("X-RateLimit-Remaining") != "0" || a.header.Get("X-RateLimit-Reset") != "432 seconds" {
		t.Fatalf("call 4: %d %v %s", a.status, a.header, a.body)
	}
	if ctx := m["context"].(map[string]any); ctx["timeToReset"] != "432 seconds" || ctx["currentLimit"] != float64(3) {
		t.Errorf("context = %v", ctx)
	}
	if s.Stat(StatRefusedWindow) != 1 || s.Stat(StatRefusedPerSecond) != 0 {
		t.Errorf("stats: window %d, per second %d", s.Stat(StatRefusedWindow), s.Stat(StatRefusedPerSecond))
	}
	clk.Add(432 * time.Second)
	if a := get(t, s, s.APIURL()+"/accounts", bearer(access)); a.status != http.StatusOK || a.header.Get("X-RateLimit-Remaining") != "2" {
		t.Errorf("after the reset: %d %v", a.status, a.header)
	}
}

// TestParallelLimit: with 10 requests of an account in flight, the 11th
// (an API call or a refresh) is refused; other accounts are not; the peak
// and the refusals are counted exactly.
func TestParallelLimit(t *testing.T) {
	s := newTestServer(t, Options{})
	access, refresh := tokens(t, s)
	redirect, _ := s.Approve(clientID, "s", "Zr2Tx")
	alex := exchange(t, s, codeFrom(t, redirect)).json(t)["access_token"].(string)

	s.SetAPILatency(time.Hour) // held until their contexts end
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	hold := func(token string) {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.APIURL()+"/from-fields", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			if res, err := s.Client().Do(req); err == nil {
				res.Body.Close()
				t.Errorf("a held request was answered %d", res.StatusCode)
			}
		})
	}
	for range ParallelLimit {
		hold(access)
	}
	hold(alex)
	waitFor(t, func() bool { return s.InFlight(DefaultAccountID) == ParallelLimit && s.InFlight("Zr2Tx") == 1 })

	a := get(t, s, s.APIURL()+"/accounts", bearer(access))
	if a.status != http.StatusTooManyRequests || a.json(t)["code"] != float64(1015) || a.header.Get("Retry-After") != "1" ||
		a.header.Get("X-RateLimit-Limit") != "30000" {
		t.Errorf("11th API call: %d %v %s", a.status, a.header, a.body)
	}
	if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusTooManyRequests {
		t.Errorf("a refresh beside 10 calls: %d", a.status)
	}
	cancel()
	wg.Wait()
	waitFor(t, func() bool { return s.InFlight(DefaultAccountID) == 0 })
	s.SetAPILatency(0)

	if got := s.Stat(StatRefusedParallel); got != 2 {
		t.Errorf("StatRefusedParallel = %d, want 2", got)
	}
	if got := s.PeakInFlight(DefaultAccountID); got != ParallelLimit {
		t.Errorf("PeakInFlight = %d, want %d", got, ParallelLimit)
	}
	if got := s.PeakInFlight("Zr2Tx"); got != 1 {
		t.Errorf("PeakInFlight(other) = %d, want 1", got)
	}
	if a := get(t, s, s.APIURL()+"/accounts", bearer(access)); a.status != http.StatusOK {
		t.Errorf("after the held calls: %d", a.status)
	}
	s.ResetCounts()
	if s.PeakInFlight(DefaultAccountID) != 0 || s.Stat(StatRefusedParallel) != 0 {
		t.Error("ResetCounts left the peak or the refusals")
	}
}

// TestLimitsConfigurable: a small Parallel and no per-second limit.
func TestLimitsConfigurable(t *testing.T) {
	s := newTestServer(t, Options{Parallel: 1, PerSecond: -1})
	access, _ := tokens(t, s)
	s.FailAPI(APIHang, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.APIURL()+"/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+access)
		if res, err := s.Client().Do(req); err == nil {
			res.Body.Close()
		}
	}()
	waitFor(t, func() bool { return s.InFlight(DefaultAccountID) == 1 })
	if a := get(t, s, s.APIURL()+"/accounts", bearer(access)); a.status != http.StatusTooManyRequests {
		t.Errorf("second parallel call with Parallel 1: %d", a.status)
	}
	cancel()
	<-done
	waitFor(t, func() bool { return s.InFlight(DefaultAccountID) == 0 })
	for i := range 200 {
		if a := get(t, s, s.APIURL()+"/accounts", bearer(access)); a.status != http.StatusOK {
			t.Fatalf("call %d without a per-second limit: %d", i, a.status)
		}
	}
}
