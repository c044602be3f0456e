package handlers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// apiFixture is a connect fixture with an API key and a client for the JSON API
// that keeps every answer, so a test can check that none leaked a secret.
type apiFixture struct {
	*connectFixture
	key string
	hc  *http.Client

	mu      sync.Mutex
	answers []response
	// secrets are values no API answer may contain: refresh tokens, the client secret.
	secrets []string
}

func newAPIFixture(t testing.TB, fo getresponsetest.Options, opts ...option) *apiFixture {
	t.Helper()
	return withAPIKey(newConnectFixture(t, fo, opts...))
}

// withAPIKey adds an API key and the leak check to a connect fixture.
func withAPIKey(cf *connectFixture) *apiFixture {
	cf.t.Helper()
	_, key, err := cf.apiKeys.Create(context.Background(), services.APIKeyInput{Name: "test backend", CreatedBy: "test"})
	if err != nil {
		cf.t.Fatal(err)
	}
	f := &apiFixture{connectFixture: cf, key: key, hc: &http.Client{Timeout: 30 * time.Second}, secrets: []string{clientSecret}}
	cf.t.Cleanup(f.assertNoSecretsInAnswers)
	return f
}

// connect runs the OAuth flow and remembers the connection's refresh token as a secret.
func (f *apiFixture) connect(customerRef, accountID string) *models.Connection {
	f.t.Helper()
	conn := f.connectFixture.connect(customerRef, accountID)
	_, refresh := f.plaintextTokens(conn.ID)
	f.mu.Lock()
	f.secrets = append(f.secrets, refresh)
	f.mu.Unlock()
	return conn
}

// send makes an API request with key ("" for none) and reads the whole answer.
// It is safe to call from several goroutines.
func (f *apiFixture) send(method, path, key string, body io.Reader, header http.Header) (response, error) {
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		return response{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return f.roundTrip(req)
}

func (f *apiFixture) roundTrip(req *http.Request) (response, error) {
	resp, err := f.hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: string(data)}
	f.mu.Lock()
	f.answers = append(f.answers, r)
	f.mu.Unlock()
	return r, nil
}

// call sends a request with the fixture's key; v, when not nil, is the JSON body.
func (f *apiFixture) call(method, path string, v any) response {
	f.t.Helper()
	var body io.Reader
	header := http.Header{}
	if v != nil {
		data, err := json.Marshal(v)
		if err != nil {
			f.t.Fatal(err)
		}
		body = bytes.NewReader(data)
		header.Set("Content-Type", "application/json")
	}
	r, err := f.send(method, path, f.key, body, header)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// assertNoSecretsInAnswers checks every API answer of the test: no refresh token,
// no client secret, not even the name of the refresh token field.
func (f *apiFixture) assertNoSecretsInAnswers() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.answers {
		var headers strings.Builder
		for k, v := range a.header {
			fmt.Fprintf(&headers, "%s: %s\n", k, strings.Join(v, ","))
		}
		for _, s := range append([]string{"refresh_token", f.key}, f.secrets...) {
			if s != "" && (strings.Contains(a.body, s) || strings.Contains(headers.String(), s)) {
				f.t.Errorf("an API answer (%d) contains a secret %q…", a.status, s[:min(8, len(s))])
			}
		}
	}
	if logs := f.logs.String(); strings.Contains(logs, f.key) || strings.Contains(logs, strings.SplitN(f.key, "_", 3)[2]) {
		f.t.Error("the log contains the API key")
	}
}

// apiErr is the API's error envelope.
type apiErr struct {
	Error struct {
		Code       string            `json:"code"`
		Message    string            `json:"message"`
		Fields     map[string]string `json:"fields"`
		RetryAfter int               `json:"retry_after"`
		Reconnect  *struct {
			Method string            `json:"method"`
			Path   string            `json:"path"`
			Body   map[string]string `json:"body"`
		} `json:"reconnect"`
		App *struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Health string `json:"health"`
		} `json:"app"`
	} `json:"error"`
}

// decode parses a JSON answer into a T, failing the test when it is not JSON.
func decode[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("answer %d is %q, not JSON: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("answer %d is not the JSON expected: %v\n%s", r.status, err, r.body)
	}
	return v
}

// wantError checks an error answer's status and code and returns its envelope.
func wantError(t testing.TB, r response, status int, code string) apiErr {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d: %s", r.status, status, r.body)
	}
	e := decode[apiErr](t, r)
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error = %+v, want code %q with a message", e.Error, code)
	}
	return e
}

