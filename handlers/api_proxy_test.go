package handlers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/tokens"
)

// grRecorder stands between grconnect and the fake GetResponse: it records the API
// calls that reach it (not token calls), counts the most in flight at once, and can
// answer in the fake's place.
type grRecorder struct {
	srv *httptest.Server

	mu          sync.Mutex
	calls       []recordedCall
	inFlight    int
	maxInFlight int
	// answer, when set, may answer a call itself (returning true) instead of the fake.
	answer func(w http.ResponseWriter, r *http.Request, body []byte) bool
}

type recordedCall struct {
	method, path, rawQuery string
	header                 http.Header
	body                   []byte
}

// recordGetResponse points the fixture's app at a recorder in front of the fake.
func (f *apiFixture) recordGetResponse() *grRecorder {
	f.t.Helper()
	rec := &grRecorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if r.URL.Path == "/v3/token" {
			f.fake.ServeHTTP(w, r)
			return
		}
		rec.mu.Lock()
		rec.calls = append(rec.calls, recordedCall{method: r.Method, path: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery, header: r.Header.Clone(), body: body})
		rec.inFlight++
		rec.maxInFlight = max(rec.maxInFlight, rec.inFlight)
		answer := rec.answer
		rec.mu.Unlock()
		defer func() {
			rec.mu.Lock()
			rec.inFlight--
			rec.mu.Unlock()
		}()
		if answer != nil && answer(w, r, body) {
			return
		}
		f.fake.ServeHTTP(w, r)
	}))
	f.t.Cleanup(rec.srv.Close)
	// Through the store, so that the app cache hears of it.
	app, err := f.store.AppByID(context.Background(), f.appID)
	if err != nil {
		f.t.Fatal(err)
	}
	app.APIURL = rec.srv.URL + "/v3"
	if err := f.store.UpdateApp(context.Background(), app); err != nil {
		f.t.Fatal(err)
	}
	f.store.AppsWritten() // a raw write: the app cache must hear of it
	return rec
}

func (rec *grRecorder) seen() []recordedCall {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recordedCall(nil), rec.calls...)
}

func (rec *grRecorder) setAnswer(fn func(w http.ResponseWriter, r *http.Request, body []byte) bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.answer = fn
}

// expiredAnswer writes GetResponse's 1014 answer, echoing the sent token as it does.
func expiredAnswer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	sent := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	io.WriteString(w, `{"httpStatus":401,"code":1014,"codeDescription":"Problem during authentication process, check headers!","message":"The access token provided is expired","moreInfo":"","context":{"sentToken":"`+sent+`"},"uuid":"x"}`)
}

