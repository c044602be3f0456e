package getresponse_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/getresponse"
)

const sentToken = "0123456789abcdef0123456789abcdef01234567"

// cannedServer answers every request with status, headers and body.
func cannedServer(t *testing.T, status int, header map[string]string, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func envelopeBody(status, code int, codeDesc, msg, context string) string {
	b, _ := json.Marshal(map[string]any{
		"httpStatus": status, "code": code, "codeDescription": codeDesc, "message": msg,
		"moreInfo": "https://apidocs.getresponse.com/en/v3/errors/" + strconv.Itoa(code),
		"context":  json.RawMessage(context), "uuid": "62417847-4f12-4c25-9b3a-0b619a187efe",
	})
	return string(b)
}

func TestAPIErrorDecoding(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		header      map[string]string
		body        string
		wantCode    int
		wantMessage string
		wantContext string
		wantRetry   time.Duration
		wantRL      getresponse.RateLimit
		wantActor   getresponse.Actor
		is, isNot   []error
	}{
		{
			name:   "validation envelope with object context",
			status: 400,
			body: envelopeBody(400, 1000, "General error of validation process, more details should be in context section",
				"Validation error, see context section for more information",
				`{"validationType":"searchFilter[query]","fieldName":"name","originalName":"lorem-ipsum","errorDescription":"Not allowed search field"}`),
			wantCode: 1000, wantMessage: "Validation error, see context section for more information",
			wantContext: `{"validationType":"searchFilter[query]","fieldName":"name","originalName":"lorem-ipsum","errorDescription":"Not allowed search field"}`,
			wantActor:   getresponse.ActorCaller,
			isNot:       []error{getresponse.ErrTransient, getresponse.ErrTokenExpired, getresponse.ErrRateLimited, getresponse.ErrClientRejected},
		},
		{
			name:     "context is an empty array",
			status:   400,
			body:     envelopeBody(400, 1000, "General error", "Validation error", `[]`),
			wantCode: 1000, wantMessage: "Validation error", wantContext: `[]`, wantActor: getresponse.ActorCaller,
			isNot: []error{getresponse.ErrTransient},
		},
		{
			name:     "context is an array of strings",
			status:   400,
			body:     envelopeBody(400, 1000, "General error", "Validation error", `["perPage: too big","page: too small"]`),
			wantCode: 1000, wantMessage: "Validation error", wantContext: `["perPage: too big","page: too small"]`, wantActor: getresponse.ActorCaller,
		},
		{
			name:     "expired token, 401",
			status:   401,
			header:   map[string]string{"Content-Type": "application/json"},
			body:     envelopeBody(401, 1014, "Problem during authentication process, check headers!", "The access token provided is expired", `{"sentToken":"`+sentToken+`"}`),
			wantCode: 1014, wantMessage: "The access token provided is expired", wantContext: `{"sentToken":"` + sentToken + `"}`,
			wantActor: getresponse.ActorCustomer,
			is:        []error{getresponse.ErrTokenExpired},
			isNot:     []error{getresponse.ErrTransient, getresponse.ErrGrantRejected, getresponse.ErrClientRejected},
		},
		{
			name:     "1014 at 403 (old docs)",
			status:   403,
			body:     envelopeBody(403, 1014, "Problem during authentication process, check headers!", "Unable to authenticate request. Check credentials or authentication method details", `{"authenticationType":"auth_token"}`),
			wantCode: 1014, wantMessage: "Unable to authenticate request. Check credentials or authentication method details",
			wantContext: `{"authenticationType":"auth_token"}`, wantActor: getresponse.ActorCustomer,
			is: []error{getresponse.ErrTokenExpired},
		},
		{
			name:   "1015 with Retry-After and X-RateLimit-Reset",
			status: 429,
			header: map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "80", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "432 seconds"},
			body: envelopeBody(429, 1015, "Too many request to API, quota reached, please wait till next quota window",
				"You have reached your requests limit for this time window, please wait...", `{"currentLimit":30000,"timeToReset":"100 seconds"}`),
			wantCode: 1015, wantMessage: "You have reached your requests limit for this time window, please wait...",
			wantContext: `{"currentLimit":30000,"timeToReset":"100 seconds"}`,
			wantRetry:   time.Second, wantActor: getresponse.ActorWait,
			wantRL: getresponse.RateLimit{Limit: 80, Remaining: 0, Reset: 432 * time.Second, Window: time.Second, Known: true},
			is:     []error{getresponse.ErrRateLimited, getresponse.ErrTransient},
			isNot:  []error{getresponse.ErrTokenExpired},
		},
		{
			name:     "1015 with X-RateLimit-Reset only",
			status:   429,
			header:   map[string]string{"X-RateLimit-Limit": "30000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "432 seconds"},
			body:     envelopeBody(429, 1015, "quota reached", "limit", `{"currentLimit":30000,"timeToReset":"100 seconds"}`),
			wantCode: 1015, wantMessage: "limit", wantContext: `{"currentLimit":30000,"timeToReset":"100 seconds"}`,
			wantRetry: 100 * time.Second, wantActor: getresponse.ActorWait, // the refusal's own timeToReset
			wantRL: getresponse.RateLimit{Limit: 30000, Remaining: 0, Reset: 432 * time.Second, Window: getresponse.LimitWindow, Known: true},
			is:     []error{getresponse.ErrRateLimited, getresponse.ErrTransient},
		},
		{
			name:     "1015 with context timeToReset only",
			status:   429,
			body:     envelopeBody(429, 1015, "quota reached", "limit", `{"currentLimit":30000,"timeToReset":"100 seconds"}`),
			wantCode: 1015, wantMessage: "limit", wantContext: `{"currentLimit":30000,"timeToReset":"100 seconds"}`,
			wantRetry: 100 * time.Second, wantActor: getresponse.ActorWait,
			is: []error{getresponse.ErrRateLimited},
		},
		{
			name:     "1017 API blocked",
			status:   403,
			body:     envelopeBody(403, 1017, "API permanently blocked", "Your access to the API has been permanently blocked", `[]`),
			wantCode: 1017, wantMessage: "Your access to the API has been permanently blocked", wantContext: `[]`,
			wantActor: getresponse.ActorOperator,
			is:        []error{getresponse.ErrClientRejected},
			isNot:     []error{getresponse.ErrTransient, getresponse.ErrTokenExpired},
		},
		{
			name:     "1018 IP blocked",
			status:   403,
			body:     envelopeBody(403, 1018, "IP address blocked", "Your IP address has been blocked", `[]`),
			wantCode: 1018, wantMessage: "Your IP address has been blocked", wantContext: `[]`,
			wantActor: getresponse.ActorWait,
			is:        []error{getresponse.ErrTransient},
			isNot:     []error{getresponse.ErrClientRejected},
		},
		{
			name:     "500 code 1",
			status:   500,
			body:     envelopeBody(500, 1, "Internal error", "Internal error, please try again later", `[]`),
			wantCode: 1, wantMessage: "Internal error, please try again later", wantContext: `[]`,
			wantActor: getresponse.ActorWait,
			is:        []error{getresponse.ErrTransient},
			isNot:     []error{getresponse.ErrRateLimited, getresponse.ErrClientRejected},
		},
		{
			name:        "non-JSON 502",
			status:      502,
			header:      map[string]string{"Content-Type": "text/html", "Retry-After": "30"},
			body:        "<html><body><h1>502 Bad Gateway</h1></body></html>",
			wantMessage: "Bad Gateway", wantRetry: 30 * time.Second, wantActor: getresponse.ActorWait,
			is: []error{getresponse.ErrTransient},
		},
		{
			name:        "non-JSON 404",
			status:      404,
			body:        "not found",
			wantMessage: "Not Found", wantActor: getresponse.ActorCaller,
			isNot: []error{getresponse.ErrTransient, getresponse.ErrTokenExpired},
		},
		{
			name:     "message echoing the token",
			status:   401,
			body:     envelopeBody(401, 1014, "auth", "Token "+sentToken+" is unknown", `{"sentToken":"`+sentToken+`"}`),
			wantCode: 1014, wantMessage: "Token [redacted] is unknown", wantContext: `{"sentToken":"` + sentToken + `"}`, wantActor: getresponse.ActorCustomer,
			is: []error{getresponse.ErrTokenExpired},
		},
		{
			name:        "JSON that is not an envelope",
			status:      400,
			body:        `{"foo":"bar"}`,
			wantMessage: "Bad Request", wantActor: getresponse.ActorCaller,
		},
		{
			name:     "1014 about X-Domain",
			status:   401,
			body:     envelopeBody(401, 1014, "Problem during authentication process, check headers!", "Unable to authenticate request", `{"authenticationType":"x-domain"}`),
			wantCode: 1014, wantMessage: "Unable to authenticate request", wantContext: `{"authenticationType":"x-domain"}`,
			wantActor: getresponse.ActorOperator,
			is:        []error{getresponse.ErrTokenExpired, getresponse.ErrClientRejected},
		},
		{
			name:     "1016 temporary block with Retry-After",
			status:   403,
			header:   map[string]string{"Retry-After": "120"},
			body:     envelopeBody(403, 1016, "API temporarily blocked", "Blocked for now", `[]`),
			wantCode: 1016, wantMessage: "Blocked for now", wantContext: `[]`, wantRetry: 2 * time.Minute,
			wantActor: getresponse.ActorWait, is: []error{getresponse.ErrTransient},
		},
		{
			name:     "1019 maintenance",
			status:   403,
			body:     envelopeBody(403, 1019, "Maintenance", "Back soon", `[]`),
			wantCode: 1019, wantMessage: "Back soon", wantContext: `[]`,
			wantActor: getresponse.ActorWait, is: []error{getresponse.ErrTransient},
		},
		{
			name:     "1021 invalid headers",
			status:   400,
			body:     envelopeBody(400, 1021, "Invalid headers", "Bad header", `[]`),
			wantCode: 1021, wantMessage: "Bad header", wantContext: `[]`,
			wantActor: getresponse.ActorOperator, is: []error{getresponse.ErrClientRejected},
		},
		{
			name:     "1023 missing permissions",
			status:   403,
			body:     envelopeBody(403, 1023, "Missing permissions", "No rights", `[]`),
			wantCode: 1023, wantMessage: "No rights", wantContext: `[]`,
			wantActor: getresponse.ActorCustomer, isNot: []error{getresponse.ErrTransient, getresponse.ErrClientRejected},
		},
		{
			name:     "1024 domain not found",
			status:   404,
			body:     envelopeBody(404, 1024, "Domain not found", "No such domain", `[]`),
			wantCode: 1024, wantMessage: "No such domain", wantContext: `[]`,
			wantActor: getresponse.ActorOperator, is: []error{getresponse.ErrClientRejected},
		},
		{
			name:        "307 redirect",
			status:      307,
			header:      map[string]string{"Location": "https://elsewhere.example/v3/from-fields"},
			body:        "",
			wantMessage: "Temporary Redirect", wantActor: getresponse.ActorWait,
			is: []error{getresponse.ErrTransient},
		},
		{
			name:        "plain 429, no headers",
			status:      429,
			body:        "slow down",
			wantMessage: "Too Many Requests", wantRetry: time.Second, wantActor: getresponse.ActorWait,
			is: []error{getresponse.ErrTransient, getresponse.ErrRateLimited},
		},
	}
	c := getresponse.New(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := cannedServer(t, tt.status, tt.header, tt.body)
			app := getresponse.App{APIURL: srv.URL + "/v3"}
			resp, err := c.Do(context.Background(), app, sentToken, http.MethodGet, "/from-fields", nil, nil)
			var apiErr *getresponse.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error = %#v, want *APIError", err)
			}
			if resp == nil || resp.StatusCode != tt.status || string(resp.Body) != tt.body {
				t.Fatalf("response = %+v, want the raw answer too", resp)
			}
			if apiErr.HTTPStatus != tt.status || apiErr.Code != tt.wantCode || apiErr.Message != tt.wantMessage {
				t.Errorf("APIError = %+v", apiErr)
			}
			if string(apiErr.Context) != tt.wantContext {
				t.Errorf("Context = %s, want %s", apiErr.Context, tt.wantContext)
			}
			if apiErr.RetryAfter != tt.wantRetry {
				t.Errorf("RetryAfter = %v, want %v", apiErr.RetryAfter, tt.wantRetry)
			}
			if tt.wantRL.Known && apiErr.RateLimit != tt.wantRL {
				t.Errorf("RateLimit = %+v, want %+v", apiErr.RateLimit, tt.wantRL)
			}
			if tt.wantCode != 0 && apiErr.UUID == "" {
				t.Error("UUID is empty")
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(err, %v) = false, want true", target)
				}
			}
			for _, target := range tt.isNot {
				if errors.Is(err, target) {
					t.Errorf("errors.Is(err, %v) = true, want false", target)
				}
			}
			if got := apiErr.Actor(); got != tt.wantActor {
				t.Errorf("Actor() = %q, want %q", got, tt.wantActor)
			}
			assertNoSecrets(t, err, sentToken)
		})
	}
}