// connectionAnswer is the API's connection.
type connectionAnswer struct {
	ID          string        `json:"id"`
	AppID       string        `json:"app_id"`
	CustomerRef string        `json:"customer_ref"`
	Status      models.Status `json:"status"`
	Account     struct {
		ID, Email, Name string
	} `json:"account"`
	ExpiresAt     *time.Time `json:"expires_at"`
	LastRefreshAt *time.Time `json:"last_refresh_at"`
	LastError     string     `json:"last_error"`
}

type tokenAnswer struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// apiRoutes are one request per /api/v1 route, with a placeholder connection ID.
var apiRoutes = []struct{ method, path string }{
	{http.MethodGet, "/api/v1/openapi.json"},
	{http.MethodPost, "/api/v1/connect-sessions"},
	{http.MethodDelete, "/api/v1/connect-sessions/lnk_ID"},
	{http.MethodGet, "/api/v1/connections"},
	{http.MethodGet, "/api/v1/connections/ID"},
	{http.MethodDelete, "/api/v1/connections/ID"},
	{http.MethodPost, "/api/v1/connections/ID/token"},
	{http.MethodPost, "/api/v1/connections/ID/refresh"},
	{http.MethodGet, "/api/v1/connections/ID/proxy/from-fields"},
	{http.MethodPost, "/api/v1/connections/ID/proxy/contacts"},
	{http.MethodGet, "/api/v1/no-such-route"},
}

