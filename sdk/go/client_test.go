package grconnect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAPI plays grconnect's API on an httptest server: each test gives the
// handler of the route it exercises, and the fake counts the requests of each
// "METHOD path".
type fakeAPI struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[string]int
	last   *http.Request
	body   []byte
}

func newFakeAPI(t *testing.T, h http.HandlerFunc) *fakeAPI {
	t.Helper()
	f := &fakeAPI{counts: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.counts[r.Method+" "+r.URL.Path]++
		f.last, f.body = r, b
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer grc_test_key" {
			writeError(w, 401, "unauthorized", "Send a valid API key.", 0)
			return
		}
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[key]
}

func (f *fakeAPI) lastRequest() (*http.Request, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.body
}

func (f *fakeAPI) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := New(f.URL, "grc_test_key", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req_header")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers grconnect's error envelope.
func writeError(w http.ResponseWriter, status int, code, msg string, retryAfter int) {
	body := map[string]any{"code": code, "message": msg, "request_id": "req_" + code}
	if retryAfter > 0 {
		body["retry_after"] = retryAfter
		w.Header().Set("Retry-After", fmt.Sprint(retryAfter))
	}
	writeJSON(w, status, map[string]any{"error": body})
}

func tokenAnswer(w http.ResponseWriter, token string, expires time.Time) {
	writeJSON(w, 200, map[string]any{"access_token": token, "token_type": "Bearer", "expires_at": expires.UTC().Format(time.RFC3339Nano)})
}

func TestNewChecksItsArguments(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"", "grconnect.example.com", "ftp://x", "https://x/?a=1"} {
		if _, err := New(base, "k"); err == nil {
			t.Errorf("New(%q) accepted", base)
		}
	}
	if _, err := New("https://x", " "); err == nil {
		t.Error("an empty API key was accepted")
	}
	for base, want := range map[string]string{"https://x": "https://x/api/v1", "https://x/": "https://x/api/v1",
		"https://x/sub/api/v1/": "https://x/sub/api/v1", "http://x:8080/sub": "http://x:8080/sub/api/v1"} {
		c, err := New(base, "k")
		if err != nil || c.base != want {
			t.Errorf("New(%q): base %q, %v; want %q", base, c.base, err, want)
		}
	}
}

func TestRequestsCarryKeyAndUserAgent(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"id": "con_1", "status": "active", "connected_at": time.Now()})
	})
	c := f.client(t, WithUserAgent("billing/1.2"))
	conn, err := c.Connection(context.Background(), "con_1")
	if err != nil || conn.ID != "con_1" || conn.Status != StatusActive {
		t.Fatalf("Connection: %+v, %v", conn, err)
	}
	r, _ := f.lastRequest()
	if ua := r.Header.Get("User-Agent"); ua != "billing/1.2 grconnect-go/"+Version {
		t.Errorf("User-Agent %q", ua)
	}
	if r.URL.Path != "/api/v1/connections/con_1" {
		t.Errorf("path %q", r.URL.Path)
	}
	// A wrong key gets the server's 401 as an *APIError.
	bad, _ := New(f.URL, "grc_wrong")
	if _, err := bad.Connection(context.Background(), "con_1"); CodeOf(err) != CodeUnauthorized {
		t.Errorf("wrong key: %v", err)
	}
}

func TestTokenServedFromCache(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		tokenAnswer(w, fmt.Sprintf("access-%d", n.Add(1)), time.Now().Add(time.Hour))
	})
	c := f.client(t)
	ctx := context.Background()
	first, err := c.Token(ctx, "con_1")
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Token(ctx, "con_1")
	if err != nil {
		t.Fatal(err)
	}
	if first.AccessToken != "access-1" || second != first {
		t.Errorf("tokens %+v then %+v; want the first twice", first, second)
	}
	if got := f.count("POST /api/v1/connections/con_1/token"); got != 1 {
		t.Errorf("%d token requests; want 1 (the second from the cache)", got)
	}
	// Another connection has a cache entry of its own.
	if other, _ := c.Token(ctx, "con_2"); other.AccessToken != "access-2" {
		t.Errorf("con_2 got %q", other.AccessToken)
	}
	// ForgetToken makes the next call ask again.
	c.ForgetToken("con_1")
	if again, _ := c.Token(ctx, "con_1"); again.AccessToken != "access-3" {
		t.Errorf("after ForgetToken: %q", again.AccessToken)
	}
}