func TestAPIProxyForwardsAndStreamsBack(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	access, _ := f.plaintextTokens(conn.ID)
	rec := f.recordGetResponse()
	base := "/api/v1/connections/" + conn.ID + "/proxy"

	h := http.Header{
		"Accept": {"application/json"}, "X-Time-Zone": {"Europe/Warsaw"}, "Cookie": {"session=abc"},
		"X-Domain": {"evil.example"}, "X-Auth-Token": {"api-key stolen"}, "X-Forwarded-For": {"203.0.113.9"},
	}
	r, err := f.send(http.MethodGet, base+"/from-fields?perPage=1&page=1", f.key, nil, h)
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK || !strings.HasPrefix(r.body, `[{"fromFieldId":`) || strings.Count(r.body, "fromFieldId") != 1 {
		t.Fatalf("proxied from-fields = %d %s", r.status, r.body)
	}
	for _, name := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "TotalCount", "TotalPages", "Content-Type"} {
		if r.header.Get(name) == "" {
			t.Errorf("answer lacks %s", name)
		}
	}
	if r.header.Get("CurrentPage") != "1" || r.header.Get("TotalPages") != r.header.Get("TotalCount") {
		t.Errorf("paging headers %q %q %q", r.header.Get("CurrentPage"), r.header.Get("TotalPages"), r.header.Get("TotalCount"))
	}
	calls := rec.seen()
	if len(calls) != 1 {
		t.Fatalf("GetResponse saw %d calls", len(calls))
	}
	c := calls[0]
	if c.method != http.MethodGet || c.path != "/v3/from-fields" || c.rawQuery != "perPage=1&page=1" {
		t.Fatalf("forwarded %s %s?%s", c.method, c.path, c.rawQuery)
	}
	if c.header.Get("Authorization") != "Bearer "+access || c.header.Get("X-Time-Zone") != "Europe/Warsaw" || c.header.Get("Accept") != "application/json" {
		t.Fatalf("forwarded headers %v", c.header)
	}
	for _, stripped := range []string{"Cookie", "X-Domain", "X-Auth-Token", "X-Forwarded-For"} {
		if c.header.Get(stripped) != "" {
			t.Errorf("%s reached GetResponse", stripped)
		}
	}
	for k, v := range c.header {
		if strings.Contains(strings.Join(v, ","), f.key) {
			t.Errorf("the API key reached GetResponse in %s", k)
		}
	}

	// Other methods, with bodies, statuses and headers of any kind.
	rec.setAnswer(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if r.URL.Path != "/v3/contacts" {
			return false
		}
		w.Header().Set("Location", "https://api.getresponse.com/v3/contacts/abc")
		w.Header().Set("Set-Cookie", "gr=1")
		w.Header().Set("X-Internal", "yes")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, r.Method+" "+string(body))
		return true
	})
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		body := `{"email":"jane@example.com","campaign":{"campaignId":"V"}}`
		r, err := f.send(method, base+"/contacts?x=1", f.key, strings.NewReader(body), http.Header{"Content-Type": {"application/json"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusAccepted || r.body != method+" "+body || r.header.Get("Location") == "" || r.header.Get("Content-Type") != "text/plain" {
			t.Fatalf("%s = %d %q %v", method, r.status, r.body, r.header)
		}
		if r.header.Get("Set-Cookie") != "" || r.header.Get("X-Internal") != "" {
			t.Errorf("%s passed GetResponse's private headers back", method)
		}
		last := rec.seen()[len(rec.seen())-1]
		if last.method != method || last.path != "/v3/contacts" || last.rawQuery != "x=1" || string(last.body) != body || last.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s forwarded as %s %s %q", method, last.method, last.path, last.body)
		}
	}
	if r := f.call(http.MethodHead, base+"/contacts", nil); r.status != http.StatusAccepted || rec.seen()[len(rec.seen())-1].method != http.MethodHead {
		t.Fatalf("HEAD = %d", r.status)
	}
	// GetResponse's own errors come back as GetResponse sent them.
	rec.setAnswer(nil)
	r = f.call(http.MethodGet, base+"/newsletters/xyz", nil)
	if r.status != http.StatusNotFound || !strings.Contains(r.body, `"code":1013`) {
		t.Fatalf("GetResponse 404 = %d %s", r.status, r.body)
	}
	// Other methods are not forwarded (OPTIONS is Echo's own answer).
	wantError(t, f.call(http.MethodTrace, base+"/contacts", nil), http.StatusMethodNotAllowed, "method_not_allowed")
	if r := f.call(http.MethodOptions, base+"/contacts", nil); r.status >= 300 || rec.seen()[len(rec.seen())-1].path == "/v3/contacts" && rec.seen()[len(rec.seen())-1].method == http.MethodOptions {
		t.Fatalf("OPTIONS = %d", r.status)
	}
}

