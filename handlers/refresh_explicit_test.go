package handlers_test

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestForcedRefreshAlwaysAsksGetResponse: POST …/refresh and the dashboard's
// Refresh now ask GetResponse every time — right after connecting too — and
// answer with what it said: three forced refreshes are three token calls, each
// with a new token; a 500 is not a 2xx; invalid_grant is not a 2xx and ends in
// needs_reconnect.
func TestForcedRefreshAlwaysAsksGetResponse(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	seen := map[string]bool{}
	for i := range 3 {
		r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/refresh", nil)
		got := decode[connectionAnswer](t, r)
		access, _ := f.plaintextTokens(conn.ID)
		if r.status != http.StatusOK || got.Status != models.StatusActive || seen[access] {
			t.Fatalf("forced refresh %d = %d %+v (token new: %v)", i+1, r.status, got, !seen[access])
		}
		seen[access] = true
		if n := f.fake.Count(getresponsetest.EndpointTokenRefresh); n != i+1 {
			t.Fatalf("%d forced refreshes made %d token calls", i+1, n)
		}
	}
	// The dashboard's Refresh now is the same request.
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh); n != 4 {
		t.Fatalf("the dashboard's Refresh now after three forced refreshes: %d token calls, want 4", n)
	}

	// A fresh connection, refreshed at once against a failing token endpoint.
	account := f.fake.AddAccount(getresponsetest.Account{AccountID: "A2", Email: "a2@example.com"})
	fresh := f.connect("customer-2", account)
	f.fake.FailToken(getresponsetest.TokenServerError, 1)
	wantError(t, f.call(http.MethodPost, "/api/v1/connections/"+fresh.ID+"/refresh", nil), http.StatusServiceUnavailable, "getresponse_unavailable")
	if got, _ := f.store.ConnectionByID(t.Context(), fresh.ID); got.Status != models.StatusRefreshFailing {
		t.Fatalf("after a 500: %s", got.Status)
	}
	f.fake.FailToken(getresponsetest.TokenInvalidGrantRFC, 1)
	wantError(t, f.call(http.MethodPost, "/api/v1/connections/"+fresh.ID+"/refresh", nil), http.StatusConflict, "needs_reconnect")
	if got, _ := f.store.ConnectionByID(t.Context(), fresh.ID); got.Status != models.StatusNeedsReconnect {
		t.Fatalf("after invalid_grant: %s, want needs_reconnect", got.Status)
	}
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh); n != 6 {
		t.Fatalf("%d token calls in all, want 6", n)
	}
}

// TestConcurrentForcedRefreshesShareOneCall: twenty POST …/refresh for one
// connection at once, while GetResponse takes its time, make one token call and
// all answer its outcome.
func TestConcurrentForcedRefreshesShareOneCall(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	f.fake.SetTokenLatency(300 * time.Millisecond)
	var wg sync.WaitGroup
	start := make(chan struct{})
	answers := make([]response, 20)
	for i := range answers {
		wg.Go(func() {
			<-start
			r, err := f.send(http.MethodPost, "/api/v1/connections/"+conn.ID+"/refresh", f.key, nil, nil)
			if err != nil {
				t.Error(err)
			}
			answers[i] = r
		})
	}
	close(start)
	wg.Wait()
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh); n != 1 {
		t.Fatalf("20 concurrent forced refreshes made %d token calls, want 1", n)
	}
	stored, _ := f.store.ConnectionByID(t.Context(), conn.ID)
	for i, r := range answers {
		got := decode[connectionAnswer](t, r)
		if r.status != http.StatusOK || got.ExpiresAt == nil || !got.ExpiresAt.Equal(*stored.ExpiresAt) {
			t.Fatalf("answer %d = %d %+v, want the one call's outcome (expires %v)", i, r.status, got, stored.ExpiresAt)
		}
	}
}

// TestForcedRefreshLimit: a backend looping on refresh, from eight goroutines at
// once, gets five token calls a minute for a connection; every other answer is
// 429 refresh_too_soon with Retry-After, never a 2xx without a call. The
// dashboard's Refresh now says the same.
func TestForcedRefreshLimit(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	f.fake.SetTokenLatency(20 * time.Millisecond)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		ok     int
		start  = make(chan struct{})
		before = f.fake.Count(getresponsetest.EndpointTokenRefresh)
	)
	for range 8 {
		wg.Go(func() {
			<-start
			for range 50 {
				r, err := f.send(http.MethodPost, "/api/v1/connections/"+conn.ID+"/refresh", f.key, nil, nil)
				if err != nil {
					t.Error(err)
					return
				}
				switch r.status {
				case http.StatusOK:
					mu.Lock()
					ok++
					mu.Unlock()
					continue
				case http.StatusTooManyRequests:
					e := wantError(t, r, http.StatusTooManyRequests, "refresh_too_soon")
					wait, _ := strconv.Atoi(r.header.Get("Retry-After"))
					if wait < 1 || wait > 60 || e.Error.RetryAfter != wait {
						t.Errorf("Retry-After %q, retry_after %d; want the same, 1 to 60 s", r.header.Get("Retry-After"), e.Error.RetryAfter)
					}
				default:
					t.Errorf("forced refresh = %d %s", r.status, r.body)
				}
				return
			}
			t.Error("50 forced refreshes in a row, none refused")
		})
	}
	close(start)
	wg.Wait()
	calls := f.fake.Count(getresponsetest.EndpointTokenRefresh) - before
	if calls != 5 || ok < calls {
		t.Fatalf("a looping backend made %d token calls (%d answers 200), want exactly 5", calls, ok)
	}
	r := f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
	mustContain(t, f.op.get(r.location()).body, "Not refreshed: this connection was refreshed on request 5 times in the last minute")
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh) - before; n != 5 {
		t.Fatalf("the dashboard's refused refresh made a call (%d in all)", n)
	}
}
