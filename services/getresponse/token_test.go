package getresponse_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// Credentials with characters x/oauth2 URL-escapes before Basic encoding.
const (
	testClientID     = "grconnect app/1"
	testClientSecret = "s3cr3t+&=/%:ü-0123456789"
	testRedirect     = "https://grconnect.example/oauth/callback"
)

// newFake starts a fake GetResponse with the test client registered and
// returns it with the matching App.
func newFake(t *testing.T, opts getresponsetest.Options) (*getresponsetest.Server, getresponse.App) {
	t.Helper()
	s := getresponsetest.NewServer(opts)
	t.Cleanup(s.Close)
	s.AddClient(testClientID, testClientSecret, testRedirect)
	return s, getresponse.App{
		ClientID: testClientID, ClientSecret: testClientSecret,
		AuthURL: s.AuthURL(), APIURL: s.APIURL(), XDomain: opts.MaxDomain, RedirectURL: testRedirect,
	}
}

// approve consents on the fake and returns the authorization code.
func approve(t *testing.T, f *getresponsetest.Fake, state string) string {
	t.Helper()
	redirect, err := f.Approve(testClientID, state, "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(redirect)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Query().Get("state"); got != state {
		t.Fatalf("state = %q, want %q", got, state)
	}
	return u.Query().Get("code")
}

// connect runs consent and exchange and returns the tokens.
func connect(t *testing.T, c *getresponse.Client, s *getresponsetest.Server, app getresponse.App) *getresponse.Token {
	t.Helper()
	tok, err := c.Exchange(context.Background(), app, approve(t, s.Fake, "st"))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

func TestAuthCodeURL(t *testing.T) {
	c := getresponse.New(nil)
	app := getresponse.App{ClientID: testClientID, ClientSecret: testClientSecret, RedirectURL: testRedirect,
		AuthURL: getresponse.DefaultAuthURL(getresponse.EditionStandard, ""), APIURL: getresponse.DefaultAPIURL(getresponse.EditionStandard)}
	u, err := url.Parse(c.AuthCodeURL(app, "state-123"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme+"://"+u.Host+u.Path != "https://app.getresponse.com/oauth2_authorize.html" {
		t.Errorf("authorize URL = %s", u)
	}
	q := u.Query()
	for k, want := range map[string]string{"response_type": "code", "client_id": testClientID, "state": "state-123", "redirect_uri": testRedirect} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"scope", "code_challenge", "code_challenge_method", "client_secret"} {
		if q.Has(k) {
			t.Errorf("authorize URL has %s", k)
		}
	}
	if strings.Contains(u.String(), url.QueryEscape(testClientSecret)) {
		t.Error("authorize URL contains the client secret")
	}
}

func TestExchangeAndRefreshRotation(t *testing.T) {
	tests := []struct {
		rotation     getresponsetest.Rotation
		wantSame     bool // refresh returns the same refresh token
		wantNone     bool // refresh returns no refresh token
		oldStaysGood bool
	}{
		{getresponsetest.RotationNone, true, false, true},
		{getresponsetest.RotationRotate, false, false, true},
		{getresponsetest.RotationStrict, false, false, false},
		{getresponsetest.RotationOmit, false, true, true},
	}
	for _, tt := range tests {
		t.Run(rotationName(tt.rotation), func(t *testing.T) {
			s, app := newFake(t, getresponsetest.Options{Rotation: tt.rotation, ExpiresIn: 2 * time.Hour})
			c := getresponse.New(s.Client())
			before := time.Now()
			tok := connect(t, c, s, app)
			if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn != 2*time.Hour {
				t.Fatalf("exchanged token = %+v", tok)
			}
			if tok.Expiry.Before(before.Add(2*time.Hour)) || tok.Expiry.After(time.Now().Add(2*time.Hour)) {
				t.Errorf("Expiry = %v, want about now + 2h", tok.Expiry)
			}

			next, err := c.Refresh(context.Background(), app, tok.RefreshToken)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if next.AccessToken == "" || next.AccessToken == tok.AccessToken || next.ExpiresIn != 2*time.Hour {
				t.Errorf("refreshed token = %+v", next)
			}
			switch {
			case tt.wantNone:
				if next.RefreshToken != "" {
					t.Errorf("RefreshToken = %q, want empty (server sent none)", next.RefreshToken)
				}
			case tt.wantSame:
				if next.RefreshToken != tok.RefreshToken {
					t.Errorf("RefreshToken changed, want the same")
				}
			default:
				if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
					t.Errorf("RefreshToken = %q, want a new one", next.RefreshToken)
				}
			}

			_, err = c.Refresh(context.Background(), app, tok.RefreshToken)
			if tt.oldStaysGood && err != nil {
				t.Errorf("refresh with the old token: %v, want success", err)
			}
			if !tt.oldStaysGood && !errors.Is(err, getresponse.ErrGrantRejected) {
				t.Errorf("refresh with the old token: %v, want ErrGrantRejected", err)
			}
			if got := s.Count(getresponsetest.EndpointTokenRefresh); got != 2 {
				t.Errorf("refresh calls = %d, want 2", got)
			}
			if _, _, err := c.Account(context.Background(), app, next.AccessToken); err != nil {
				t.Errorf("Account with the refreshed token: %v", err)
			}
		})
	}
}

func rotationName(r getresponsetest.Rotation) string {
	return map[getresponsetest.Rotation]string{
		getresponsetest.RotationNone: "none", getresponsetest.RotationRotate: "rotate",
		getresponsetest.RotationStrict: "strict", getresponsetest.RotationOmit: "omit",
	}[r]
}

// recorder wraps a handler and keeps a copy of every request with its body.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	path   string
	header http.Header
	body   string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, recorded{r.URL.Path, r.Header.Clone(), string(body)})
	rec.mu.Unlock()
	rec.next.ServeHTTP(w, r)
}