func TestAPIProxyStreamsLargeBodies(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	rec := f.recordGetResponse()
	rec.setAnswer(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		sum := sha256.Sum256(body)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(bytes.Repeat(sum[:], 100_000)) // 3.2 MB back
		return true
	})
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB: over the replay buffer
	r, err := f.send(http.MethodPost, "/api/v1/connections/"+conn.ID+"/proxy/multimedia", f.key, bytes.NewReader(big), http.Header{"Content-Type": {"application/octet-stream"}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(big)
	if r.status != http.StatusOK || r.body != string(bytes.Repeat(sum[:], 100_000)) {
		t.Fatalf("large body = %d, %d bytes back", r.status, len(r.body))
	}
	// Over the limit, refused before GetResponse is called.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/api/v1/connections/"+conn.ID+"/proxy/multimedia", io.LimitReader(zeros{}, 33<<20))
	req.ContentLength = 33 << 20
	req.Header.Set("Authorization", "Bearer "+f.key)
	r, err = f.roundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, r, http.StatusRequestEntityTooLarge, "request_entity_too_large")
	if n := len(rec.seen()); n != 1 {
		t.Fatalf("GetResponse saw %d calls", n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestAPIProxyRefreshesOnceAndRetriesOnce(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	f.age(conn.ID, time.Hour)
	base := "/api/v1/connections/" + conn.ID + "/proxy"

	// The token expired early at GetResponse: one refresh, one retry, success.
	f.fake.ExpireAccessTokens()
	r := f.call(http.MethodGet, base+"/from-fields", nil)
	if r.status != http.StatusOK || r.header.Get("X-Grconnect-Token-Refresh") != "retried" {
		t.Fatalf("after 1014 = %d %q %s", r.status, r.header.Get("X-Grconnect-Token-Refresh"), r.body)
	}
	if a, b := f.fake.Count(getresponsetest.EndpointTokenRefresh), f.fake.Count(getresponsetest.EndpointFromFields); a != 1 || b != 2 {
		t.Fatalf("%d refreshes and %d calls, want 1 and 2", a, b)
	}

	// GetResponse keeps saying 1014 for the token it just issued: another refresh
	// would not cure it, so its answer comes back as it is (without the token it
	// echoes) and no refresh is made.
	f.fake.ResetCounts()
	f.fake.FailAPI(getresponsetest.APIExpiredToken, -1)
	r = f.call(http.MethodGet, base+"/from-fields", nil)
	if a, b := f.fake.Count(getresponsetest.EndpointTokenRefresh), f.fake.Count(getresponsetest.EndpointFromFields); r.status != http.StatusUnauthorized || a != 0 || b != 1 {
		t.Fatalf("persistent 1014 right after a refresh = %d after %d refreshes and %d calls", r.status, a, b)
	}
	// An older token: one refresh and one retry, then GetResponse's answer.
	f.age(conn.ID, time.Hour)
	f.fake.ResetCounts()
	r = f.call(http.MethodGet, base+"/from-fields", nil)
	if a, b := f.fake.Count(getresponsetest.EndpointTokenRefresh), f.fake.Count(getresponsetest.EndpointFromFields); r.status != http.StatusUnauthorized || a != 1 || b != 2 {
		t.Fatalf("persistent 1014 = %d after %d refreshes and %d calls", r.status, a, b)
	}
	access, _ := f.plaintextTokens(conn.ID)
	if !strings.Contains(r.body, `"code":1014`) || !strings.Contains(r.body, "[redacted]") || strings.Contains(r.body, access) {
		t.Fatalf("the 1014 answer = %s", r.body)
	}
	f.fake.FailAPI(getresponsetest.APIOK, 0)

	// A small body is replayed with the new token.
	rec := f.recordGetResponse()
	f.age(conn.ID, time.Hour)
	old, _ := f.plaintextTokens(conn.ID)
	rec.setAnswer(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if r.Header.Get("Authorization") == "Bearer "+old {
			expiredAnswer(w, r)
		} else {
			w.WriteHeader(http.StatusCreated)
		}
		return true
	})
	r, _ = f.send(http.MethodPost, base+"/contacts", f.key, strings.NewReader(`{"email":"a@example.com"}`), http.Header{"Content-Type": {"application/json"}})
	calls := rec.seen()
	if r.status != http.StatusCreated || len(calls) != 2 || string(calls[1].body) != `{"email":"a@example.com"}` || calls[1].header.Get("Authorization") == calls[0].header.Get("Authorization") {
		t.Fatalf("replay = %d after %d calls", r.status, len(calls))
	}

	// A large body cannot be replayed: the token is refreshed and GetResponse's 401
	// comes back, saying so; the next call works.
	f.age(conn.ID, time.Hour)
	old, _ = f.plaintextTokens(conn.ID)
	refreshes := f.fake.Count(getresponsetest.EndpointTokenRefresh)
	big := strings.Repeat("x", 2<<20)
	r, _ = f.send(http.MethodPost, base+"/contacts", f.key, strings.NewReader(big), nil)
	if r.status != http.StatusUnauthorized || r.header.Get("X-Grconnect-Token-Refresh") != "refreshed-not-retried" ||
		len(rec.seen()) != 3 || f.fake.Count(getresponsetest.EndpointTokenRefresh) != refreshes+1 || strings.Contains(r.body, old) {
		t.Fatalf("large body after 1014 = %d %q, %d calls", r.status, r.header.Get("X-Grconnect-Token-Refresh"), len(rec.seen()))
	}
	if r, _ = f.send(http.MethodPost, base+"/contacts", f.key, strings.NewReader(big), nil); r.status != http.StatusCreated {
		t.Fatalf("the call after the refresh = %d", r.status)
	}

	// The refresh itself is refused: the customer must reconnect.
	rec.setAnswer(nil)
	f.age(conn.ID, time.Hour)
	f.fake.ExpireAccessTokens()
	f.fake.FailToken(getresponsetest.TokenInvalidGrantRFC, 1)
	e := wantError(t, f.call(http.MethodGet, base+"/from-fields", nil), http.StatusConflict, "needs_reconnect")
	if e.Error.Reconnect == nil || e.Error.Reconnect.Body["connection_id"] != conn.ID {
		t.Fatalf("no reconnect hint: %+v", e.Error)
	}
	wantError(t, f.call(http.MethodGet, "/api/v1/connections/con_nope/proxy/from-fields", nil), http.StatusNotFound, "not_found")
	f.call(http.MethodDelete, "/api/v1/connections/"+conn.ID, nil)
	wantError(t, f.call(http.MethodGet, base+"/from-fields", nil), http.StatusConflict, "disconnected")
}

func TestAPIProxyRefusesPathEscapes(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	rec := f.recordGetResponse()
	prefix := "/api/v1/connections/" + conn.ID + "/proxy"
	for _, tail := range []string{
		"/../../../admin",
		"/..",
		"/./from-fields",
		"/from-fields/../token",
		"/%2e%2e/%2e%2e/admin",
		"/.%2E/x",
		"/%2E/from-fields",
		"/a%2f..%2f..%2fadmin",
		"/a%2F..",
		"//evil.example/v3/from-fields",
		"/https://evil.example/v3/from-fields",
		"/https:%2F%2Fevil.example",
		"/a%5c..%5cadmin",
		"/%252e%252e/admin",
		"/a;b=..",
		"/a%00",
		"/a%0d%0aX-Injected:%20yes",
		"/a%20b",
		"/%C3%A9",
		"/",
		"/from-fields//x",
	} {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL, nil)
		req.URL.Opaque = prefix + tail // sent exactly as written
		req.Header.Set("Authorization", "Bearer "+f.key)
		r, err := f.roundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusBadRequest {
			t.Errorf("%s = %d, want 400: %s", tail, r.status, r.body)
			continue
		}
		if e := decode[apiErr](t, r); e.Error.Code != "invalid_input" || e.Error.Fields["path"] == "" {
			t.Errorf("%s answered %s", tail, r.body)
		}
	}
	// A backslash in the request line does not get through either.
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL, nil)
	req.URL.Opaque = prefix + `/a\..\..\admin`
	req.Header.Set("Authorization", "Bearer "+f.key)
	if r, err := f.roundTrip(req); err == nil && r.status != http.StatusBadRequest {
		t.Errorf("backslashes = %d", r.status)
	}
	if calls := rec.seen(); len(calls) != 0 {
		t.Fatalf("a refused path reached GetResponse: %s %s", calls[0].method, calls[0].path)
	}
	// Plain paths with the allowed punctuation go through, relative to the API base.
	for _, tail := range []string{"/contacts/abc.def/activities", "/search-contacts/x:y@z", "/from-fields/", "/a-b_c~d!$&'()*+,="} {
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL, nil)
		req.URL.Opaque = prefix + tail
		req.Header.Set("Authorization", "Bearer "+f.key)
		r, err := f.roundTrip(req)
		if err != nil || r.status == http.StatusBadRequest {
			t.Errorf("%s = %d", tail, r.status)
			continue
		}
		if got := rec.seen()[len(rec.seen())-1].path; got != "/v3"+tail {
			t.Errorf("%s reached GetResponse as %s", tail, got)
		}
	}
}