func TestTokenInsideMarginIsAskedAgain(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		tokenAnswer(w, "short", time.Now().Add(30*time.Second))
	})
	c := f.client(t) // margin 60 s: a token valid for 30 s is never served from the cache
	for range 3 {
		if tok, err := c.Token(context.Background(), "con_1"); err != nil || tok.AccessToken != "short" {
			t.Fatal(tok, err)
		}
	}
	if got := f.count("POST /api/v1/connections/con_1/token"); got != 3 {
		t.Errorf("%d token requests for a token inside the margin; want 3", got)
	}
	c2 := f.client(t, WithTokenMargin(10*time.Second))
	c2.Token(context.Background(), "con_9")
	c2.Token(context.Background(), "con_9")
	if got := f.count("POST /api/v1/connections/con_9/token"); got != 1 {
		t.Errorf("with a 10 s margin: %d token requests; want 1", got)
	}
}

func TestConcurrentTokenCallersShareOneRequest(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 100)
	release := make(chan struct{})
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		tokenAnswer(w, "shared", time.Now().Add(time.Hour))
	})
	c := f.client(t)
	const callers = 25
	var wg sync.WaitGroup
	results := make(chan string, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.Token(context.Background(), "con_1")
			if err != nil {
				results <- "error: " + err.Error()
				return
			}
			results <- tok.AccessToken
		}()
	}
	<-arrived
	time.Sleep(150 * time.Millisecond) // time for any further request to arrive
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		if r != "shared" {
			t.Errorf("a caller got %q", r)
		}
	}
	if got := f.count("POST /api/v1/connections/con_1/token"); got != 1 {
		t.Errorf("%d concurrent callers made %d requests; want 1", callers, got)
	}
}

func TestTokenCallerGivingUpLeavesTheOthersTheirToken(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		tokenAnswer(w, "late", time.Now().Add(time.Hour))
	})
	c := f.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.Token(ctx, "con_1"); first <- err }()
	second := make(chan Token, 1)
	time.Sleep(50 * time.Millisecond)
	go func() { tok, _ := c.Token(context.Background(), "con_1"); second <- tok }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("the caller that gave up got %v", err)
	}
	close(release)
	if tok := <-second; tok.AccessToken != "late" {
		t.Errorf("the other caller got %+v", tok)
	}
	if got := f.count("POST /api/v1/connections/con_1/token"); got != 1 {
		t.Errorf("%d token requests; want 1", got)
	}
}

func TestTokenStringHidesTheToken(t *testing.T) {
	t.Parallel()
	tok := Token{AccessToken: "secret-access-token-abcd", TokenType: "Bearer", ExpiresAt: time.Unix(0, 0)}
	if s := fmt.Sprint(tok); strings.Contains(s, "secret") || !strings.Contains(s, "abcd") {
		t.Errorf("Token prints as %q", s)
	}
}

func TestDisconnectForgetsTheTokenAndTokenErrorsAreTyped(t *testing.T) {
	t.Parallel()
	var disconnected atomic.Bool
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodDelete:
			disconnected.Store(true)
			writeJSON(w, 200, map[string]any{"id": "con_1", "status": "disconnected", "expires_at": nil})
		case disconnected.Load():
			writeError(w, 409, "disconnected", "This connection is disconnected.", 0)
		default:
			tokenAnswer(w, "live", time.Now().Add(time.Hour))
		}
	})
	c := f.client(t)
	ctx := context.Background()
	if _, err := c.Token(ctx, "con_1"); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Disconnect(ctx, "con_1")
	if err != nil || conn.Status != StatusDisconnected || conn.ExpiresAt != nil {
		t.Fatalf("Disconnect: %+v, %v", conn, err)
	}
	_, err = c.Token(ctx, "con_1")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeDisconnected || ae.StatusCode != 409 || ae.RequestID != "req_disconnected" || ae.Message == "" {
		t.Fatalf("token after disconnect: %#v", err)
	}
	if !strings.Contains(err.Error(), "disconnected (HTTP 409)") || !strings.Contains(err.Error(), "req_disconnected") {
		t.Errorf("message %q", err.Error())
	}
}