func (rec *recorder) all() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

func TestTokenRequestsUseBasicAuthAndXDomain(t *testing.T) {
	tests := []struct {
		name    string
		domain  string
		wantHdr string
	}{
		{"standard", "", ""},
		{"max", "example.com", "example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := getresponsetest.New(getresponsetest.Options{MaxDomain: tt.domain})
			f.AddClient(testClientID, testClientSecret, testRedirect)
			rec := &recorder{next: f}
			srv := httptest.NewServer(rec)
			t.Cleanup(srv.Close)
			t.Cleanup(f.Close)
			app := getresponse.App{ClientID: testClientID, ClientSecret: testClientSecret, APIURL: srv.URL + "/v3",
				AuthURL: srv.URL + "/oauth2_authorize.html", RedirectURL: testRedirect, XDomain: tt.domain}
			c := getresponse.New(srv.Client())

			tok, err := c.Exchange(context.Background(), app, approve(t, f, "s"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Refresh(context.Background(), app, tok.RefreshToken); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.FromFields(context.Background(), app, tok.AccessToken); err != nil {
				t.Fatal(err)
			}
			reqs := rec.all()
			if len(reqs) != 3 {
				t.Fatalf("got %d requests, want 3", len(reqs))
			}
			for i, r := range reqs {
				if got := r.header.Get("X-Domain"); got != tt.wantHdr {
					t.Errorf("request %d (%s): X-Domain = %q, want %q", i, r.path, got, tt.wantHdr)
				}
				if i == 2 {
					continue // the API call
				}
				if r.path != "/v3/token" {
					t.Errorf("request %d path = %s", i, r.path)
				}
				if !strings.HasPrefix(r.header.Get("Authorization"), "Basic ") {
					t.Errorf("request %d: Authorization = %q, want Basic", i, r.header.Get("Authorization"))
				}
				form, err := url.ParseQuery(r.body)
				if err != nil {
					t.Fatal(err)
				}
				if form.Has("client_secret") || form.Has("client_id") ||
					strings.Contains(r.body, testClientSecret) || strings.Contains(r.body, url.QueryEscape(testClientSecret)) {
					t.Errorf("request %d body carries client credentials: %q", i, r.body)
				}
				if form.Has("scope") {
					t.Errorf("request %d sends a scope", i)
				}
			}
			if form, _ := url.ParseQuery(reqs[0].body); form.Get("grant_type") != "authorization_code" || form.Get("code") == "" {
				t.Errorf("exchange body = %q", reqs[0].body)
			}
			if form, _ := url.ParseQuery(reqs[1].body); form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != tok.RefreshToken {
				t.Errorf("refresh body = %q", reqs[1].body)
			}
		})
	}
}

func TestMaxModeRefusesWithoutXDomain(t *testing.T) {
	s, app := newFake(t, getresponsetest.Options{MaxDomain: "example.com"})
	c := getresponse.New(s.Client())
	tok := connect(t, c, s, app) // with X-Domain: works

	for name, domain := range map[string]string{"missing": "", "wrong": "other.example"} {
		t.Run(name, func(t *testing.T) {
			bad := app
			bad.XDomain = domain
			_, err := c.Exchange(context.Background(), bad, approve(t, s.Fake, "s"))
			var te *getresponse.TokenError
			if !errors.As(err, &te) || te.Kind != getresponse.KindMisconfigured || te.HTTPStatus != 401 || te.Code != "1014" ||
				te.Actor() != getresponse.ActorOperator {
				t.Errorf("Exchange without X-Domain: %#v", err)
			}
			_, err = c.Refresh(context.Background(), bad, tok.RefreshToken)
			if !errors.Is(err, getresponse.ErrClientRejected) || errors.Is(err, getresponse.ErrGrantRejected) {
				t.Errorf("Refresh without X-Domain: %v, want ErrClientRejected only", err)
			}
			_, _, err = c.Account(context.Background(), bad, tok.AccessToken)
			var apiErr *getresponse.APIError
			if !errors.As(err, &apiErr) || apiErr.HTTPStatus != 401 || apiErr.Code != 1014 {
				t.Errorf("Account without X-Domain: %v", err)
			}
		})
	}
	if _, _, err := c.Account(context.Background(), app, tok.AccessToken); err != nil {
		t.Errorf("Account with X-Domain: %v", err)
	}
}

// The actors, short.
const (
	customer = getresponse.ActorCustomer
	operator = getresponse.ActorOperator
	wait     = getresponse.ActorWait
)

// checkActorSentinels asserts that err matches exactly the sentinel of its
// actor: ErrGrantRejected, ErrClientRejected or ErrTransient.
func checkActorSentinels(t *testing.T, err error, actor getresponse.Actor) {
	t.Helper()
	if got := getresponse.ActorOf(err); got != actor {
		t.Errorf("ActorOf = %q, want %q", got, actor)
	}
	for target, a := range map[error]getresponse.Actor{
		getresponse.ErrGrantRejected: customer, getresponse.ErrClientRejected: operator, getresponse.ErrTransient: wait,
	} {
		if got := errors.Is(err, target); got != (a == actor) {
			t.Errorf("errors.Is(err, %v) = %v, want %v", target, got, a == actor)
		}
	}
}

func TestTokenErrorsFromFake(t *testing.T) {
	tests := []struct {
		name       string
		failure    getresponsetest.TokenFailure
		setup      func(s *getresponsetest.Server, app *getresponse.App)
		timeout    time.Duration
		wantKind   getresponse.ErrorKind
		wantActor  getresponse.Actor
		wantStatus int
		wantCode   string
		wantRetry  time.Duration
	}{
		{name: "RFC invalid_grant", failure: getresponsetest.TokenInvalidGrantRFC,
			wantKind: getresponse.KindInvalidGrant, wantActor: customer, wantStatus: 400, wantCode: "invalid_grant"},
		{name: "envelope invalid_grant", failure: getresponsetest.TokenInvalidGrantEnvelope,
			wantKind: getresponse.KindInvalidGrant, wantActor: customer, wantStatus: 400, wantCode: "invalid_grant"},
		{name: "revoked refresh token", setup: func(s *getresponsetest.Server, _ *getresponse.App) { s.RevokeRefreshTokens() },
			wantKind: getresponse.KindInvalidGrant, wantActor: customer, wantStatus: 400, wantCode: "invalid_grant"},
		{name: "invalid_client", failure: getresponsetest.TokenInvalidClient,
			wantKind: getresponse.KindInvalidClient, wantActor: operator, wantStatus: 401, wantCode: "invalid_client"},
		{name: "wrong client secret", setup: func(_ *getresponsetest.Server, app *getresponse.App) { app.ClientSecret = "wrong-secret" },
			wantKind: getresponse.KindInvalidClient, wantActor: operator, wantStatus: 401, wantCode: "invalid_client"},
		{name: "unauthorized_client", failure: getresponsetest.TokenUnauthorizedClient,
			wantKind: getresponse.KindUnauthorizedClient, wantActor: operator, wantStatus: 400, wantCode: "unauthorized_client"},
		{name: "1014 X-Domain", failure: getresponsetest.TokenXDomain,
			wantKind: getresponse.KindMisconfigured, wantActor: operator, wantStatus: 401, wantCode: "1014"},
		{name: "1016 temporary block", failure: getresponsetest.TokenTemporarilyBlocked,
			wantKind: getresponse.KindRefused, wantActor: wait, wantStatus: 403, wantCode: "1016"},
		{name: "1017 API blocked", failure: getresponsetest.TokenAPIBlocked,
			wantKind: getresponse.KindBlocked, wantActor: operator, wantStatus: 403, wantCode: "1017"},
		{name: "1018 IP blocked", failure: getresponsetest.TokenIPBlocked,
			wantKind: getresponse.KindRefused, wantActor: wait, wantStatus: 403, wantCode: "1018"},
		{name: "1019 maintenance", failure: getresponsetest.TokenMaintenance,
			wantKind: getresponse.KindRefused, wantActor: wait, wantStatus: 403, wantCode: "1019"},
		{name: "1021 invalid headers", failure: getresponsetest.TokenInvalidHeaders,
			wantKind: getresponse.KindMisconfigured, wantActor: operator, wantStatus: 400, wantCode: "1021"},
		{name: "1024 domain not found", failure: getresponsetest.TokenDomainNotFound,
			wantKind: getresponse.KindMisconfigured, wantActor: operator, wantStatus: 404, wantCode: "1024"},
		{name: "500", failure: getresponsetest.TokenServerError,
			wantKind: getresponse.KindTransient, wantActor: wait, wantStatus: 500, wantCode: "1"},
		{name: "503 plain text", failure: getresponsetest.TokenUnavailable,
			wantKind: getresponse.KindTransient, wantActor: wait, wantStatus: 503},
		{name: "hang", failure: getresponsetest.TokenHang, timeout: 200 * time.Millisecond,
			wantKind: getresponse.KindTransient, wantActor: wait},
		{name: "slow", failure: getresponsetest.TokenSlow, timeout: 200 * time.Millisecond,
			wantKind: getresponse.KindTransient, wantActor: wait},
		{name: "malformed JSON", failure: getresponsetest.TokenMalformedJSON,
			wantKind: getresponse.KindTransient, wantActor: wait},
		{name: "429, windows mixed", failure: getresponsetest.TokenRateLimited,
			wantKind: getresponse.KindRateLimited, wantActor: wait, wantStatus: 429, wantCode: "1015", wantRetry: time.Second},
		{name: "429 per second", failure: getresponsetest.TokenRateLimitedPerSecond,
			wantKind: getresponse.KindRateLimited, wantActor: wait, wantStatus: 429, wantCode: "1015", wantRetry: time.Second},
		{name: "429 window", failure: getresponsetest.TokenRateLimitedWindow,
			wantKind: getresponse.KindRateLimited, wantActor: wait, wantStatus: 429, wantCode: "1015", wantRetry: 100 * time.Second},
		{name: "307 redirect", failure: getresponsetest.TokenRedirect,
			wantKind: getresponse.KindRedirected, wantActor: wait, wantStatus: 307},
	}
	for _, tt := range tests {
		for _, op := range []string{"exchange", "refresh"} {
			if tt.name == "revoked refresh token" && op == "exchange" {
				continue
			}
			t.Run(tt.name+"/"+op, func(t *testing.T) {
				s, app := newFake(t, getresponsetest.Options{})
				c := getresponse.New(s.Client())
				if tt.timeout > 0 {
					c.TokenTimeout = tt.timeout
				}
				tok := connect(t, c, s, app)
				code := approve(t, s.Fake, "s")
				if tt.setup != nil {
					tt.setup(s, &app)
				}
				s.FailToken(tt.failure, 1)

				var err error
				if op == "exchange" {
					_, err = c.Exchange(context.Background(), app, code)
				} else {
					_, err = c.Refresh(context.Background(), app, tok.RefreshToken)
				}
				var te *getresponse.TokenError
				if !errors.As(err, &te) {
					t.Fatalf("error = %#v, want *TokenError", err)
				}
				if te.Op != op || te.Kind != tt.wantKind || te.HTTPStatus != tt.wantStatus || te.Code != tt.wantCode || te.RetryAfter != tt.wantRetry {
					t.Errorf("TokenError = %+v", te)
				}
				if te.Actor() != tt.wantActor || tt.wantKind.Actor() != tt.wantActor {
					t.Errorf("Actor() = %q, want %q", te.Actor(), tt.wantActor)
				}
				if te.Description == "" {
					t.Error("Description is empty")
				}
				if got := errors.Is(err, getresponse.ErrRateLimited); got != (tt.wantKind == getresponse.KindRateLimited) {
					t.Errorf("errors.Is(err, ErrRateLimited) = %v", got)
				}
				checkActorSentinels(t, err, tt.wantActor)
				assertNoSecrets(t, err, testClientSecret, url.QueryEscape(testClientSecret), tok.AccessToken, tok.RefreshToken, code)
				if n := s.Count(getresponsetest.EndpointRedirectTarget); n != 0 {
					t.Errorf("%d requests followed the redirect", n)
				}

				if tt.failure != getresponsetest.TokenOK && op == "refresh" {
					// The switch was for one call: the next refresh works.
					if _, err := c.Refresh(context.Background(), app, tok.RefreshToken); err != nil {
						t.Errorf("refresh after the failure: %v", err)
					}
				}
			})
		}
	}
}

// TestTokenErrorsFromCannedAnswers classifies every form of answer a token
// endpoint may give: RFC 6749 JSON, GetResponse envelopes, HTML, garbage,
// empty bodies and redirects.
func TestTokenErrorsFromCannedAnswers(t *testing.T) {
	const refresh = "refresh-0123456789abcdef"
	env := func(status, code int, desc, msg, ctx string) string {
		return envelopeBody(status, code, desc, msg, ctx)
	}
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		wantKind  getresponse.ErrorKind
		wantActor getresponse.Actor
		wantCode  string
		wantDesc  string
		wantRetry time.Duration
	}{
		// RFC 6749 bodies.
		{"RFC invalid_grant", 400, nil, `{"error":"invalid_grant","error_description":"Invalid refresh token"}`,
			getresponse.KindInvalidGrant, customer, "invalid_grant", "Invalid refresh token", 0},
		{"RFC invalid_client", 401, nil, `{"error":"invalid_client","error_description":"Client authentication failed"}`,
			getresponse.KindInvalidClient, operator, "invalid_client", "Client authentication failed", 0},
		{"RFC invalid_client at 400", 400, nil, `{"error":"invalid_client"}`,
			getresponse.KindInvalidClient, operator, "invalid_client", "Bad Request", 0},
		{"RFC unauthorized_client", 400, nil, `{"error":"unauthorized_client","error_description":"Grant not allowed"}`,
			getresponse.KindUnauthorizedClient, operator, "unauthorized_client", "Grant not allowed", 0},
		{"RFC invalid_request", 400, nil, `{"error":"invalid_request","error_description":"Missing code"}`,
			getresponse.KindInvalidRequest, operator, "invalid_request", "Missing code", 0},
		{"RFC unsupported_grant_type", 400, nil, `{"error":"unsupported_grant_type"}`,
			getresponse.KindInvalidRequest, operator, "unsupported_grant_type", "Bad Request", 0},
		{"RFC form-encoded invalid_grant", 400, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, `error=invalid_grant&error_description=expired`,
			getresponse.KindInvalidGrant, customer, "invalid_grant", "expired", 0},
		{"200 with an error member", 200, nil, `{"error":"invalid_grant"}`,
			getresponse.KindInvalidGrant, customer, "invalid_grant", "OK", 0},
		// GetResponse envelopes.
		{"envelope invalid_grant in message", 400, nil, env(400, 1000, "General error", "invalid_grant", `{"errorDescription":"Invalid refresh token"}`),
			getresponse.KindInvalidGrant, customer, "invalid_grant", "invalid_grant", 0},
		{"envelope invalid_client in codeDescription", 400, nil, env(400, 1000, "invalid_client", "Client authentication failed", `[]`),
			getresponse.KindInvalidClient, operator, "invalid_client", "Client authentication failed", 0},
		{"envelope echoing the refresh token", 400, nil, env(400, 1000, "General error", "invalid_grant: "+refresh+" is unknown", `{"refresh_token":"`+refresh+`"}`),
			getresponse.KindInvalidGrant, customer, "invalid_grant", "invalid_grant: [redacted] is unknown", 0},
		{"envelope 1014 about X-Domain", 401, nil, env(401, 1014, "Problem during authentication process, check headers!", "Unable to authenticate request", `{"authenticationType":"x-domain"}`),
			getresponse.KindMisconfigured, operator, "1014", "Unable to authenticate request", 0},
		{"envelope 1014, other context", 401, nil, env(401, 1014, "Problem during authentication process, check headers!", "Unable to authenticate request", `[]`),
			getresponse.KindMisconfigured, operator, "1014", "Unable to authenticate request", 0},
		{"envelope 1015 with timeToReset", 429, nil, env(429, 1015, "quota", "limit", `{"currentLimit":30000,"timeToReset":"100 seconds"}`),
			getresponse.KindRateLimited, wait, "1015", "limit", 100 * time.Second},
		{"envelope 1016", 403, nil, env(403, 1016, "API temporarily blocked", "Blocked for now", `[]`),
			getresponse.KindRefused, wait, "1016", "Blocked for now", 0},
		{"envelope 1017", 403, nil, env(403, 1017, "API permanently blocked", "Blocked", `[]`),
			getresponse.KindBlocked, operator, "1017", "Blocked", 0},
		{"envelope 1018 with Retry-After", 403, map[string]string{"Retry-After": "600"}, env(403, 1018, "IP blocked", "IP blocked", `[]`),
			getresponse.KindRefused, wait, "1018", "IP blocked", 10 * time.Minute},
		{"envelope 1019", 403, nil, env(403, 1019, "Maintenance", "Back soon", `[]`),
			getresponse.KindRefused, wait, "1019", "Back soon", 0},
		{"envelope 1021", 400, nil, env(400, 1021, "Invalid headers", "Bad header", `[]`),
			getresponse.KindMisconfigured, operator, "1021", "Bad header", 0},
		{"envelope 1024", 404, nil, env(404, 1024, "Domain not found", "No such domain", `[]`),
			getresponse.KindMisconfigured, operator, "1024", "No such domain", 0},
		{"envelope 500 code 1", 500, nil, env(500, 1, "Internal error", "Try again", `[]`),
			getresponse.KindTransient, wait, "1", "Try again", 0},
		{"envelope 1000 validation", 400, nil, env(400, 1000, "General error", "Validation error", `["grant_type: missing"]`),
			getresponse.KindInvalidRequest, operator, "1000", "Validation error", 0},
		// HTML, garbage and empty bodies.
		{"HTML 400", 400, map[string]string{"Content-Type": "text/html"}, `<html><body>Bad</body></html>`,
			getresponse.KindInvalidRequest, operator, "", "Bad Request", 0},
		{"garbage 400", 400, nil, `nope`, getresponse.KindInvalidRequest, operator, "", "Bad Request", 0},
		{"garbage 401", 401, nil, `nope`, getresponse.KindInvalidClient, operator, "invalid_client", "Unauthorized", 0},
		{"HTML 403 (a firewall)", 403, map[string]string{"Content-Type": "text/html"}, `<html>Forbidden</html>`,
			getresponse.KindInvalidRequest, operator, "", "Forbidden", 0},
		{"HTML 404 (wrong API URL)", 404, map[string]string{"Content-Type": "text/html"}, `<html>Not here</html>`,
			getresponse.KindInvalidRequest, operator, "", "Not Found", 0},
		{"HTML 502", 502, map[string]string{"Content-Type": "text/html"}, `<html><h1>502 Bad Gateway</h1></html>`,
			getresponse.KindTransient, wait, "", "Bad Gateway", 0},
		{"503 with Retry-After", 503, map[string]string{"Retry-After": "7"}, `<html>down</html>`,
			getresponse.KindTransient, wait, "", "Service Unavailable", 7 * time.Second},
		{"empty 400", 400, nil, ``, getresponse.KindInvalidRequest, operator, "", "Bad Request", 0},
		{"empty 500", 500, nil, ``, getresponse.KindTransient, wait, "", "Internal Server Error", 0},
		{"empty 200", 200, nil, ``, getresponse.KindTransient, wait, "", "unreadable token answer", 0},
		{"200 without access_token", 200, nil, `{"token_type":"Bearer"}`,
			getresponse.KindTransient, wait, "", "unreadable token answer", 0},
		{"200 HTML", 200, map[string]string{"Content-Type": "text/html"}, `<html>login</html>`,
			getresponse.KindTransient, wait, "", "unreadable token answer", 0},
		// Rate limits.
		{"429 with X-RateLimit-Reset only", 429, map[string]string{"X-RateLimit-Limit": "30000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "432 seconds"}, `{}`,
			getresponse.KindRateLimited, wait, "", "Too Many Requests", 432 * time.Second},
		{"429 per second", 429, map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "80", "X-RateLimit-Reset": "1 seconds"}, ``,
			getresponse.KindRateLimited, wait, "", "Too Many Requests", time.Second},
		{"429 per second carrying a 10-minute reset", 429, map[string]string{"Retry-After": "1", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "100 seconds"},
			env(429, 1015, "quota", "limit", `{"currentLimit":30000,"timeToReset":"100 seconds"}`),
			getresponse.KindRateLimited, wait, "1015", "limit", time.Second},
		// Redirects: never followed, always "wait".
		{"307", 307, map[string]string{"Location": "https://elsewhere.example/v3/token"}, ``,
			getresponse.KindRedirected, wait, "", "the token endpoint answered a redirect (HTTP 307) to another address; check the app's API URL", 0},
		{"301 with a body", 301, map[string]string{"Location": "https://elsewhere.example/"}, `{"error":"invalid_grant"}`,
			getresponse.KindRedirected, wait, "", "the token endpoint answered a redirect (HTTP 301) to another address; check the app's API URL", 0},
		{"302", 302, map[string]string{"Location": "/login"}, `<html>moved</html>`,
			getresponse.KindRedirected, wait, "", "the token endpoint answered a redirect (HTTP 302) to another address; check the app's API URL", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]string{"Content-Type": "application/json"}
			for k, v := range tt.header {
				header[k] = v
			}
			srv := cannedServer(t, tt.status, header, tt.body)
			app := getresponse.App{ClientID: testClientID, ClientSecret: testClientSecret, APIURL: srv.URL + "/v3"}
			_, err := getresponse.New(nil).Refresh(context.Background(), app, refresh)
			var te *getresponse.TokenError
			if !errors.As(err, &te) {
				t.Fatalf("error = %#v, want *TokenError", err)
			}
			if te.Kind != tt.wantKind || te.Code != tt.wantCode || te.Description != tt.wantDesc || te.RetryAfter != tt.wantRetry {
				t.Errorf("TokenError = %+v", te)
			}
			if te.Actor() != tt.wantActor {
				t.Errorf("Actor() = %q, want %q", te.Actor(), tt.wantActor)
			}
			checkActorSentinels(t, err, tt.wantActor)
			assertNoSecrets(t, err, refresh, testClientSecret)
		})
	}
}