func TestAPIProxyPassesThrough429AndBacksOff(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	other := f.fake.AddAccount(getresponsetest.Account{AccountID: "Other1", Email: "other@example.com", FirstName: "Other"})
	conn2 := f.connect("customer-2", other)
	base := "/api/v1/connections/" + conn.ID + "/proxy"

	// GetResponse's 429 (the 10-minute quota spent, window resets in 100 s) comes back as it is.
	f.fake.FailAPI(getresponsetest.APIRateLimitedWindow, 1)
	r := f.call(http.MethodGet, base+"/from-fields", nil)
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, `"code":1015`) || r.header.Get("X-RateLimit-Reset") != "100 seconds" {
		t.Fatalf("GetResponse's 429 = %d %v %s", r.status, r.header, r.body)
	}
	// Then grconnect answers 429 itself until the reset, without calling GetResponse.
	calls := f.fake.Count(getresponsetest.EndpointFromFields)
	for range 3 {
		r = f.call(http.MethodGet, base+"/from-fields", nil)
		e := wantError(t, r, http.StatusTooManyRequests, "rate_limited")
		if e.Error.RetryAfter < 95 || e.Error.RetryAfter > 100 || r.header.Get("Retry-After") == "" || !strings.HasSuffix(r.header.Get("X-RateLimit-Reset"), " seconds") {
			t.Fatalf("local 429 = %+v %v", e.Error, r.header)
		}
	}
	if n := f.fake.Count(getresponsetest.EndpointFromFields); n != calls {
		t.Fatalf("GetResponse was called %d more times during the back-off", n-calls)
	}
	// Only that account waits; its token route is not a GetResponse call and works.
	if r := f.call(http.MethodGet, "/api/v1/connections/"+conn2.ID+"/proxy/from-fields", nil); r.status != http.StatusOK {
		t.Fatalf("another account = %d", r.status)
	}
	if r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", nil); r.status != http.StatusOK {
		t.Fatalf("token during back-off = %d", r.status)
	}
}

