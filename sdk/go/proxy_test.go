package grconnect

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// getResponse429 is GetResponse's own 429, passed through by the proxy.
func getResponse429(w http.ResponseWriter, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	io.WriteString(w, `{"httpStatus":429,"code":1015,"codeDescription":"Quota exceeded","message":"Too many requests"}`)
}

func TestProxySendsTheCallAndReturnsGetResponsesAnswer(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/connections/con_1/proxy/contacts/abc" {
			w.Header().Set("X-RateLimit-Remaining", "79")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"httpStatus":404,"code":1013,"message":"Resource not found"}`)
			return
		}
		writeJSON(w, 200, []map[string]any{{"fromFieldId": "V", "email": "a@example.com"}})
	})
	c := f.client(t)
	ctx := context.Background()
	res, err := c.Proxy(ctx, "con_1", ProxyRequest{Path: "/from-fields", Query: url.Values{"fields": {"email"}}})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%+v, %v", res, err)
	}
	var ff []struct{ FromFieldID string }
	if err := res.DecodeJSON(&ff); err != nil || len(ff) != 1 || ff[0].FromFieldID != "V" {
		t.Errorf("%+v, %v", ff, err)
	}
	r, _ := f.lastRequest()
	if r.Method != "GET" || r.URL.Path != "/api/v1/connections/con_1/proxy/from-fields" || r.URL.RawQuery != "fields=email" {
		t.Errorf("sent %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
	}
	// GetResponse's error is an answer, not an error.
	res, err = c.Proxy(ctx, "con_1", ProxyRequest{Path: "contacts/abc"})
	if err != nil || res.StatusCode != 404 || res.Header.Get("X-RateLimit-Remaining") != "79" || !strings.Contains(string(res.Body), "1013") {
		t.Errorf("GetResponse's 404: %+v, %v", res, err)
	}
	// A JSON body goes out encoded, with its content type.
	if _, err := c.Proxy(ctx, "con_1", ProxyRequest{Method: "post", Path: "/contacts", JSON: map[string]string{"email": "b@example.com"}}); err != nil {
		t.Fatal(err)
	}
	r, body := f.lastRequest()
	if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" || string(body) != `{"email":"b@example.com"}` {
		t.Errorf("POST sent %s %q %s", r.Method, r.Header.Get("Content-Type"), body)
	}
}

func TestProxyRaisesGrconnectsOwnRefusals(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, 409, "needs_reconnect", "The customer must approve access again.", 0)
	})
	_, err := f.client(t).Proxy(context.Background(), "con_1", ProxyRequest{Path: "/from-fields"})
	if CodeOf(err) != CodeNeedsReconnect {
		t.Errorf("got %v; want needs_reconnect", err)
	}
}

func TestProxyWaitsOutA429Once(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			getResponse429(w, "1")
			return
		}
		writeJSON(w, 200, []any{})
	})
	start := time.Now()
	res, err := f.client(t).Proxy(context.Background(), "con_1", ProxyRequest{Method: "POST", Path: "/contacts", Body: []byte(`{"email":"x@example.com"}`)})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%+v, %v", res, err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("answered after %v; the 429 asked for 1 s", waited)
	}
	if r, body := f.lastRequest(); string(body) != `{"email":"x@example.com"}` || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("the repeated POST carried %q as %q", body, r.Header.Get("Content-Type"))
	}
	if got := f.count("POST /api/v1/connections/con_1/proxy/contacts"); got != 2 {
		t.Errorf("%d requests; want 2 (a 429 means the call was not made, so even a POST is sent again)", got)
	}
}

func TestProxyWaitsOnlyOnce(t *testing.T) {
	t.Parallel()
	// GetResponse's 429 twice: the second is returned as GetResponse's answer.
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) { getResponse429(w, "1") })
	res, err := f.client(t).Proxy(context.Background(), "con_1", ProxyRequest{Path: "/from-fields"})
	if err != nil || res.StatusCode != 429 || f.count("GET /api/v1/connections/con_1/proxy/from-fields") != 2 {
		t.Errorf("GetResponse 429 twice: %+v, %v, %d requests", res, err, f.count("GET /api/v1/connections/con_1/proxy/from-fields"))
	}
	// grconnect's own pacing twice: an *APIError with its wait.
	g := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) { writeError(w, 429, "rate_limited", "Wait.", 1) })
	_, err = g.client(t).Proxy(context.Background(), "con_1", ProxyRequest{Path: "/from-fields"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeRateLimited || ae.RetryAfter != time.Second || g.count("GET /api/v1/connections/con_1/proxy/from-fields") != 2 {
		t.Errorf("grconnect 429 twice: %v, %d requests", err, g.count("GET /api/v1/connections/con_1/proxy/from-fields"))
	}
}

func TestProxyDoesNotWaitBeyondTheMaximumOrWithoutRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("long") != "" {
			getResponse429(w, "120")
			return
		}
		getResponse429(w, "") // the 10-minute window's 429 names no wait
	})
	c := f.client(t, WithMaxRetryWait(5*time.Second))
	start := time.Now()
	for _, q := range []url.Values{{"long": {"1"}}, nil} {
		res, err := c.Proxy(context.Background(), "con_1", ProxyRequest{Path: "/from-fields", Query: q})
		if err != nil || res.StatusCode != 429 {
			t.Errorf("%v: %+v, %v", q, res, err)
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("took %v; nothing should have been waited", d)
	}
	if got := f.count("GET /api/v1/connections/con_1/proxy/from-fields"); got != 2 {
		t.Errorf("%d requests; want 2, one per call", got)
	}
}

// dropFirst closes the connection of the first request of each path without an
// answer (a transport failure), then answers 200.
func dropFirst(t *testing.T) *fakeAPI {
	var mu sync.Mutex
	seen := map[string]bool{}
	return newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.Path
		mu.Lock()
		first := !seen[key]
		seen[key] = true
		mu.Unlock()
		if first {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		writeJSON(w, 200, map[string]any{"ok": true})
	})
}

func TestTransportFailuresAreRetriedForIdempotentCallsOnly(t *testing.T) {
	t.Parallel()
	f := dropFirst(t)
	c := f.client(t)
	ctx := context.Background()
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		res, err := c.Proxy(ctx, "con_1", ProxyRequest{Method: m, Path: "/contacts/x"})
		if err != nil || res.StatusCode != 200 {
			t.Errorf("%s: %+v, %v; want the retry's 200", m, res, err)
		}
		if got := f.count(m + " /api/v1/connections/con_1/proxy/contacts/x"); got != 2 {
			t.Errorf("%s: %d requests; want 2", m, got)
		}
	}
	for _, m := range []string{"POST", "PATCH"} {
		if _, err := c.Proxy(ctx, "con_1", ProxyRequest{Method: m, Path: "/contacts/x"}); err == nil || CodeOf(err) != "" {
			t.Errorf("%s: %v; want the transport error", m, err)
		}
		if got := f.count(m + " /api/v1/connections/con_1/proxy/contacts/x"); got != 1 {
			t.Errorf("%s: %d requests; want 1 (never sent twice)", m, got)
		}
	}
	// Creating a connect session is not idempotent; asking for a token is.
	if _, err := c.CreateConnectSession(ctx, ConnectSessionParams{AppID: "app_1", CustomerRef: "c"}); err == nil {
		t.Error("connect session: no error")
	}
	if got := f.count("POST /api/v1/connect-sessions"); got != 1 {
		t.Errorf("connect session: %d requests; want 1", got)
	}
	g := dropFirst(t)
	if _, err := g.client(t).Token(ctx, "con_1"); err != nil {
		t.Errorf("token: %v", err)
	}
	if got := g.count("POST /api/v1/connections/con_1/token"); got != 2 {
		t.Errorf("token: %d requests; want 2", got)
	}
	// WithRetries(0) sends once.
	h := dropFirst(t)
	if _, err := h.client(t, WithRetries(0)).Connection(ctx, "con_1"); err == nil || h.count("GET /api/v1/connections/con_1") != 1 {
		t.Errorf("WithRetries(0): %v, %d requests", err, h.count("GET /api/v1/connections/con_1"))
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	var followed atomic.Bool
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/elsewhere") {
			followed.Store(true)
		}
		http.Redirect(w, r, "/api/v1/elsewhere", http.StatusFound)
	})
	_, err := f.client(t).Connection(context.Background(), "con_1")
	if followed.Load() || CodeOf(err) != CodeUnexpectedResponse {
		t.Errorf("followed %v, error %v", followed.Load(), err)
	}
}
