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

// inFlight counts concurrent requests through a transport and remembers the peak.
type inFlight struct {
	next      http.RoundTripper
	now, peak atomic.Int64
}

func (c *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.now.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	defer c.now.Add(-1)
	res, err := c.next.RoundTrip(r)
	if err == nil {
		// Count until the body is read: the call is in flight until then.
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		res.Body = io.NopCloser(&bytesReader{b: body})
	}
	return res, err
}

type bytesReader struct{ b []byte }

func (r *bytesReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// TestFleetProxyLimitsAcrossReplicas: two replicas on one PostgreSQL database never
// have more than ten calls in flight for one GetResponse account together, and a
// 429 one of them meets makes the other wait too.
func TestFleetProxyLimitsAcrossReplicas(t *testing.T) {
	if !modelstest.Postgres() {
		t.Skip("fleet-wide proxy limits live in PostgreSQL (one SQLite process keeps them in memory); CI's PostgreSQL pass runs this test")
	}
	e := newEngine(t, getresponsetest.Options{})
	e.Clock.Advance(0)
	c := e.Seed(models.StatusActive, time.Now().Add(time.Hour), nil)
	other, err := models.Open(e.DBPath, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	counter := &inFlight{next: http.DefaultTransport}
	gr := getresponse.New(&http.Client{Transport: counter, Timeout: 20 * time.Second})
	replicas := []*tokens.Proxy{
		tokens.NewProxy(e.Tokens, e.Store, gr),
		tokens.NewProxy(e.NewTokens(other), other, gr),
	}
	e.Fake.SetAPILatency(150 * time.Millisecond)
	call := func(p *tokens.Proxy) (int, error) {
		res, err := p.Do(context.Background(), tokens.ProxyRequest{ConnectionID: c.ID, Method: http.MethodGet, Path: "/from-fields", ContentLength: -1, Actor: "api:test"})
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i := range 30 {
		wg.Go(func() {
			if status, err := call(replicas[i%2]); err != nil || status != http.StatusOK {
				failures.Add(1)
				t.Errorf("call %d: %d, %v", i, status, err)
			}
		})
	}
	wg.Wait()
	if peak := counter.peak.Load(); peak > models.ProxySlots || peak < 2 {
		t.Fatalf("peak of %d calls in flight for one account across two replicas, want at most %d (and some parallelism)", peak, models.ProxySlots)
	}
	if failures.Load() > 0 {
		t.Fatalf("%d calls failed", failures.Load())
	}

	// A 429 met by replica 0 stops replica 1 from calling GetResponse until the reset.
	e.Fake.SetAPILatency(0)
	e.Fake.FailAPI(getresponsetest.APIRateLimited, 1)
	if status, err := call(replicas[0]); err != nil || status != http.StatusTooManyRequests {
		t.Fatalf("first call after the switch: %d, %v; want GetResponse's 429", status, err)
	}
	before := e.Fake.Count(getresponsetest.EndpointFromFields)
	_, err = call(replicas[1])
	var rl *tokens.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("the other replica answered %v; want a local 429", err)
	}
	if e.Fake.Count(getresponsetest.EndpointFromFields) != before {
		t.Fatal("the other replica still called GetResponse inside the back-off window")
	}
}
