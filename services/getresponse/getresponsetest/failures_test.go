package getresponsetest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
}

func bearer(access string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + access}
}

// TestTokenFailureAnswers checks each token failure switch's answer, and
// that it lasts for exactly the number of calls asked.
func TestTokenFailureAnswers(t *testing.T) {
	tests := []struct {
		mode       TokenFailure
		status     int
		rfcError   string            // the RFC 6749 "error", or
		code       float64           // the envelope code
		context    string            // a substring of the envelope's context, JSON
		header     map[string]string // "" means absent
		bodyPrefix string
	}{
		{mode: TokenInvalidGrantRFC, status: 400, rfcError: "invalid_grant"},
		{mode: TokenInvalidGrantEnvelope, status: 400, code: 1000},
		{mode: TokenInvalidClient, status: 401, rfcError: "invalid_client", header: map[string]string{"WWW-Authenticate": `Basic realm="GetResponse"`}},
		{mode: TokenUnauthorizedClient, status: 400, rfcError: "unauthorized_client"},
		{mode: TokenXDomain, status: 401, code: 1014, context: `"authenticationType":"x-domain"`},
		{mode: TokenTemporarilyBlocked, status: 403, code: 1016},
		{mode: TokenAPIBlocked, status: 403, code: 1017},
		{mode: TokenIPBlocked, status: 403, code: 1018},
		{mode: TokenMaintenance, status: 403, code: 1019},
		{mode: TokenInvalidHeaders, status: 400, code: 1021},
		{mode: TokenDomainNotFound, status: 404, code: 1024},
		{mode: TokenServerError, status: 500, code: 1},
		{mode: TokenUnavailable, status: 503, bodyPrefix: "Service Unavailable"},
		{mode: TokenMalformedJSON, status: 200, bodyPrefix: `{"access_token":"`},
		{mode: TokenRateLimited, status: 429, code: 1015, context: `"timeToReset":"100 seconds"`,
			header: map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "30000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "100 seconds"}},
		{mode: TokenRateLimitedPerSecond, status: 429, code: 1015, context: `"currentLimit":80`,
			header: map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "80", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1 seconds"}},
		{mode: TokenRateLimitedWindow, status: 429, code: 1015, context: `"timeToReset":"100 seconds"`,
			header: map[string]string{"Retry-After": "", "X-RateLimit-Limit": "30000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "100 seconds"}},
		{mode: TokenRedirect, status: 307},
	}
	for _, tt := range tests {
		t.Run(tokenFailureName(tt.mode), func(t *testing.T) {
			s := newTestServer(t, Options{})
			_, refresh := tokens(t, s)
			s.FailToken(tt.mode, 2)
			for i := range 2 {
				a := tokenCall(t, s, refreshForm(refresh), nil)
				if a.status != tt.status {
					t.Fatalf("call %d: status %d, want %d: %s", i, a.status, tt.status, a.body)
				}
				for k, want := range tt.header {
					if got := a.header.Get(k); got != want {
						t.Errorf("%s = %q, want %q", k, got, want)
					}
				}
				switch {
				case tt.rfcError != "":
					if m := a.json(t); m["error"] != tt.rfcError || m["error_description"] == "" {
						t.Errorf("body %s, want error %s", a.body, tt.rfcError)
					}
				case tt.code != 0:
					m := a.json(t)
					if m["code"] != tt.code || m["httpStatus"] != float64(tt.status) || m["message"] == "" || m["uuid"] == "" {
						t.Errorf("envelope %s, want code %v", a.body, tt.code)
					}
					if !strings.Contains(a.body, tt.context) {
						t.Errorf("envelope %s lacks %s", a.body, tt.context)
					}
				case tt.bodyPrefix != "":
					if !strings.HasPrefix(a.body, tt.bodyPrefix) {
						t.Errorf("body %q", a.body)
					}
				case tt.status == 307:
					if loc := a.header.Get("Location"); loc != s.URL()+"/moved/v3/token" {
						t.Errorf("Location = %q", loc)
					}
				}
			}
			if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusOK {
				t.Errorf("third call: %d, want 200: the switch was for two calls", a.status)
			}
			if tt.mode == TokenRedirect {
				// Following the redirect lands on a counted 410.
				if a := postForm(t, s, s.URL()+"/moved/v3/token", refreshForm(refresh), nil); a.status != http.StatusGone ||
					s.Count(EndpointRedirectTarget) != 1 {
					t.Errorf("following: %d, count %d", a.status, s.Count(EndpointRedirectTarget))
				}
			}
		})
	}
}

func tokenFailureName(m TokenFailure) string {
	return map[TokenFailure]string{
		TokenInvalidGrantRFC: "invalid_grant RFC", TokenInvalidGrantEnvelope: "invalid_grant envelope",
		TokenInvalidClient: "invalid_client", TokenUnauthorizedClient: "unauthorized_client", TokenXDomain: "1014 x-domain",
		TokenTemporarilyBlocked: "1016", TokenAPIBlocked: "1017", TokenIPBlocked: "1018", TokenMaintenance: "1019",
		TokenInvalidHeaders: "1021", TokenDomainNotFound: "1024", TokenServerError: "500", TokenUnavailable: "503",
		TokenMalformedJSON: "malformed", TokenRateLimited: "429 mixed", TokenRateLimitedPerSecond: "429 per second",
		TokenRateLimitedWindow: "429 window", TokenRedirect: "307",
	}[m]
}

// TestTokenFailurePerClient: one app can be broken while another works, and
// a client's own switch goes before the global one.
func TestTokenFailurePerClient(t *testing.T) {
	s := newTestServer(t, Options{})
	s.AddClient("other", "other-secret", "https://other.example/cb")
	_, refresh := tokens(t, s)
	otherCall := func() int {
		req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("other", "other-secret")
		return do(t, s, req).status
	}

	s.FailTokenFor(clientID, TokenInvalidClient, -1)
	for range 3 {
		if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusUnauthorized {
			t.Fatalf("broken client: %d", a.status)
		}
		if st := otherCall(); st != http.StatusOK {
			t.Fatalf("the other client: %d", st)
		}
	}
	s.FailToken(TokenServerError, -1)
	if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusUnauthorized {
		t.Errorf("the client's own switch should go first: %d", a.status)
	}
	if st := otherCall(); st != http.StatusInternalServerError {
		t.Errorf("the global switch: %d", st)
	}
	s.FailToken(TokenOK, 0)
	s.FailTokenFor(clientID, TokenOK, 0)
	if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusOK {
		t.Errorf("after clearing: %d %s", a.status, a.body)
	}
}

// TestPersistentExpiredToken: FailAPI(APIExpiredToken, -1) answers every API
// call 401/1014, even with a token refreshed a moment ago, until cleared.
func TestPersistentExpiredToken(t *testing.T) {
	s := newTestServer(t, Options{Rotation: RotationStrict})
	_, refresh := tokens(t, s)
	s.FailAPI(APIExpiredToken, -1)
	for i := range 3 {
		a := tokenCall(t, s, refreshForm(refresh), nil)
		if a.status != http.StatusOK {
			t.Fatalf("refresh %d: %d %s", i, a.status, a.body)
		}
		m := a.json(t)
		refresh = m["refresh_token"].(string)
		api := get(t, s, s.APIURL()+"/accounts", bearer(m["access_token"].(string)))
		if api.status != http.StatusUnauthorized || api.json(t)["code"] != float64(1014) || api.json(t)["message"] != msgExpired {
			t.Fatalf("API call %d with a fresh token: %d %s", i, api.status, api.body)
		}
	}
	if got := s.Count(EndpointTokenRefresh); got != 3 {
		t.Errorf("refreshes = %d, want 3", got)
	}
	s.FailAPI(APIOK, 0)
	m := tokenCall(t, s, refreshForm(refresh), nil).json(t)
	if a := get(t, s, s.APIURL()+"/accounts", bearer(m["access_token"].(string))); a.status != http.StatusOK {
		t.Errorf("after clearing: %d", a.status)
	}
}

// TestAPIFailurePerAccount: one account's calls fail, another's work.
func TestAPIFailurePerAccount(t *testing.T) {
	s := newTestServer(t, Options{})
	johns, _ := tokens(t, s)
	redirect, err := s.Approve(clientID, "s", "Qm7Kp")
	if err != nil {
		t.Fatal(err)
	}
	marias := exchange(t, s, codeFrom(t, redirect)).json(t)["access_token"].(string)
	s.FailAPIFor(DefaultAccountID, APIMaintenance, 2)
	for range 2 {
		if a := get(t, s, s.APIURL()+"/from-fields", bearer(johns)); a.status != http.StatusForbidden || a.json(t)["code"] != float64(1019) {
			t.Errorf("John's call: %d %s", a.status, a.body)
		}
		if a := get(t, s, s.APIURL()+"/from-fields", bearer(marias)); a.status != http.StatusOK {
			t.Errorf("Maria's call: %d %s", a.status, a.body)
		}
	}
	if a := get(t, s, s.APIURL()+"/from-fields", bearer(johns)); a.status != http.StatusOK {
		t.Errorf("John's third call: %d", a.status)
	}
}

func TestAPIFailureAnswers(t *testing.T) {
	tests := []struct {
		mode   APIFailure
		status int
		code   float64
		header map[string]string
	}{
		{APITemporarilyBlocked, 403, 1016, nil},
		{APIMaintenance, 403, 1019, nil},
		{APIInvalidHeaders, 400, 1021, nil},
		{APIMissingPermissions, 403, 1023, nil},
		{APIDomainNotFound, 404, 1024, nil},
		{APIXDomain, 401, 1014, nil},
		{APIUnavailable, 503, 1, map[string]string{"Retry-After": "60"}},
		{APIRateLimitedPerSecond, 429, 1015, map[string]string{"Retry-After": "1", "X-RateLimit-Limit": "80", "X-RateLimit-Reset": "1 seconds"}},
		{APIRateLimitedWindow, 429, 1015, map[string]string{"Retry-After": "", "X-RateLimit-Limit": "30000", "X-RateLimit-Remaining": "0"}},
		{APIRedirect, 307, 0, map[string]string{"Location": "*/moved/v3/campaigns"}},
	}
	for _, tt := range tests {
		s := newTestServer(t, Options{})
		access, _ := tokens(t, s)
		s.FailAPI(tt.mode, 1)
		a := get(t, s, s.APIURL()+"/campaigns", bearer(access))
		if a.status != tt.status || (tt.code != 0 && a.json(t)["code"] != tt.code) {
			t.Errorf("mode %d: %d %s", tt.mode, a.status, a.body)
		}
		for k, want := range tt.header {
			got := a.header.Get(k)
			if rest, ok := strings.CutPrefix(want, "*"); ok && strings.HasSuffix(got, rest) {
				continue
			}
			if got != want {
				t.Errorf("mode %d: %s = %q, want %q", tt.mode, k, got, want)
			}
		}
	}
}