func TestDoSendsRequest(t *testing.T) {
	var got *http.Request
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(strings.Builder)
		_, _ = io.Copy(b, r.Body)
		got, gotBody = r.Clone(context.Background()), b.String()
		w.Header().Set("X-RateLimit-Limit", "30000")
		w.Header().Set("X-RateLimit-Remaining", "29995")
		w.Header().Set("X-RateLimit-Reset", "432 seconds")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()

	c := getresponse.New(srv.Client())
	app := getresponse.App{APIURL: srv.URL + "/v3/", XDomain: "example.com"}
	resp, err := c.Do(context.Background(), app, sentToken, http.MethodPost, "contacts", map[string][]string{"fields": {"email"}}, strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.Path != "/v3/contacts" || got.URL.Query().Get("fields") != "email" || got.Method != http.MethodPost {
		t.Errorf("request = %s %s", got.Method, got.URL)
	}
	for k, want := range map[string]string{
		"Authorization": "Bearer " + sentToken, "X-Domain": "example.com",
		"Content-Type": "application/json", "Accept": "application/json",
	} {
		if v := got.Header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if gotBody != `{"a":1}` {
		t.Errorf("body = %q", gotBody)
	}
	if want := (getresponse.RateLimit{Limit: 30000, Remaining: 29995, Reset: 432 * time.Second, Window: getresponse.LimitWindow, Known: true}); resp.RateLimit != want {
		t.Errorf("RateLimit = %+v, want %+v", resp.RateLimit, want)
	}
	if resp.Latency <= 0 {
		t.Errorf("Latency = %v, want > 0", resp.Latency)
	}
}

func TestDoNetworkErrors(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	defer srv.Close()
	defer close(hang)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name    string
		apiURL  string
		timeout time.Duration
		cause   error
	}{
		{"connection refused", closed.URL, 0, nil},
		{"deadline", srv.URL, 200 * time.Millisecond, context.DeadlineExceeded},
		{"bad URL", "://nope", 0, nil},
	}
	c := getresponse.New(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			resp, err := c.Do(ctx, getresponse.App{APIURL: tt.apiURL}, sentToken, http.MethodGet, "/accounts", nil, nil)
			if resp != nil {
				t.Errorf("response = %+v, want nil", resp)
			}
			var ne *getresponse.NetworkError
			if !errors.As(err, &ne) || !errors.Is(err, getresponse.ErrTransient) {
				t.Fatalf("error = %v, want a transient *NetworkError", err)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("error = %v, want it to wrap %v", err, tt.cause)
			}
			assertNoSecrets(t, err, sentToken)
		})
	}
}

// assertNoSecrets fails if err's message contains any of the secrets.
func assertNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error message %q contains a secret", msg)
		}
	}
}