func TestAPIRefusesMissingWrongAndRevokedKeys(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	_, revoked, err := f.apiKeys.Create(t.Context(), services.APIKeyInput{Name: "old", CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := f.apiKeys.List(t.Context())
	for _, k := range keys {
		if k.Name == "old" {
			if err := f.apiKeys.Revoke(t.Context(), k.ID, "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	prefix := f.key[:strings.LastIndex(f.key, "_")]
	wrongSecret := prefix + "_" + strings.Repeat("a", len(f.key)-len(prefix)-1)
	for _, tc := range []struct{ name, header string }{
		{"missing", ""},
		{"empty bearer", "Bearer "},
		{"basic scheme", "Basic " + f.key},
		{"malformed", "Bearer not-a-key"},
		{"unknown prefix", "Bearer grc_aaaaaaaa_" + strings.Repeat("b", 52)},
		{"right prefix, wrong secret", "Bearer " + wrongSecret},
		{"revoked", "Bearer " + revoked},
	} {
		for _, route := range apiRoutes {
			path := strings.Replace(route.path, "ID", conn.ID, 1)
			h := http.Header{}
			if tc.header != "" {
				h.Set("Authorization", tc.header)
			}
			r, err := f.send(route.method, path, "", strings.NewReader(`{}`), h)
			if err != nil {
				t.Fatal(err)
			}
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s: %s %s = %d, want 401", tc.name, route.method, route.path, r.status)
				continue
			}
			if e := decode[apiErr](t, r); e.Error.Code != "unauthorized" || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: %s %s answered %s", tc.name, route.method, route.path, r.body)
			}
		}
	}
	if f.fake.Count(getresponsetest.EndpointFromFields) != 0 || f.fake.Count(getresponsetest.EndpointOther) != 0 {
		t.Fatal("a request without a valid key reached GetResponse")
	}
	// The same routes work with the key (the bearer scheme in any case).
	h := http.Header{"Authorization": {"bearer " + f.key}}
	if r, _ := f.send(http.MethodGet, "/api/v1/connections/"+conn.ID, "", nil, h); r.status != http.StatusOK {
		t.Fatalf("lower-case bearer = %d", r.status)
	}
	// Unknown paths answer JSON 404, under /api/v1 and elsewhere under /api.
	for _, p := range []string{"/api/v1/no-such-route", "/api/v1/connections/" + conn.ID + "/nothing", "/api/v2/connections"} {
		wantError(t, f.call(http.MethodGet, p, nil), http.StatusNotFound, "not_found")
	}
	// A known path with another method: Echo's router answers it from the group's
	// catch-all, so it is a JSON 404 (a 405 would do as well).
	if r := f.call(http.MethodPut, "/api/v1/connections/"+conn.ID+"/token", nil); r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT on the token route = %d", r.status)
	} else {
		wantError(t, r, r.status, map[int]string{404: "not_found", 405: "method_not_allowed"}[r.status])
	}
	// Every answer of the API is kept out of caches.
	if cc := f.call(http.MethodGet, "/api/v1/connections", nil).header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q", cc)
	}
}

func TestAPIConnectSessions(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	r := f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{
		"app_id": f.appID, "customer_ref": "customer-7", "return_url": "https://app.example.com/done",
	})
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d: %s", r.status, r.body)
	}
	s := decode[struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}](t, r)
	if !strings.HasPrefix(s.URL, f.srv.URL+"/connect/") || time.Until(s.ExpiresAt) < 6*24*time.Hour {
		t.Fatalf("session = %+v", s)
	}
	// It is the dashboard's kind of link: the customer completes the flow with it.
	customer := f.browser()
	state := f.startFlow(customer, s.URL)
	redirect, err := f.fake.Approve(f.clientID, state, "")
	if err != nil {
		t.Fatal(err)
	}
	back := f.callback(customer, redirect)
	u, _ := url.Parse(back.location())
	if back.status != http.StatusSeeOther || u.Host != "app.example.com" || u.Query().Get("status") != "connected" {
		t.Fatalf("callback = %d %q", back.status, back.location())
	}
	id := u.Query().Get("connection_id")
	conn := decode[connectionAnswer](t, f.call(http.MethodGet, "/api/v1/connections/"+id, nil))
	if conn.CustomerRef != "customer-7" || conn.Status != models.StatusActive || conn.AppID != f.appID {
		t.Fatalf("connection = %+v", conn)
	}
	var made models.ConnectLink
	f.store.DB().Where("customer_ref = ?", "customer-7").First(&made)
	if !strings.HasPrefix(made.CreatedBy, "api:grc_") {
		t.Errorf("the link was made by %q, not the API key", made.CreatedBy)
	}

	// A reconnect link for that connection.
	r = f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"connection_id": id, "ttl_seconds": 3600})
	if r.status != http.StatusCreated {
		t.Fatalf("reconnect session = %d: %s", r.status, r.body)
	}
	var link models.ConnectLink
	f.store.DB().Order("created_at DESC").First(&link)
	if link.ConnectionID == nil || *link.ConnectionID != id || link.CustomerRef != "customer-7" {
		t.Fatalf("reconnect link = %+v", link)
	}
	if page := f.op.get("/connections/" + id); !strings.Contains(page.body, "by API key “test backend”") || strings.Contains(page.body, "api:grc_") {
		t.Error("the timeline does not name the API key that made the reconnect link by its name")
	}

	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"return URL off the app's origins", map[string]any{"app_id": f.appID, "customer_ref": "c", "return_url": "https://evil.example/x"}, "return_url"},
		{"unknown app", map[string]any{"app_id": "app_nope", "customer_ref": "c"}, "app_id"},
		{"no app", map[string]any{"customer_ref": "c"}, "app_id"},
		{"no customer", map[string]any{"app_id": f.appID}, "customer_ref"},
		{"too short a link", map[string]any{"app_id": f.appID, "customer_ref": "c", "ttl_seconds": 5}, "ttl_seconds"},
		{"another app's connection", map[string]any{"app_id": "app_other", "connection_id": id}, "app_id"},
	} {
		e := wantError(t, f.call(http.MethodPost, "/api/v1/connect-sessions", tc.body), http.StatusBadRequest, "invalid_input")
		if e.Error.Fields[tc.field] == "" {
			t.Errorf("%s: fields = %v, want %s", tc.name, e.Error.Fields, tc.field)
		}
	}
	wantError(t, f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"connection_id": "con_nope"}), http.StatusNotFound, "not_found")
	wantError(t, f.call(http.MethodPost, "/api/v1/connect-sessions", nil), http.StatusBadRequest, "bad_request")
	wantError(t, f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app": f.appID}), http.StatusBadRequest, "bad_request")
	big := map[string]any{"app_id": f.appID, "customer_ref": strings.Repeat("x", 2<<20)}
	wantError(t, f.call(http.MethodPost, "/api/v1/connect-sessions", big), http.StatusRequestEntityTooLarge, "request_entity_too_large")
}