func TestErrorsCarryTheAPIsFields(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		body   string
		header map[string]string
		want   APIError
	}{
		{409, `{"error":{"code":"needs_reconnect","message":"The customer must approve access again.","request_id":"r1",
			"reconnect":{"method":"POST","path":"/api/v1/connect-sessions","body":{"connection_id":"con_1"}}}}`, nil,
			APIError{StatusCode: 409, Code: CodeNeedsReconnect, RequestID: "r1", Reconnect: &ReconnectHint{Method: "POST", Path: "/api/v1/connect-sessions", Body: map[string]string{"connection_id": "con_1"}}}},
		{409, `{"error":{"code":"app_credentials_rejected","message":"m","request_id":"r2","app":{"id":"app_1","name":"Acme","health":"credentials_rejected"}}}`, nil,
			APIError{StatusCode: 409, Code: CodeAppCredentialsRejected, RequestID: "r2", App: &AppRef{ID: "app_1", Name: "Acme", Health: "credentials_rejected"}}},
		{503, `{"error":{"code":"getresponse_unavailable","message":"m","request_id":"r3","retry_after":30}}`, map[string]string{"Retry-After": "30"},
			APIError{StatusCode: 503, Code: CodeGetResponseUnavailable, RequestID: "r3", RetryAfter: 30 * time.Second}},
		{403, `{"error":{"code":"insufficient_scope","message":"m","request_id":"r4","scope":"tokens:read"}}`, nil,
			APIError{StatusCode: 403, Code: CodeInsufficientScope, RequestID: "r4"}},
		{429, `{"error":{"code":"refresh_too_soon","message":"m","request_id":"r5"}}`, map[string]string{"Retry-After": "12"},
			APIError{StatusCode: 429, Code: CodeRefreshTooSoon, RequestID: "r5", RetryAfter: 12 * time.Second}},
		{400, `{"error":{"code":"invalid_input","message":"m","request_id":"r6","fields":{"status":"Use one of …"}}}`, nil,
			APIError{StatusCode: 400, Code: CodeInvalidInput, RequestID: "r6", Fields: map[string]string{"status": "Use one of …"}}},
		// A code this SDK does not know is carried as it came.
		{418, `{"error":{"code":"brand_new_code","message":"m","request_id":"r7"}}`, nil,
			APIError{StatusCode: 418, Code: "brand_new_code", RequestID: "r7"}},
		// No envelope (a proxy in front answered): the status, with the header's request ID.
		{502, `<html>Bad gateway</html>`, map[string]string{"X-Request-Id": "r8"},
			APIError{StatusCode: 502, Code: CodeUnexpectedResponse, RequestID: "r8"}},
	}
	for _, tc := range cases {
		f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
			for k, v := range tc.header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		})
		_, err := f.client(t).Refresh(context.Background(), "con_1")
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Errorf("HTTP %d: %v is not an *APIError", tc.status, err)
			continue
		}
		if ae.Message == "" || string(ae.Body) != tc.body {
			t.Errorf("%s: message %q, body %q", tc.want.Code, ae.Message, ae.Body)
		}
		if ae.StatusCode != tc.want.StatusCode || ae.Code != tc.want.Code || ae.RequestID != tc.want.RequestID ||
			ae.RetryAfter != tc.want.RetryAfter || !jsonEqual(ae.App, tc.want.App) ||
			!jsonEqual(ae.Reconnect, tc.want.Reconnect) || !jsonEqual(ae.Fields, tc.want.Fields) {
			t.Errorf("HTTP %d: got %+v (app %+v, reconnect %+v)\nwant %+v", tc.status, *ae, ae.App, ae.Reconnect, tc.want)
		}
		if CodeOf(err) != tc.want.Code {
			t.Errorf("CodeOf: %q", CodeOf(err))
		}
	}
	if CodeOf(errors.New("plain")) != "" {
		t.Error("CodeOf of a plain error is not empty")
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestConnectionsPagesThrough(t *testing.T) {
	t.Parallel()
	all := []string{"con_1", "con_2", "con_3", "con_4", "con_5"}
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("status") != "active" || q.Get("customer_ref") != "cust 7" || q.Get("limit") != "2" {
			writeError(w, 400, "invalid_input", "unexpected query "+r.URL.RawQuery, 0)
			return
		}
		start := 0
		if cur := q.Get("cursor"); cur != "" {
			fmt.Sscanf(cur, "c%d", &start)
		}
		end := min(start+2, len(all))
		var page []map[string]any
		for _, id := range all[start:end] {
			page = append(page, map[string]any{"id": id, "status": "active", "account": map[string]any{"email": id + "@example.com"}})
		}
		var next any
		if end < len(all) {
			next = fmt.Sprintf("c%d", end)
		}
		writeJSON(w, 200, map[string]any{"connections": page, "next_cursor": next})
	})
	c := f.client(t)
	filter := ConnectionFilter{Status: StatusActive, CustomerRef: "cust 7", Limit: 2}
	var got []string
	for conn, err := range c.Connections(context.Background(), filter) {
		if err != nil {
			t.Fatal(err)
		}
		if conn.Account.Email != conn.ID+"@example.com" {
			t.Errorf("account of %s: %+v", conn.ID, conn.Account)
		}
		got = append(got, conn.ID)
	}
	if strings.Join(got, ",") != strings.Join(all, ",") {
		t.Errorf("got %v; want %v", got, all)
	}
	if n := f.count("GET /api/v1/connections"); n != 3 {
		t.Errorf("%d page requests; want 3", n)
	}
	// Stopping early fetches no further page.
	for range c.Connections(context.Background(), filter) {
		break
	}
	if n := f.count("GET /api/v1/connections"); n != 4 {
		t.Errorf("after an early break: %d page requests; want 4", n)
	}
	page, err := c.ConnectionsPage(context.Background(), filter, "c4")
	if err != nil || len(page.Connections) != 1 || page.NextCursor != "" {
		t.Errorf("last page: %+v, %v", page, err)
	}
	// An error ends the sequence.
	var errs int
	for _, err := range c.Connections(context.Background(), ConnectionFilter{}) {
		if CodeOf(err) == CodeInvalidInput {
			errs++
		}
	}
	if errs != 1 {
		t.Errorf("%d errors yielded; want 1", errs)
	}
}

