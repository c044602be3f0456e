package getresponsetest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// callbacksCall sends one request to /v3/accounts/callbacks with token.
func callbacksCall(t *testing.T, s *Server, method, token, body string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.APIURL()+"/accounts/callbacks", r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return do(t, s, req)
}

// TestCallbacksAPIKeepsOneSettingPerAccount holds /v3/accounts/callbacks to the
// OpenAPI document: GET is 404 while callbacks are off; POST needs a url while
// they are off, takes an object of booleans, answers the setting, and updates
// only what it names; DELETE turns them off (204); each account has its own; a
// request without a valid token is 401, code 1014.
func TestCallbacksAPIKeepsOneSettingPerAccount(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{})
	other := s.AddAccount(Account{AccountID: "B2", Email: "b2@example.com"})
	token, _, err := s.IssueTokens(clientID, DefaultAccountID)
	if err != nil {
		t.Fatal(err)
	}
	otherToken, _, _ := s.IssueTokens(clientID, other)

	if a := callbacksCall(t, s, http.MethodGet, token, ""); a.status != http.StatusNotFound || a.json(t)["code"] != float64(1013) {
		t.Fatalf("GET while off = %d %s", a.status, a.body)
	}
	for _, body := range []string{`{"actions":{"open":true}}`, `{"url":"not a url"}`, `{"url":"ftp://x.example/cb"}`, `{"url":"https://x.example/cb","actions":{"open":"yes"}}`, `[]`} {
		if a := callbacksCall(t, s, http.MethodPost, token, body); a.status != http.StatusBadRequest || a.json(t)["code"] != float64(1000) {
			t.Fatalf("POST %s = %d %s", body, a.status, a.body)
		}
	}
	a := callbacksCall(t, s, http.MethodPost, token, `{"url":"https://x.example/cb?k=1","actions":{"open":true,"goal":true,"unknown":true}}`)
	var set struct {
		URL     string          `json:"url"`
		Actions map[string]bool `json:"actions"`
	}
	if err := json.Unmarshal([]byte(a.body), &set); a.status != http.StatusOK || err != nil || set.URL != "https://x.example/cb?k=1" ||
		len(set.Actions) != len(CallbackActions) || !set.Actions["open"] || !set.Actions["goal"] || set.Actions["click"] {
		t.Fatalf("POST = %d %s", a.status, a.body)
	}
	a = callbacksCall(t, s, http.MethodPost, token, `{"actions":{"click":true,"open":false}}`)
	json.Unmarshal([]byte(a.body), &set)
	if a.status != http.StatusOK || set.URL != "https://x.example/cb?k=1" || set.Actions["open"] || !set.Actions["click"] || !set.Actions["goal"] {
		t.Fatalf("update = %d %s", a.status, a.body)
	}
	if a := callbacksCall(t, s, http.MethodGet, token, ""); a.status != http.StatusOK || !strings.Contains(a.body, `"click":true`) {
		t.Fatalf("GET = %d %s", a.status, a.body)
	}
	if a := callbacksCall(t, s, http.MethodGet, otherToken, ""); a.status != http.StatusNotFound {
		t.Fatalf("another account's GET = %d", a.status)
	}
	if a := callbacksCall(t, s, http.MethodGet, "nope", ""); a.status != http.StatusUnauthorized || a.json(t)["code"] != float64(1014) {
		t.Fatalf("without a valid token = %d", a.status)
	}
	if a := callbacksCall(t, s, http.MethodDelete, token, ""); a.status != http.StatusNoContent || a.body != "" {
		t.Fatalf("DELETE = %d %q", a.status, a.body)
	}
	if _, on := s.Callbacks(DefaultAccountID); on {
		t.Fatal("callbacks still on after DELETE")
	}
	if a := callbacksCall(t, s, http.MethodDelete, token, ""); a.status != http.StatusNoContent {
		t.Fatalf("DELETE while off = %d", a.status)
	}
	if n := s.Count(EndpointCallbacks); n != 13 {
		t.Fatalf("EndpointCallbacks counted %d calls, want 13", n)
	}
	// The setting survives a snapshot.
	s.SetCallbacks(other, "https://y.example/cb", "survey")
	snap, _ := s.Snapshot()
	restored := New(Options{})
	if err := restored.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if c, on := restored.Callbacks(other); !on || c.URL != "https://y.example/cb" || !c.Actions["survey"] {
		t.Fatalf("after a restore: %+v", c)
	}
}