// TestAPIProxyBackOffEndsAtTheReset: a back-off GetResponse asked for that ends
// within the proxy's maximum wait is waited out in the queue, and the call then
// goes through; the answer says how long it queued.
func TestAPIProxyBackOffEndsAtTheReset(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	rec := f.recordGetResponse()
	base := "/api/v1/connections/" + conn.ID + "/proxy"
	var mu sync.Mutex
	next := func(w http.ResponseWriter) bool { return false }
	rec.setAnswer(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		answer := next(w)
		next = func(w http.ResponseWriter) bool { return false }
		return answer
	})
	throttle := func(remaining, reset, retry string) {
		mu.Lock()
		defer mu.Unlock()
		next = func(w http.ResponseWriter) bool {
			w.Header().Set("X-RateLimit-Remaining", remaining)
			w.Header().Set("X-RateLimit-Reset", reset)
			if retry != "" {
				w.Header().Set("Retry-After", retry)
			}
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"httpStatus":429,"code":1015,"message":"slow down"}`)
			return true
		}
	}
	queued := func(r response) time.Duration {
		t.Helper()
		ms, err := strconv.Atoi(r.header.Get("X-Grconnect-Queued-Ms"))
		if err != nil {
			t.Fatalf("X-Grconnect-Queued-Ms = %q", r.header.Get("X-Grconnect-Queued-Ms"))
		}
		return time.Duration(ms) * time.Millisecond
	}

	// The window's quota spent, no Retry-After: GetResponse's 429 passes through;
	// the next call waits for the reset (1 s here) and goes.
	// (On PostgreSQL an account's first call waits for the fleet's share of it: a
	// rebalancing, milliseconds, not the reset.)
	throttle("0", "1 seconds", "")
	r := f.call(http.MethodGet, base+"/from-fields", nil)
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.body, "slow down") || r.header.Get("X-RateLimit-Reset") != "1 seconds" || queued(r) > 250*time.Millisecond {
		t.Fatalf("first = %d %v %s", r.status, r.header, r.body)
	}
	r = f.call(http.MethodGet, base+"/from-fields", nil)
	if r.status != http.StatusOK || queued(r) < 900*time.Millisecond || queued(r) > 3*time.Second {
		t.Fatalf("after the reset = %d, queued %v: %s", r.status, queued(r), r.body)
	}

	// A per-second limit (quota left): wait Retry-After, not the window's reset.
	throttle("29000", "400 seconds", "1")
	f.call(http.MethodGet, base+"/from-fields", nil)
	r = f.call(http.MethodGet, base+"/from-fields", nil)
	if r.status != http.StatusOK || queued(r) < 900*time.Millisecond || queued(r) > 3*time.Second {
		t.Fatalf("after a per-second 429 = %d, queued %v", r.status, queued(r))
	}
	if n := len(rec.seen()); n != 4 {
		t.Fatalf("GetResponse saw %d calls, want 4", n)
	}
}

// proxyBurst sends n proxied calls at once to each connection and returns every
// answer with when it ended.
type proxyAnswer struct {
	conn   string
	status int
	queued time.Duration
	header http.Header
	ended  time.Time
}

func proxyBurst(t *testing.T, f *apiFixture, n int, conns ...string) []proxyAnswer {
	t.Helper()
	var mu sync.Mutex
	var out []proxyAnswer
	var wg sync.WaitGroup
	for i := range n * len(conns) {
		conn := conns[i%len(conns)]
		wg.Go(func() {
			r, err := f.send(http.MethodGet, "/api/v1/connections/"+conn+"/proxy/from-fields", f.key, nil, nil)
			if err != nil {
				t.Error(err)
				return
			}
			ms, _ := strconv.Atoi(r.header.Get("X-Grconnect-Queued-Ms"))
			mu.Lock()
			out = append(out, proxyAnswer{conn: conn, status: r.status, queued: time.Duration(ms) * time.Millisecond, header: r.header, ended: time.Now()})
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// refusals counts the calls GetResponse (the fake, which enforces its limits) refused.
func refusals(f *apiFixture) int {
	return f.fake.Stat(getresponsetest.StatRefusedParallel) + f.fake.Stat(getresponsetest.StatRefusedPerSecond) + f.fake.Stat(getresponsetest.StatRefusedWindow)
}

// TestAPIProxyPacesABurstAtOneAccount: 200 calls at once for one GetResponse
// account, against a GetResponse that enforces its own limits. They queue instead
// of bouncing: GetResponse never has more than ten in flight nor refuses one, no
// caller gets a 429, and each answer carries GetResponse's rate-limit headers and
// how long it queued.
func TestAPIProxyPacesABurstAtOneAccount(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	f.fake.SetAPILatency(25 * time.Millisecond)
	f.fake.ResetCounts()
	start := time.Now()
	answers := proxyBurst(t, f, 200, conn.ID)
	took := time.Since(start)
	var most time.Duration
	waited := 0
	for _, a := range answers {
		if a.status != http.StatusOK || a.header.Get("X-RateLimit-Remaining") == "" || a.header.Get("X-Grconnect-Queued-Ms") == "" {
			t.Fatalf("answer %d with headers %v", a.status, a.header)
		}
		most = max(most, a.queued)
		if a.queued > 0 {
			waited++
		}
	}
	if len(answers) != 200 {
		t.Fatalf("%d answers", len(answers))
	}
	if peak := f.fake.PeakInFlight(conn.AccountID); peak > 10 || peak < 5 {
		t.Errorf("GetResponse had at most %d calls of the account in flight, want up to 10", peak)
	}
	if n := refusals(f); n > 0 {
		t.Errorf("GetResponse refused %d calls", n)
	}
	// 200 calls at most 80 a second: more than two seconds' worth of windows.
	if took < time.Second || waited < 100 || most >= tokens.DefaultProxyMaxWait {
		t.Errorf("took %v; %d calls queued, the longest %v", took, waited, most)
	}
	t.Logf("200 calls in %v; %d queued, the longest %v; GetResponse's peak in flight %d", took.Round(time.Millisecond), waited, most, f.fake.PeakInFlight(conn.AccountID))
}

// TestAPIProxyServesAccountsFairly: two accounts' bursts at once both progress
// from the start at the same pace: neither waits behind the other.
func TestAPIProxyServesAccountsFairly(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	a := f.connect("customer-1", "")
	other := f.fake.AddAccount(getresponsetest.Account{AccountID: "Other1", Email: "other@example.com", FirstName: "Other"})
	b := f.connect("customer-2", other)
	f.fake.SetAPILatency(25 * time.Millisecond)
	f.fake.ResetCounts()
	start := time.Now()
	answers := proxyBurst(t, f, 150, a.ID, b.ID)
	halfway := map[string]time.Duration{}
	done := map[string]int{}
	slices.SortFunc(answers, func(x, y proxyAnswer) int { return x.ended.Compare(y.ended) })
	for _, ans := range answers {
		if ans.status != http.StatusOK {
			t.Fatalf("an answer %d", ans.status)
		}
		done[ans.conn]++
		if done[ans.conn] == 75 {
			halfway[ans.conn] = ans.ended.Sub(start)
		}
	}
	if done[a.ID] != 150 || done[b.ID] != 150 {
		t.Fatalf("answered %d and %d of 150 each", done[a.ID], done[b.ID])
	}
	ha, hb := halfway[a.ID], halfway[b.ID]
	if max(ha, hb) > 2*min(ha, hb) {
		t.Errorf("half of one account's calls done after %v, the other's after %v", ha, hb)
	}
	for _, id := range []string{a.AccountID, other} {
		if peak := f.fake.PeakInFlight(id); peak > 10 {
			t.Errorf("account %s: %d in flight", id, peak)
		}
	}
	if n := refusals(f); n > 0 {
		t.Errorf("GetResponse refused %d calls", n)
	}
}

// TestAPIProxyQueueGivesUpAtMaxWait: a call its account's limits cannot reach
// within GRCONNECT_PROXY_MAX_WAIT is answered 429 too_many_concurrent_requests with
// Retry-After, saying how long it queued.
func TestAPIProxyQueueGivesUpAtMaxWait(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{}, func(c *config.Config) { c.ProxyMaxWait = 300 * time.Millisecond })
	conn := f.connect("customer-1", "")
	f.fake.SetAPILatency(1500 * time.Millisecond)
	answers := proxyBurst(t, f, 12, conn.ID)
	ok, refused := 0, 0
	for _, a := range answers {
		switch a.status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			refused++
			if a.header.Get("Retry-After") == "" || a.queued < 250*time.Millisecond || a.queued > 1200*time.Millisecond {
				t.Errorf("refused after %v with %v", a.queued, a.header)
			}
		}
	}
	if ok != 10 || refused != 2 {
		t.Fatalf("%d answered, %d refused; want 10 and 2", ok, refused)
	}
}

func TestAPIProxyRunsAtMostTenCallsPerAccount(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	rec := f.recordGetResponse()
	f.fake.SetAPILatency(150 * time.Millisecond)
	var wg sync.WaitGroup
	for range 25 {
		wg.Go(func() {
			r, err := f.send(http.MethodGet, "/api/v1/connections/"+conn.ID+"/proxy/from-fields", f.key, nil, nil)
			if err != nil || r.status != http.StatusOK {
				t.Errorf("call = %v %d %s", err, r.status, r.body)
			}
		})
	}
	wg.Wait()
	rec.mu.Lock()
	most, total := rec.maxInFlight, len(rec.calls)
	rec.mu.Unlock()
	if total != 25 || most != 10 {
		t.Fatalf("%d calls, at most %d at once; want 25 and exactly 10", total, most)
	}
}

func TestAPIProxySendsXDomainForMax(t *testing.T) {
	t.Parallel()
	app := newTestAppWith(t, getresponsetest.Options{MaxDomain: "example.com"})
	op := app.setup(annEmail, annPass)
	form := appForm("Acme MAX")
	form.Set("client_id", "acme-client")
	form.Set("edition", "max_us")
	form.Set("max_domain", "example.com")
	form.Set("return_origins", "https://app.example.com")
	id := createApp(t, op, form)
	// The fake's URLs are the configured standard defaults, which the form swaps for
	// MAX's: point the app at the fake directly.
	if err := app.store.DB().Exec("UPDATE apps SET auth_url = ?, api_url = ? WHERE id = ?", app.fake.AuthURL(), app.fake.APIURL(), id).Error; err != nil {
		t.Fatal(err)
	}
	app.store.AppsWritten() // a raw write: the app cache must hear of it
	app.fake.AddClient("acme-client", clientSecret, app.cfg.RedirectURL())
	f := withAPIKey(&connectFixture{testApp: app, op: op, appID: id, clientID: "acme-client"})
	conn := f.connect("customer-1", "")
	rec := f.recordGetResponse()
	r, err := f.send(http.MethodGet, "/api/v1/connections/"+conn.ID+"/proxy/accounts", f.key, nil, http.Header{"X-Domain": {"evil.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK || !strings.Contains(r.body, `"accountId"`) {
		t.Fatalf("MAX proxy call = %d %s", r.status, r.body)
	}
	if got := rec.seen()[0].header.Values("X-Domain"); len(got) != 1 || got[0] != "example.com" {
		t.Fatalf("X-Domain sent = %q", got)
	}
}

func TestAPIProxyWhenGetResponseDoesNotAnswer(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	rec := f.recordGetResponse()
	rec.srv.Close()
	// Only the API base is gone (the token endpoint too, but the token is valid).
	r := f.call(http.MethodGet, "/api/v1/connections/"+conn.ID+"/proxy/from-fields", nil)
	e := wantError(t, r, http.StatusServiceUnavailable, "getresponse_unavailable")
	if e.Error.RetryAfter < 1 || r.header.Get("Retry-After") == "" {
		t.Fatalf("no retry_after: %s", r.body)
	}
	if access, _ := f.plaintextTokens(conn.ID); strings.Contains(r.body, access) {
		t.Fatal("the error names the access token")
	}
}

// TestAPIProxyNoRefreshStorm: GetResponse answering every call with 1014 (a token
// it keeps refusing) does not turn a burst of proxied calls into a burst of
// refreshes: 30 calls at once cause one refresh call (the issue asked for at most 3
// for 20), and 30 parallel POST …/refresh right after it at most the explicit limit.
func TestAPIProxyNoRefreshStorm(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	f.age(conn.ID, time.Hour)
	f.fake.FailAPI(getresponsetest.APIExpiredToken, -1)
	f.fake.ResetCounts()
	var wg sync.WaitGroup
	statuses := make([]int, 30)
	for i := range statuses {
		wg.Go(func() {
			statuses[i] = f.call(http.MethodGet, "/api/v1/connections/"+conn.ID+"/proxy/from-fields", nil).status
		})
	}
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusUnauthorized {
			t.Fatalf("call %d = %d, want GetResponse's 401", i, st)
		}
	}
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh); n != 1 {
		t.Fatalf("30 proxied calls answered 1014 caused %d refresh calls, want 1", n)
	}
	// And sequentially, after the burst: no more refreshes within the cooldown.
	before := f.fake.Count(getresponsetest.EndpointTokenRefresh)
	for range 20 {
		f.call(http.MethodGet, "/api/v1/connections/"+conn.ID+"/proxy/from-fields", nil)
	}
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh) - before; n != 0 {
		t.Fatalf("20 more calls caused %d refreshes", n)
	}
	// The API's own "refresh now" is explicit: the cooldown does not hold it back,
	// but 30 at once share calls and the explicit limit bounds them.
	var ok atomic.Int64
	for range 30 {
		wg.Go(func() {
			switch r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/refresh", nil); r.status {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusTooManyRequests:
				wantError(t, r, http.StatusTooManyRequests, "refresh_too_soon")
			default:
				t.Errorf("POST …/refresh = %d %s", r.status, r.body)
			}
		})
	}
	wg.Wait()
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh) - before; n < 1 || n > 5 || ok.Load() == 0 {
		t.Fatalf("30 parallel POST …/refresh caused %d refreshes (%d answered 200), want 1 to 5", n, ok.Load())
	}
}

// TestAPIProxyReturnsRedirectsAsIs: a 3xx from GetResponse comes back to the
// caller as it is; grconnect never follows it (the bearer token would go along).
func TestAPIProxyReturnsRedirectsAsIs(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	rec := f.recordGetResponse()
	var trapped int
	var mu sync.Mutex
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		trapped++
		mu.Unlock()
	}))
	defer trap.Close()
	rec.setAnswer(func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		w.Header().Set("Location", trap.URL+"/steal")
		w.WriteHeader(http.StatusTemporaryRedirect)
		io.WriteString(w, "moved")
		return true
	})
	// The caller's own client must not follow it either, to see what grconnect answered.
	caller := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, f.srv.URL+"/api/v1/connections/"+conn.ID+"/proxy/contacts", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+f.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := caller.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != trap.URL+"/steal" || string(body) != "moved" {
			t.Fatalf("%s through the proxy = %d %q %q, want GetResponse's 307 as is", method, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
	if n := len(rec.seen()); n != 2 {
		t.Fatalf("GetResponse saw %d calls, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if trapped != 0 {
		t.Fatalf("the proxy followed a redirect %d times", trapped)
	}
}
