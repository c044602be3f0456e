package tokens_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/tokens"
)

// TestFleetProxyLimitsAcrossReplicas: two replicas on one PostgreSQL database
// share one GetResponse account's limits. 200 calls at once, half through each,
// against a fake GetResponse that enforces its limits: never more than ten in
// flight together, not one refusal by GetResponse, every call answered 200, and
// both replicas had calls in flight at once. A 429 one replica meets makes the
// other answer locally.
func TestFleetProxyLimitsAcrossReplicas(t *testing.T) {
	t.Parallel()
	if !modelstest.Postgres() {
		t.Skip("fleet-wide proxy limits live in PostgreSQL (one SQLite process keeps them in memory); CI's PostgreSQL pass runs this test")
	}
	e := newEngine(t, getresponsetest.Options{Now: time.Now})
	c := e.Seed(models.StatusActive, time.Now().Add(time.Hour), nil)
	other, err := models.Open(e.DBPath, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	gr := getresponse.New(&http.Client{Timeout: 20 * time.Second})
	replicas := []*tokens.Proxy{
		tokens.NewProxy(e.Tokens, e.Store, gr, 20*time.Second),
		tokens.NewProxy(e.NewTokens(other), other, gr, 20*time.Second),
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	for _, p := range replicas {
		running.Go(func() { p.Run(ctx) })
	}
	defer running.Wait()
	defer cancel()
	call := func(p *tokens.Proxy) (*tokens.ProxyResponse, error) {
		res, err := p.Do(context.Background(), tokens.ProxyRequest{ConnectionID: c.ID, Method: http.MethodGet, Path: "/from-fields", ContentLength: -1, Actor: "api:test"})
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res, nil
	}
	e.Fake.SetAPILatency(40 * time.Millisecond)
	e.Fake.ResetCounts()
	var wg sync.WaitGroup
	var inFlight [2]atomic.Int64
	var overlap atomic.Bool
	for i := range 200 {
		wg.Go(func() {
			n := inFlight[i%2].Add(1)
			if n > 0 && inFlight[1-i%2].Load() > 0 {
				overlap.Store(true)
			}
			res, err := call(replicas[i%2])
			inFlight[i%2].Add(-1)
			if err != nil || res.StatusCode != http.StatusOK {
				t.Errorf("call %d: %v %v", i, res, err)
			}
		})
	}
	wg.Wait()
	refused := e.Fake.Stat(getresponsetest.StatRefusedParallel) + e.Fake.Stat(getresponsetest.StatRefusedPerSecond) + e.Fake.Stat(getresponsetest.StatRefusedWindow)
	if peak := e.Fake.PeakInFlight(c.AccountID); peak > tokens.MaxInFlightPerAccount || peak < 2 {
		t.Errorf("peak of %d calls in flight for one account across two replicas, want at most %d (and some parallelism)", peak, tokens.MaxInFlightPerAccount)
	}
	if refused > 0 || e.Fake.Count(getresponsetest.EndpointFromFields) != 200 {
		t.Errorf("GetResponse refused %d of %d calls", refused, e.Fake.Count(getresponsetest.EndpointFromFields))
	}
	if !overlap.Load() {
		t.Error("the two replicas never had calls in flight at once")
	}

	// A 429 met by replica 0 stops replica 1 from calling GetResponse until the reset.
	e.Fake.SetAPILatency(0)
	e.Fake.FailAPI(getresponsetest.APIRateLimitedWindow, 1)
	if res, err := call(replicas[0]); err != nil || res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("first call after the switch: %v, %v; want GetResponse's 429", res, err)
	}
	time.Sleep(600 * time.Millisecond) // two rebalancings
	before := e.Fake.Count(getresponsetest.EndpointFromFields)
	_, err = call(replicas[1])
	var rl *tokens.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter < 90*time.Second {
		t.Fatalf("the other replica answered %v; want a local 429 until the window's reset", err)
	}
	if e.Fake.Count(getresponsetest.EndpointFromFields) != before {
		t.Fatal("the other replica still called GetResponse inside the back-off window")
	}
}