func TestTokenCallsWithoutInput(t *testing.T) {
	c := getresponse.New(nil)
	app := getresponse.App{ClientID: "id", ClientSecret: "client-secret-value", APIURL: "http://127.0.0.1:1/v3"}
	tests := []struct {
		name  string
		call  func() error
		kind  getresponse.ErrorKind
		actor getresponse.Actor
	}{
		{"exchange without code", func() error { _, err := c.Exchange(context.Background(), app, ""); return err },
			getresponse.KindInvalidRequest, operator},
		{"refresh without token", func() error { _, err := c.Refresh(context.Background(), app, ""); return err },
			getresponse.KindNoRefreshToken, customer},
		{"no API URL", func() error {
			_, err := c.Refresh(context.Background(), getresponse.App{ClientID: "id"}, "refresh-token-value")
			return err
		}, getresponse.KindInvalidRequest, operator},
		{"check without client ID", func() error {
			return c.CheckCredentials(context.Background(), getresponse.App{APIURL: app.APIURL, ClientSecret: "client-secret-value"})
		}, getresponse.KindInvalidRequest, operator},
		{"connection refused", func() error { _, err := c.Refresh(context.Background(), app, "refresh-token-value"); return err },
			getresponse.KindTransient, wait},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var te *getresponse.TokenError
			if !errors.As(err, &te) || te.Kind != tt.kind {
				t.Errorf("error = %v, want kind %s", err, tt.kind)
			}
			checkActorSentinels(t, err, tt.actor)
			assertNoSecrets(t, err, "client-secret-value", "refresh-token-value")
		})
	}
}

func (rec *recorder) reset() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = nil
}