func TestAPIListsConnectionsWithFiltersAndCursors(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	real := f.connect("customer-1", "")
	seedConnections(t, f.store, f.appID, 120)
	all := map[string]connectionAnswer{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("the cursor never ends")
		}
		r := f.call(http.MethodGet, "/api/v1/connections?limit=50&cursor="+url.QueryEscape(cursor), nil)
		page := decode[struct {
			Connections []connectionAnswer `json:"connections"`
			NextCursor  *string            `json:"next_cursor"`
		}](t, r)
		if len(page.Connections) > 50 {
			t.Fatalf("page of %d", len(page.Connections))
		}
		for _, c := range page.Connections {
			if _, dup := all[c.ID]; dup {
				t.Fatalf("%s listed twice", c.ID)
			}
			all[c.ID] = c
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if len(all) != 121 || all[real.ID].Account.Email != real.AccountEmail {
		t.Fatalf("listed %d connections; the real one is %+v", len(all), all[real.ID])
	}

	count := func(query string) int {
		t.Helper()
		r := f.call(http.MethodGet, "/api/v1/connections?limit=500&"+query, nil)
		return len(decode[struct {
			Connections []connectionAnswer `json:"connections"`
		}](t, r).Connections)
	}
	// customer_ref is exact: customer-0000001 is not customer-00000010.
	if n := count("customer_ref=customer-0000001"); n != 1 {
		t.Errorf("customer_ref filter found %d", n)
	}
	if n := count("customer_ref=customer-1"); n != 1 {
		t.Errorf("customer_ref of the real connection found %d", n)
	}
	if n := count("status=needs_reconnect"); n != 20 {
		t.Errorf("status filter found %d, want 20", n)
	}
	if n := count("app_id=" + f.appID + "&status=disconnected"); n != 20 {
		t.Errorf("app and status filter found %d, want 20", n)
	}
	if n := count("app_id=app_other"); n != 0 {
		t.Errorf("another app's filter found %d", n)
	}
	wantError(t, f.call(http.MethodGet, "/api/v1/connections?status=sleeping", nil), http.StatusBadRequest, "invalid_input")
	wantError(t, f.call(http.MethodGet, "/api/v1/connections?limit=0", nil), http.StatusBadRequest, "invalid_input")
	wantError(t, f.call(http.MethodGet, "/api/v1/connections?cursor=bm9wZQ", nil), http.StatusBadRequest, "invalid_cursor")
}

func TestAPIConnectionTokenRefreshAndDisconnect(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	access, _ := f.plaintextTokens(conn.ID)

	got := decode[connectionAnswer](t, f.call(http.MethodGet, "/api/v1/connections/"+conn.ID, nil))
	if got.ID != conn.ID || got.Status != models.StatusActive || got.Account.ID != conn.AccountID || got.Account.Email != conn.AccountEmail ||
		got.ExpiresAt == nil || got.LastRefreshAt == nil || got.CustomerRef != "customer-1" {
		t.Fatalf("connection = %+v", got)
	}
	wantError(t, f.call(http.MethodGet, "/api/v1/connections/con_nope", nil), http.StatusNotFound, "not_found")
	wantError(t, f.call(http.MethodPost, "/api/v1/connections/con_nope/token", nil), http.StatusNotFound, "not_found")

	// A valid token comes as it is, without calling GetResponse; the answer has the
	// access token and nothing else secret.
	r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", nil)
	tok := decode[tokenAnswer](t, r)
	if r.status != http.StatusOK || tok.AccessToken != access || tok.TokenType != "Bearer" || !tok.ExpiresAt.Equal(*conn.ExpiresAt) {
		t.Fatalf("token = %d %+v", r.status, tok)
	}
	var fields map[string]any
	json.Unmarshal([]byte(r.body), &fields)
	if len(fields) != 3 {
		t.Fatalf("token answer has fields %v", fields)
	}
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh); n != 0 {
		t.Fatalf("a valid token was refreshed %d times", n)
	}

	// A forced refresh right after connecting asks GetResponse: no cooldown holds
	// an explicit request back.
	r = f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/refresh", nil)
	refreshed := decode[connectionAnswer](t, r)
	if r.status != http.StatusOK || refreshed.Status != models.StatusActive || f.fake.Count(getresponsetest.EndpointTokenRefresh) != 1 {
		t.Fatalf("refresh = %d %+v, %d refresh calls", r.status, refreshed, f.fake.Count(getresponsetest.EndpointTokenRefresh))
	}
	access2, _ := f.plaintextTokens(conn.ID)
	if tok := decode[tokenAnswer](t, f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", nil)); access2 == access || tok.AccessToken != access2 {
		t.Fatal("the token route does not serve the refreshed token")
	}

	// Transient failure: 503 with retry_after, and the still-valid token stays served.
	f.fake.FailToken(getresponsetest.TokenServerError, 1)
	r = f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/refresh", nil)
	e := wantError(t, r, http.StatusServiceUnavailable, "getresponse_unavailable")
	if e.Error.RetryAfter < 1 || r.header.Get("Retry-After") == "" {
		t.Fatalf("transient failure without retry_after: %s", r.body)
	}
	if tok := decode[tokenAnswer](t, f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", nil)); tok.AccessToken != access2 {
		t.Fatal("the still-valid token is not served after a transient failure")
	}

	// The refresh token is rejected: 409 needs_reconnect with the reconnect hint, on
	// both routes.
	f.fake.FailToken(getresponsetest.TokenInvalidGrantRFC, 1)
	for _, path := range []string{"/refresh", "/token"} {
		e := wantError(t, f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+path, nil), http.StatusConflict, "needs_reconnect")
		if e.Error.Reconnect == nil || e.Error.Reconnect.Path != "/api/v1/connect-sessions" || e.Error.Reconnect.Body["connection_id"] != conn.ID ||
			!strings.Contains(e.Error.Message, "connect-sessions") {
			t.Fatalf("%s: no reconnect hint: %+v", path, e.Error)
		}
	}
	// The hint works.
	hint := f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]string{"connection_id": conn.ID})
	if hint.status != http.StatusCreated {
		t.Fatalf("reconnect session = %d", hint.status)
	}

	// Disconnect: tokens erased, record kept; then 409 disconnected.
	r = f.call(http.MethodDelete, "/api/v1/connections/"+conn.ID, nil)
	gone := decode[connectionAnswer](t, r)
	if r.status != http.StatusOK || gone.Status != models.StatusDisconnected || gone.ExpiresAt != nil {
		t.Fatalf("disconnect = %d %+v", r.status, gone)
	}
	stored, _ := f.store.ConnectionByID(t.Context(), conn.ID)
	if stored.AccessTokenEnc != "" || stored.RefreshTokenEnc != "" || stored.Status != models.StatusDisconnected {
		t.Fatalf("stored after disconnect: %+v", stored)
	}
	wantError(t, f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", nil), http.StatusConflict, "disconnected")
	wantError(t, f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/refresh", nil), http.StatusConflict, "disconnected")
	if r := f.call(http.MethodDelete, "/api/v1/connections/"+conn.ID, nil); r.status != http.StatusOK {
		t.Fatalf("second disconnect = %d", r.status)
	}
	wantError(t, f.call(http.MethodDelete, "/api/v1/connections/con_nope", nil), http.StatusNotFound, "not_found")
	if page := f.op.get("/connections/" + conn.ID); !strings.Contains(page.body, "by API key “test backend”") {
		t.Error("the timeline does not name the API key by its name")
	}
}

// TestAPITokenRefreshesInsideTheMarginOnce proves the token route refreshes a token
// about to expire (inside the 60 s floor, so every caller waits for it), and that
// concurrent callers share one refresh.
func TestAPITokenRefreshesInsideTheMarginOnce(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	old, _ := f.plaintextTokens(conn.ID)
	f.age(conn.ID, time.Hour)
	f.expireIn(conn.ID, 30*time.Second) // inside the margin, and the floor
	f.fake.SetTokenLatency(100 * time.Millisecond)
	var wg sync.WaitGroup
	tokens := make([]string, 8)
	for i := range tokens {
		wg.Go(func() {
			r, err := f.send(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", f.key, nil, nil)
			if err != nil || r.status != http.StatusOK {
				t.Errorf("token = %v %d %s", err, r.status, r.body)
				return
			}
			var tok tokenAnswer
			json.Unmarshal([]byte(r.body), &tok)
			tokens[i] = tok.AccessToken
		})
	}
	wg.Wait()
	fresh, _ := f.plaintextTokens(conn.ID)
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh); n != 1 || fresh == old {
		t.Fatalf("%d refreshes for 8 concurrent calls inside the margin", n)
	}
	for _, tok := range tokens {
		if tok != fresh {
			t.Fatal("a caller got the token about to expire")
		}
	}
}

func TestAPIKeyFormatAndStorage(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	var key models.APIKey
	if err := f.store.DB().Where("name = ?", "test backend").First(&key).Error; err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(f.key))
	if !strings.HasPrefix(f.key, key.Prefix+"_") || len(key.Prefix) != 12 || len(f.key) != 65 || key.KeyHash != hex.EncodeToString(sum[:]) {
		t.Fatalf("key %q… stored as prefix %q hash %q", f.key[:12], key.Prefix, key.KeyHash)
	}
	if key.LastUsedAt != nil {
		t.Fatal("a new key has a last-used time")
	}
	f.call(http.MethodGet, "/api/v1/connections", nil)
	// The use is noted, not written on the request's path…
	f.store.DB().Where("id = ?", key.ID).First(&key)
	if key.LastUsedAt != nil {
		t.Fatal("an API request wrote the key's last-used time itself")
	}
	// …and written by the background flush.
	f.built.APIKeys.FlushUses(t.Context())
	f.store.DB().Where("id = ?", key.ID).First(&key)
	if key.LastUsedAt == nil || time.Since(*key.LastUsedAt) > time.Minute {
		t.Fatalf("last used = %v", key.LastUsedAt)
	}
	assertNotInDatabaseFiles(t, f.testApp, f.key, strings.SplitN(f.key, "_", 3)[2])
}
