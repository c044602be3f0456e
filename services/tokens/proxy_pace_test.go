package tokens

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
)

// waitQueued waits until key's account has n calls queued.
func waitQueued(t *testing.T, p *pacer, key string, n int) {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(time.Millisecond) {
		p.mu.Lock()
		got := 0
		if a := p.accounts[key]; a != nil {
			got = len(a.queue)
		}
		p.mu.Unlock()
		if got == n {
			return
		}
	}
	t.Fatalf("%d calls never queued", n)
}

// TestPacerServesAnAccountFirstComeFirstServed: with one call allowed at a time,
// queued calls go in the order they came, each as the one before it ends.
func TestPacerServesAnAccountFirstComeFirstServed(t *testing.T) {
	t.Parallel()
	p := newPacer(paceLimits{InFlight: 1, PerSecond: 1000, Window: 1 << 30, WindowLen: time.Hour}, time.Now, 10*time.Second)
	first, _, err := p.acquire(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	tickets := make(chan *paceTicket)
	for i := range 6 {
		go func() {
			tk, _, err := p.acquire(context.Background(), "a")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			tickets <- tk
		}()
		waitQueued(t, p, "a", i+1)
	}
	// Another account is not held up by this one's queue.
	if other, queued, err := p.acquire(context.Background(), "b"); err != nil || queued != 0 {
		t.Fatalf("another account waited %v (%v)", queued, err)
	} else {
		other.end()
	}
	first.end()
	for range 6 {
		(<-tickets).end()
	}
	for i, n := range order {
		if n != i {
			t.Fatalf("served in the order %v", order)
		}
	}
}

// TestPacerKeepsEverySecondUnderTheLimit: calls that end at once still count in
// their second: 12 calls at 4 a second take more than two seconds, and no second
// (from a call's start to a second after its end) holds more than 4.
func TestPacerKeepsEverySecondUnderTheLimit(t *testing.T) {
	t.Parallel()
	p := newPacer(paceLimits{InFlight: 2, PerSecond: 4, Window: 1 << 30, WindowLen: time.Hour}, time.Now, 10*time.Second)
	start := time.Now()
	var mu sync.Mutex
	var sent []time.Time
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			tk, _, err := p.acquire(context.Background(), "a")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			sent = append(sent, time.Now())
			mu.Unlock()
			tk.end()
		})
	}
	wg.Wait()
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("12 calls at 4 a second took %v", took)
	}
	for _, s := range sent {
		n := 0
		for _, o := range sent {
			if !o.Before(s) && o.Sub(s) < time.Second {
				n++
			}
		}
		if n > 4 {
			t.Fatalf("%d calls sent within a second of %v", n, s)
		}
	}
}

// TestPacerAnswersALongWaitAtOnce: after GetResponse's 429 asks for 30 s, a call
// (and the calls already queued) are refused at once with that wait; a short wait
// is waited out.
func TestPacerAnswersALongWaitAtOnce(t *testing.T) {
	t.Parallel()
	p := newPacer(getResponseLimits, time.Now, 2*time.Second)
	tk, _, _ := p.acquire(context.Background(), "a")
	queued := make(chan error, 1)
	hold := make([]*paceTicket, 0, 9)
	for range 9 {
		h, _, _ := p.acquire(context.Background(), "a")
		hold = append(hold, h)
	}
	go func() { _, _, err := p.acquire(context.Background(), "a"); queued <- err }()
	waitQueued(t, p, "a", 1)
	tk.observe(http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}})
	var rl *RateLimitedError
	select {
	case err := <-queued:
		if !errors.As(err, &rl) || rl.Busy || rl.RetryAfter < 29*time.Second {
			t.Fatalf("the queued call got %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the queued call still waits")
	}
	start := time.Now()
	if _, _, err := p.acquire(context.Background(), "a"); !errors.As(err, &rl) || rl.RetryAfter < 29*time.Second || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("a new call got %v after %v", err, time.Since(start))
	}
	tk.end()
	for _, h := range hold {
		h.end()
	}

	// One second asked for, under the maximum wait: the call waits and goes.
	q := newPacer(getResponseLimits, time.Now, 2*time.Second)
	tk, _, _ = q.acquire(context.Background(), "a")
	tk.observe(http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	tk.end()
	next, waited, err := q.acquire(context.Background(), "a")
	if err != nil || waited < 900*time.Millisecond {
		t.Fatalf("after a 1 s back-off: waited %v, %v", waited, err)
	}
	next.end()
}