// received is what an events receiver saw of one attempt.
type received struct {
	method, query               string
	webhookID, requestID, wtype string
}

// TestFireWebhookRetriesWithAStableID: a webhook is sent again, with the same
// X-Webhook-ID and a new X-Request-ID, after a 5xx, a 429 and a 2xx without
// {"status":"OK"}, up to 3 more times; a 4xx ends it at once.
func TestFireWebhookRetriesWithAStableID(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{WebhookRetryDelay: time.Millisecond})
	var mu sync.Mutex
	var seen []received
	answers := []func(http.ResponseWriter){
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) },
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusTooManyRequests) },
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }, // no body: not taken
		func(w http.ResponseWriter) { w.Write([]byte(`{"status":"OK"}`)) },
	}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := len(seen)
		seen = append(seen, received{method: r.Method, webhookID: r.Header.Get("X-Webhook-ID"), requestID: r.Header.Get("X-Request-ID"), wtype: r.Header.Get("X-Webhook-Type")})
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		var p struct {
			Type    string `json:"type"`
			Account struct {
				AccountID string `json:"accountId"`
			} `json:"account"`
		}
		if json.Unmarshal(body, &p) != nil || p.Type != "contact_subscribed" || p.Account.AccountID != "VfEy1" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("body %s", body)
		}
		answers[min(n, len(answers)-1)](w)
	}))
	defer rcv.Close()
	d := s.FireWebhook(context.Background(), rcv.URL, WebhookEvent{Type: "contact_subscribed", AccountID: "VfEy1"})
	if !d.Accepted || d.Attempts != 4 || len(seen) != 4 {
		t.Fatalf("delivery %+v after %d requests", d, len(seen))
	}
	ids := map[string]bool{}
	for _, r := range seen {
		if r.method != http.MethodPost || r.webhookID != d.WebhookID || r.wtype != "contact_subscribed" || ids[r.requestID] || r.requestID == "" {
			t.Fatalf("attempt %+v (X-Webhook-ID must stay %s, X-Request-ID change)", r, d.WebhookID)
		}
		ids[r.requestID] = true
	}

	always := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer always.Close()
	if d := s.FireWebhook(context.Background(), always.URL, WebhookEvent{Type: "x"}); d.Accepted || d.Attempts != 1+WebhookRetries {
		t.Fatalf("always 503: %+v", d)
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	defer gone.Close()
	if d := s.FireWebhook(context.Background(), gone.URL, WebhookEvent{Type: "x"}); d.Accepted || d.Attempts != 1 || d.Status != http.StatusNotFound {
		t.Fatalf("404: %+v", d)
	}
}

// TestFireCallbackCallsTheRegisteredURLOnce: a callback is one GET with its
// parameters in the query, to the account's URL, for an action turned on; a
// failed one is not sent again.
func TestFireCallbackCallsTheRegisteredURLOnce(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{})
	var mu sync.Mutex
	var seen []received
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, received{method: r.Method, query: r.URL.RawQuery})
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer rcv.Close()
	if _, err := s.FireCallback(context.Background(), DefaultAccountID, "open", nil); !errors.Is(err, ErrNoCallbacks) {
		t.Fatalf("without callbacks: %v", err)
	}
	s.SetCallbacks(DefaultAccountID, rcv.URL+"/cb?mine=1", "open")
	if _, err := s.FireCallback(context.Background(), DefaultAccountID, "click", nil); !errors.Is(err, ErrNoCallbacks) {
		t.Fatalf("an action turned off: %v", err)
	}
	d, err := s.FireCallback(context.Background(), DefaultAccountID, "open", nil)
	if err != nil || d.Attempts != 1 || d.Accepted || d.Status != http.StatusInternalServerError || len(seen) != 1 {
		t.Fatalf("FireCallback = %+v, %v (%d requests)", d, err, len(seen))
	}
	q := seen[0].query
	for _, want := range []string{"mine=1", "action=open", "ACCOUNT_ID=VfEy1", "MESSAGE_ID=M1", "contact_email=friend%40example.com"} {
		if seen[0].method != http.MethodGet || !strings.Contains(q, want) {
			t.Fatalf("callback %s ?%s lacks %s", seen[0].method, q, want)
		}
	}
}