func TestCreateConnectSessionSendsOnlyWhatIsGiven(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, map[string]any{"id": "lnk_1", "url": "https://gc.example/connect/abc", "expires_at": "2030-01-02T03:04:05.123456789Z"})
	})
	c := f.client(t)
	s, err := c.CreateConnectSession(context.Background(), ConnectSessionParams{AppID: "app_1", CustomerRef: "cust-7", TTL: time.Hour, AllowTransfer: true})
	if err != nil || s.ID != "lnk_1" || s.URL != "https://gc.example/connect/abc" || s.ExpiresAt.Nanosecond() != 123456789 {
		t.Fatalf("%+v, %v", s, err)
	}
	r, body := f.lastRequest()
	if r.Method != "POST" || r.URL.Path != "/api/v1/connect-sessions" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	if !jsonEqual(json.RawMessage(body), map[string]any{"app_id": "app_1", "customer_ref": "cust-7", "ttl_seconds": 3600, "allow_transfer": true}) {
		t.Errorf("body %s", body)
	}
	// A reconnect link names the connection only.
	c.CreateConnectSession(context.Background(), ConnectSessionParams{ConnectionID: "con_1"})
	if _, body := f.lastRequest(); string(body) != `{"connection_id":"con_1"}` {
		t.Errorf("reconnect body %s", body)
	}
	if err := c.RevokeConnectSession(context.Background(), "lnk_1"); err != nil {
		t.Error(err)
	}
	if r, _ := f.lastRequest(); r.Method != "DELETE" || r.URL.Path != "/api/v1/connect-sessions/lnk_1" {
		t.Errorf("revoke: %s %s", r.Method, r.URL.Path)
	}
}

func TestEmptyIDsAreRefusedBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) { t.Errorf("request %s %s", r.Method, r.URL.Path) })
	c := f.client(t)
	ctx := context.Background()
	if _, err := c.Token(ctx, ""); err == nil {
		t.Error("Token")
	}
	if _, err := c.Disconnect(ctx, " "); err == nil {
		t.Error("Disconnect")
	}
	if _, err := c.Proxy(ctx, "con_1", ProxyRequest{Path: "https://evil.example/x"}); err == nil {
		t.Error("Proxy to a full URL")
	}
}