// TestPacerGivesUpAtTheMaximumWait: a call that its account's limits do not reach
// in time is refused as busy, saying how long it waited.
func TestPacerGivesUpAtTheMaximumWait(t *testing.T) {
	t.Parallel()
	p := newPacer(paceLimits{InFlight: 1, PerSecond: 80, Window: 1 << 30, WindowLen: time.Hour}, time.Now, 150*time.Millisecond)
	tk, _, _ := p.acquire(context.Background(), "a")
	defer tk.end()
	_, _, err := p.acquire(context.Background(), "a")
	var rl *RateLimitedError
	if !errors.As(err, &rl) || !rl.Busy || rl.Queued < 140*time.Millisecond || rl.RetryAfter <= 0 {
		t.Fatalf("got %v", err)
	}
	// With no wait allowed, it is refused at once.
	p0 := newPacer(paceLimits{InFlight: 1, PerSecond: 80, Window: 1 << 30, WindowLen: time.Hour}, time.Now, 0)
	tk0, _, _ := p0.acquire(context.Background(), "a")
	defer tk0.end()
	if _, _, err := p0.acquire(context.Background(), "a"); !errors.As(err, &rl) || !rl.Busy || rl.Queued != 0 {
		t.Fatalf("without a wait: %v", err)
	}
}

// TestPacerKeepsTheWindow: once GetResponse says the window has 3 calls left, the
// fourth waits for its reset.
func TestPacerKeepsTheWindow(t *testing.T) {
	t.Parallel()
	p := newPacer(getResponseLimits, time.Now, 5*time.Second)
	tk, _, _ := p.acquire(context.Background(), "a")
	tk.observe(http.StatusOK, http.Header{"X-Ratelimit-Limit": {"30000"}, "X-Ratelimit-Remaining": {"3"}, "X-Ratelimit-Reset": {"2 seconds"}})
	tk.end()
	for range 3 {
		tk, waited, err := p.acquire(context.Background(), "a")
		if err != nil || waited > 100*time.Millisecond {
			t.Fatalf("within the window: waited %v, %v", waited, err)
		}
		tk.end()
	}
	tk, waited, err := p.acquire(context.Background(), "a")
	if err != nil || waited < time.Second {
		t.Fatalf("past the window's calls: waited %v, %v", waited, err)
	}
	tk.end()
}

// TestFleetGrant: each replica's share of an account is its max-min fair part,
// the same on every replica, and never more than the others leave free.
func TestFleetGrant(t *testing.T) {
	t.Parallel()
	share := func(replica string, want, held int) models.ProxyShare {
		return models.ProxyShare{Replica: replica, Want: want, Held: held}
	}
	for _, c := range []struct {
		name   string
		want   int
		others []models.ProxyShare
		grant  int
	}{
		{"alone", 10, nil, 10},
		{"alone and idle keeps one", 0, nil, 1},
		{"two busy: half each", 10, []models.ProxyShare{share("b", 10, 5)}, 5},
		{"the other holds all until its calls end", 10, []models.ProxyShare{share("b", 10, 10)}, 0},
		{"the other wants little", 10, []models.ProxyShare{share("b", 2, 2)}, 8},
		{"I want little", 3, []models.ProxyShare{share("b", 10, 7)}, 3},
		{"three busy", 10, []models.ProxyShare{share("b", 10, 3), share("c", 10, 4)}, 3},
		{"another replica idle, holding one", 10, []models.ProxyShare{share("b", 0, 1)}, 9},
	} {
		if got := fleetGrant(10, "a", c.want, c.others); got != c.grant {
			t.Errorf("%s: %d, want %d", c.name, got, c.grant)
		}
	}
	// Every replica computes the same fair parts: with three replicas wanting all,
	// the parts add up to the limit.
	all := []models.ProxyShare{share("a", 10, 0), share("b", 10, 0), share("c", 10, 0)}
	sum := 0
	for i, me := range all {
		others := append(append([]models.ProxyShare{}, all[:i]...), all[i+1:]...)
		sum += fleetGrant(10, me.Replica, me.Want, others)
	}
	if sum != 10 {
		t.Fatalf("the fair parts add up to %d", sum)
	}
}

// TestPacerWaitsForItsShare: on a fleet an account starts with no share; a call
// asks for one at once and goes when the fleet grants it, and what GetResponse
// said of the window before does not count against a process without a share.
func TestPacerWaitsForItsShare(t *testing.T) {
	t.Parallel()
	p := newPacer(getResponseLimits, time.Now, 2*time.Second)
	p.shared = true
	poked := make(chan struct{}, 10)
	p.poke = func() { poked <- struct{}{} }
	// The account is known, with a window far from spent, then loses its share.
	p.setShares(map[string]int{}, nil)
	p.mu.Lock()
	a := p.account("a")
	a.windowKnown, a.windowLeft, a.windowReset = true, 100, time.Now().Add(time.Minute)
	p.mu.Unlock()
	got := make(chan error, 1)
	go func() {
		tk, _, err := p.acquire(context.Background(), "a")
		if err == nil {
			tk.end()
		}
		got <- err
	}()
	select {
	case <-poked:
	case <-time.After(time.Second):
		t.Fatal("the call did not ask the fleet for a share")
	}
	select {
	case err := <-got:
		t.Fatalf("the call went without a share: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	p.setShares(map[string]int{"a": 3}, nil)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("the call still waits after its share came")
	}
}

// demandOf returns what the pacer asks of the fleet for key.
func demandOf(t *testing.T, p *pacer, key string) paceDemand {
	t.Helper()
	for _, d := range p.demand() {
		if d.key == key {
			return d
		}
	}
	t.Fatalf("no demand for %s", key)
	return paceDemand{}
}

// TestPacerHoldsTheShareInForce: until the fleet's new share is set, calls may go
// under the old one, so the slots a replica publishes as held include it: a
// replica with ten slots and no call in flight still holds ten, and one slot once
// its share is one.
func TestPacerHoldsTheShareInForce(t *testing.T) {
	t.Parallel()
	p := newPacer(getResponseLimits, time.Now, 2*time.Second)
	p.shared = true
	p.mu.Lock()
	p.account("a")
	p.mu.Unlock()
	p.setShares(map[string]int{"a": 10}, nil)
	if d := demandOf(t, p, "a"); d.held != 10 || d.want != 0 {
		t.Fatalf("with a share of ten and nothing in flight: %+v, want held 10", d)
	}
	p.setShares(map[string]int{"a": 1}, nil)
	if d := demandOf(t, p, "a"); d.held != 1 {
		t.Fatalf("with a share of one: %+v, want held 1", d)
	}
}

// TestPacerWithoutWaitingAsksForWhatItRefused: on a fleet with no waiting
// (maxWait 0) an account starts with no share, so its first calls are refused at
// once; they ask the fleet, count in what the account wants (once), and the calls
// after the grant go.
func TestPacerWithoutWaitingAsksForWhatItRefused(t *testing.T) {
	t.Parallel()
	p := newPacer(getResponseLimits, time.Now, 0)
	p.shared = true
	poked := make(chan struct{}, 10)
	p.poke = func() { poked <- struct{}{} }
	for range 5 {
		var rl *RateLimitedError
		if _, _, err := p.acquire(context.Background(), "a"); !errors.As(err, &rl) || !rl.Busy {
			t.Fatalf("a call without a share: %v, want a busy 429", err)
		}
	}
	if len(poked) == 0 {
		t.Fatal("the refused calls did not ask the fleet for a share")
	}
	if d := demandOf(t, p, "a"); d.want != 5 {
		t.Fatalf("after five refused calls: %+v, want 5", d)
	}
	if d := demandOf(t, p, "a"); d.want != 0 {
		t.Fatalf("the refused calls counted twice: %+v", d)
	}
	p.setShares(map[string]int{"a": 5}, nil)
	var tickets []*paceTicket
	for range 5 {
		tk, _, err := p.acquire(context.Background(), "a")
		if err != nil {
			t.Fatalf("a call with a share of five: %v", err)
		}
		tickets = append(tickets, tk)
	}
	for _, tk := range tickets {
		tk.end()
	}
}
