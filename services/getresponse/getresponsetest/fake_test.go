package getresponsetest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	clientID     = "app id/1"
	clientSecret = "se cret+&=%"
	redirectURL  = "https://grconnect.example/oauth/callback?from=gr"
)

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s := NewServer(opts)
	t.Cleanup(s.Close)
	s.AddClient(clientID, clientSecret, redirectURL)
	return s
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", a.body, err)
	}
	return m
}

// do sends a request and reads the whole answer.
func do(t *testing.T, s *Server, req *http.Request) answer {
	t.Helper()
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{res.StatusCode, res.Header, string(b)}
}

func get(t *testing.T, s *Server, rawURL string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, s, req)
}

func postForm(t *testing.T, s *Server, rawURL string, form url.Values, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, s, req)
}

// tokenCall posts to the token endpoint with Basic auth as x/oauth2 sends it.
func tokenCall(t *testing.T, s *Server, form url.Values, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, s, req)
}

var codeRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

func codeFrom(t *testing.T, redirect string) string {
	t.Helper()
	u, err := url.Parse(redirect)
	if err != nil {
		t.Fatal(err)
	}
	code := u.Query().Get("code")
	if !codeRE.MatchString(code) {
		t.Fatalf("code %q in %s is not 40 hex digits", code, redirect)
	}
	return code
}

func exchange(t *testing.T, s *Server, code string) answer {
	t.Helper()
	return tokenCall(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {code}}, nil)
}

// tokens runs consent and exchange and returns access and refresh tokens.
func tokens(t *testing.T, s *Server) (string, string) {
	t.Helper()
	redirect, err := s.Approve(clientID, "st", "")
	if err != nil {
		t.Fatal(err)
	}
	a := exchange(t, s, codeFrom(t, redirect))
	if a.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", a.status, a.body)
	}
	m := a.json(t)
	return m["access_token"].(string), m["refresh_token"].(string)
}

func TestConsentPage(t *testing.T) {
	s := newTestServer(t, Options{Prefix: "/demo-getresponse/"})
	evil := DefaultAccount()
	evil.FirstName = `<script>alert("name")</script>`
	evil.CompanyName = `"><img src=x onerror=alert(1)>`
	s.AddAccount(evil)

	authURL := s.AuthURL() + "?" + url.Values{"response_type": {"code"}, "client_id": {clientID}, "state": {`"><script>alert(2)</script>`}}.Encode()
	a := get(t, s, authURL, nil)
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("consent page: %d %s", a.status, a.header.Get("Content-Type"))
	}
	for _, want := range []string{
		`action="/demo-getresponse/oauth2_authorize.html"`, `name="client_id" value="app id/1"`,
		`name="decision" value="approve"`, `name="decision" value="deny"`, `name="account_id"`,
		`&lt;script&gt;alert(`, `&#34;&gt;&lt;img src=x`,
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, bad := range []string{"<script>", "<img"} {
		if strings.Contains(a.body, bad) {
			t.Errorf("page contains raw %s", bad)
		}
	}
	// Every account of the page is a choice, the first one checked, and a
	// new one can be typed.
	for _, want := range []string{`name="account_id" value="VfEy1" data-testid="consent-account" checked`,
		`name="account_id" value="new"`, `name="new_name"`, `name="new_email"`} {
		if !strings.Contains(a.body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	s.AddAccount(Account{AccountID: "Other", FirstName: "Ann", Email: "ann@example.com"})
	a = get(t, s, authURL, nil)
	if !strings.Contains(a.body, `value="Other"`) || !strings.Contains(a.body, "Ann (ann@example.com)") {
		t.Error("an added account is not offered")
	}
	if got := s.Count(EndpointAuthorize); got != 2 {
		t.Errorf("Count(EndpointAuthorize) = %d, want 2", got)
	}
}

func TestConsentPageErrors(t *testing.T) {
	s := newTestServer(t, Options{})
	tests := []struct {
		name  string
		query url.Values
	}{
		{"unknown client", url.Values{"response_type": {"code"}, "client_id": {"<b>nobody</b>"}, "state": {"s"}}},
		{"missing client", url.Values{"response_type": {"code"}, "state": {"s"}}},
		{"wrong response_type", url.Values{"response_type": {"token"}, "client_id": {clientID}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := get(t, s, s.AuthURL()+"?"+tt.query.Encode(), nil)
			if a.status != http.StatusBadRequest || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
				t.Errorf("got %d %s, want a 400 HTML page", a.status, a.header.Get("Content-Type"))
			}
			if strings.Contains(a.body, "<b>") {
				t.Error("page contains unescaped input")
			}
		})
	}
}

func TestConsentDecision(t *testing.T) {
	s := newTestServer(t, Options{})
	s.AddAccount(Account{AccountID: "Other", FirstName: "Ann"})
	tests := []struct {
		name      string
		form      url.Values
		wantQuery url.Values // exact query, "*" = any non-empty
		wantErr   bool
	}{
		{"approve", url.Values{"client_id": {clientID}, "state": {"s1"}, "account_id": {"Other"}, "decision": {"approve"}},
			url.Values{"from": {"gr"}, "code": {"*"}, "state": {"s1"}}, false},
		{"deny", url.Values{"client_id": {clientID}, "state": {"s2"}, "decision": {"deny"}},
			url.Values{"from": {"gr"}, "error": {"access_denied"}, "error_description": {"*"}, "state": {"s2"}}, false},
		{"unknown client", url.Values{"client_id": {"nobody"}, "state": {"s3"}, "decision": {"approve"}}, nil, true},
		{"unknown account", url.Values{"client_id": {clientID}, "state": {"s4"}, "account_id": {"nope"}, "decision": {"approve"}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postForm(t, s, s.AuthURL(), tt.form, nil)
			if tt.wantErr {
				if a.status != http.StatusBadRequest {
					t.Errorf("status = %d, want 400", a.status)
				}
				return
			}
			if a.status != http.StatusFound {
				t.Fatalf("status = %d, want 302: %s", a.status, a.body)
			}
			loc, err := url.Parse(a.header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			if loc.Scheme+"://"+loc.Host+loc.Path != "https://grconnect.example/oauth/callback" {
				t.Errorf("redirect to %s", loc)
			}
			got := loc.Query()
			if len(got) != len(tt.wantQuery) {
				t.Errorf("query = %v, want keys of %v", got, tt.wantQuery)
			}
			for k, want := range tt.wantQuery {
				if v := got.Get(k); v == "" || (want[0] != "*" && v != want[0]) {
					t.Errorf("%s = %q, want %q", k, v, want[0])
				}
			}
			if c := got.Get("code"); c != "" && !codeRE.MatchString(c) {
				t.Errorf("code %q is not 40 hex digits", c)
			}
		})
	}
	if got := s.Count(EndpointConsent); got != len(tests) {
		t.Errorf("Count(EndpointConsent) = %d, want %d", got, len(tests))
	}

	// Approve picks the account: the token belongs to "Other".
	redirect, err := s.Approve(clientID, "x", "Other")
	if err != nil {
		t.Fatal(err)
	}
	m := exchange(t, s, codeFrom(t, redirect)).json(t)
	a := get(t, s, s.APIURL()+"/accounts", map[string]string{"Authorization": "Bearer " + m["access_token"].(string)})
	if a.json(t)["accountId"] != "Other" || a.json(t)["firstName"] != "Ann" {
		t.Errorf("account = %s", a.body)
	}
	if redirect, err := s.Deny(clientID, "y"); err != nil || !strings.Contains(redirect, "error=access_denied") {
		t.Errorf("Deny = %s, %v", redirect, err)
	}
	if _, err := s.Approve("nobody", "z", ""); err != ErrUnknownClient {
		t.Errorf("Approve(unknown) error = %v", err)
	}
}

func TestCodesAreSingleUseAndExpire(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	s := newTestServer(t, Options{Now: clk.Now})
	s.AddClient("other", "other-secret", "https://other.example/cb")
	newCode := func() string {
		t.Helper()
		redirect, err := s.Approve(clientID, "s", "")
		if err != nil {
			t.Fatal(err)
		}
		return codeFrom(t, redirect)
	}
	tests := []struct {
		name    string
		prepare func() string
		wait    time.Duration
		want    int
	}{
		{"fresh", newCode, 0, http.StatusOK},
		{"just under 10 minutes", newCode, 10*time.Minute - time.Second, http.StatusOK},
		{"expired", newCode, 10*time.Minute + time.Second, http.StatusBadRequest},
		{"used twice", func() string {
			c := newCode()
			if a := exchange(t, s, c); a.status != http.StatusOK {
				t.Fatalf("first use: %d", a.status)
			}
			return c
		}, 0, http.StatusBadRequest},
		{"unknown", func() string { return strings.Repeat("ab", 20) }, 0, http.StatusBadRequest},
		{"other client's code", func() string {
			redirect, err := s.Approve("other", "s", "")
			if err != nil {
				t.Fatal(err)
			}
			return codeFrom(t, redirect)
		}, 0, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := tt.prepare()
			clk.Add(tt.wait)
			a := exchange(t, s, code)
			if a.status != tt.want {
				t.Fatalf("status = %d, want %d: %s", a.status, tt.want, a.body)
			}
			m := a.json(t)
			if tt.want != http.StatusOK {
				if m["error"] != "invalid_grant" {
					t.Errorf("error = %v, want invalid_grant", m["error"])
				}
				return
			}
			if v, ok := m["scope"]; !ok || v != nil {
				t.Errorf("scope = %v (present %v), want null", v, ok)
			}
			if m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) ||
				!codeRE.MatchString(m["access_token"].(string)) || m["refresh_token"] == "" {
				t.Errorf("token answer = %s", a.body)
			}
			if a.header.Get("Cache-Control") != "no-store" {
				t.Error("token answer is cacheable")
			}
			if again := exchange(t, s, code); again.status != http.StatusBadRequest {
				t.Errorf("second use: %d, want 400", again.status)
			}
		})
	}
}

func TestTokenEndpoint(t *testing.T) {
	s := newTestServer(t, Options{})
	_, refresh := tokens(t, s)
	basic := func(id, secret string) map[string]string {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(id, secret)
		return map[string]string{"Authorization": req.Header.Get("Authorization")}
	}
	tests := []struct {
		name       string
		form       url.Values
		header     map[string]string
		wantStatus int
		wantError  string
		check      func(t *testing.T, m map[string]any)
	}{
		{"refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, nil, 200, "",
			func(t *testing.T, m map[string]any) {
				if m["refresh_token"] != refresh {
					t.Errorf("RotationNone gave refresh token %v", m["refresh_token"])
				}
			}},
		{"client credentials", url.Values{"grant_type": {"client_credentials"}}, nil, 200, "",
			func(t *testing.T, m map[string]any) {
				if _, ok := m["refresh_token"]; ok {
					t.Error("client_credentials answered a refresh token")
				}
			}},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, nil, 400, "invalid_grant", nil},
		{"unsupported grant", url.Values{"grant_type": {"password"}}, nil, 400, "unsupported_grant_type", nil},
		{"no grant", url.Values{}, nil, 400, "invalid_request", nil},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}}, basic(url.QueryEscape(clientID), "wrong"), 401, "invalid_client", nil},
		{"undecoded id", url.Values{"grant_type": {"client_credentials"}}, basic("app%2", url.QueryEscape(clientSecret)), 401, "invalid_client", nil},
		{"no Basic", url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {clientSecret}},
			map[string]string{"Authorization": ""}, 401, "invalid_client", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tokenCall(t, s, tt.form, tt.header)
			if a.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", a.status, tt.wantStatus, a.body)
			}
			m := a.json(t)
			if tt.wantError != "" && m["error"] != tt.wantError {
				t.Errorf("error = %v, want %s", m["error"], tt.wantError)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}

	req, _ := http.NewRequest(http.MethodGet, s.TokenURL(), nil)
	if a := do(t, s, req); a.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /token = %d, want 405", a.status)
	}
}

func TestRotationAndRevocation(t *testing.T) {
	tests := []struct {
		rotation     Rotation
		sameToken    bool
		noToken      bool
		oldStaysGood bool
	}{
		{RotationNone, true, false, true},
		{RotationRotate, false, false, true},
		{RotationStrict, false, false, false},
		{RotationOmit, false, true, true},
		{RotationGrace, false, false, true}, // inside the grace period
	}
	for _, tt := range tests {
		t.Run(map[Rotation]string{RotationNone: "none", RotationRotate: "rotate", RotationStrict: "strict", RotationOmit: "omit", RotationGrace: "grace"}[tt.rotation], func(t *testing.T) {
			s := newTestServer(t, Options{Rotation: tt.rotation})
			_, old := tokens(t, s)
			refresh := func(rt string) answer {
				return tokenCall(t, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, nil)
			}
			a := refresh(old)
			if a.status != http.StatusOK {
				t.Fatalf("refresh: %d %s", a.status, a.body)
			}
			next, has := a.json(t)["refresh_token"].(string)
			switch {
			case tt.noToken && has:
				t.Errorf("refresh_token present, want none")
			case tt.sameToken && next != old:
				t.Errorf("refresh token changed")
			case !tt.noToken && !tt.sameToken && (next == "" || next == old):
				t.Errorf("refresh token %q, want a new one", next)
			}
			if got := refresh(old).status == http.StatusOK; got != tt.oldStaysGood {
				t.Errorf("old token works = %v, want %v", got, tt.oldStaysGood)
			}
			s.RevokeRefreshTokens()
			if a := refresh(old); a.status != http.StatusBadRequest || a.json(t)["error"] != "invalid_grant" {
				t.Errorf("after revocation: %d %s", a.status, a.body)
			}
			if got := s.Count(EndpointTokenRefresh); got != 3 {
				t.Errorf("Count(EndpointTokenRefresh) = %d, want 3", got)
			}
		})
	}
}

func TestAPI(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	s := newTestServer(t, Options{Now: clk.Now})
	access, _ := tokens(t, s)
	bearer := map[string]string{"Authorization": "Bearer " + access}

	a := get(t, s, s.APIURL()+"/accounts?fields=email,firstName", bearer)
	if m := a.json(t); a.status != 200 || len(m) != 3 || m["accountId"] != "VfEy1" || m["email"] != "john.smith@test.com" || m["firstName"] != "John" {
		t.Errorf("accounts?fields = %d %s", a.status, a.body)
	}
	if a.header.Get("X-RateLimit-Limit") != "30000" || a.header.Get("X-RateLimit-Remaining") != "29999" || a.header.Get("X-RateLimit-Reset") != "600 seconds" {
		t.Errorf("rate headers = %v", a.header)
	}
	clk.Add(168 * time.Second)
	a = get(t, s, s.APIURL()+"/from-fields", bearer)
	if a.status != 200 || a.header.Get("X-RateLimit-Remaining") != "29998" || a.header.Get("X-RateLimit-Reset") != "432 seconds" {
		t.Errorf("from-fields = %d %v", a.status, a.header)
	}
	for k, want := range map[string]string{"TotalCount": "1", "TotalPages": "1", "CurrentPage": "1"} {
		if got := a.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	wantFF := `[{"fromFieldId":"TTzW","href":"` + s.APIURL() + `/from-fields/TTzW","email":"jsmith@example.com","rewrittenEmail":null,` +
		`"name":"John Smith","isActive":"true","isDefault":"true","createdOn":"2017-03-13T19:32:52+0000","domain":{"status":"confirmed","DKIMWarning":null}}]`
	if a.body != wantFF {
		t.Errorf("from-fields body\n got %s\nwant %s", a.body, wantFF)
	}
	a = get(t, s, s.APIURL()+"/campaigns", bearer)
	wantC := `[{"description":"my_campaign","campaignId":"V3J","name":"my_campaign","techName":"my_campaign","languageCode":"EN",` +
		`"isDefault":"true","createdOn":"2014-02-12T15:19:21+0000","href":"` + s.APIURL() + `/campaigns/V3J"}]`
	if a.body != wantC {
		t.Errorf("campaigns body\n got %s\nwant %s", a.body, wantC)
	}

	// A second account has its own window.
	s.AddAccount(Account{AccountID: "Two"})
	redirect, _ := s.Approve(clientID, "s", "Two")
	other := exchange(t, s, codeFrom(t, redirect)).json(t)["access_token"].(string)
	if a := get(t, s, s.APIURL()+"/accounts", map[string]string{"Authorization": "Bearer " + other}); a.header.Get("X-RateLimit-Remaining") != "29999" {
		t.Errorf("second account remaining = %s", a.header.Get("X-RateLimit-Remaining"))
	}

	tests := []struct {
		name       string
		path       string
		header     map[string]string
		wantStatus int
		wantCode   float64
		wantMsg    string
	}{
		{"no token", "/accounts", nil, 401, 1014, msgUnauthenticated},
		{"unknown token", "/accounts", map[string]string{"Authorization": "Bearer nope"}, 401, 1014, msgUnauthenticated},
		{"unknown path", "/contacts", bearer, 404, 1013, "Resource not found"},
		{"perPage too big", "/campaigns?perPage=1001", bearer, 400, 1000, "Validation error, see context section for more information"},
		{"page zero", "/campaigns?page=0", bearer, 400, 1000, "Validation error, see context section for more information"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := get(t, s, s.APIURL()+tt.path, tt.header)
			m := a.json(t)
			if a.status != tt.wantStatus || m["httpStatus"] != float64(tt.wantStatus) || m["code"] != tt.wantCode || m["message"] != tt.wantMsg {
				t.Errorf("got %d %s", a.status, a.body)
			}
			for _, k := range []string{"codeDescription", "moreInfo", "context", "uuid"} {
				if _, ok := m[k]; !ok {
					t.Errorf("envelope lacks %s", k)
				}
			}
			if a.header.Get("X-RateLimit-Limit") == "" {
				t.Error("no X-RateLimit-Limit")
			}
		})
	}

	// The token expires by the clock: 401/1014 with the sent token in context.
	clk.Add(time.Hour)
	a = get(t, s, s.APIURL()+"/accounts", bearer)
	m := a.json(t)
	if a.status != 401 || m["code"] != float64(1014) || m["message"] != msgExpired ||
		m["context"].(map[string]any)["sentToken"] != access {
		t.Errorf("expired: %d %s", a.status, a.body)
	}
}

func TestPaging(t *testing.T) {
	s := newTestServer(t, Options{})
	acct := DefaultAccount()
	acct.Campaigns = nil
	for i := range 250 {
		acct.Campaigns = append(acct.Campaigns, Campaign{CampaignID: fmt.Sprintf("C%d", i), Name: "n"})
	}
	s.AddAccount(acct)
	access, _ := tokens(t, s)
	tests := []struct {
		query               string
		wantLen             int
		wantPages, wantPage string
	}{
		{"", 100, "3", "1"},
		{"?page=3", 50, "3", "3"},
		{"?page=4", 0, "3", "4"},
		{"?perPage=1000", 250, "1", "1"},
		{"?perPage=7&page=2&fields=name", 7, "36", "2"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			a := get(t, s, s.APIURL()+"/campaigns"+tt.query, map[string]string{"Authorization": "Bearer " + access})
			var items []map[string]any
			if err := json.Unmarshal([]byte(a.body), &items); err != nil {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if len(items) != tt.wantLen || a.header.Get("TotalCount") != "250" ||
				a.header.Get("TotalPages") != tt.wantPages || a.header.Get("CurrentPage") != tt.wantPage {
				t.Errorf("got %d items, headers %v", len(items), a.header)
			}
			if strings.Contains(tt.query, "fields=name") && len(items) > 0 && len(items[0]) != 2 {
				t.Errorf("fields=name gave %v", items[0])
			}
		})
	}
}

func TestMaxMode(t *testing.T) {
	s := newTestServer(t, Options{MaxDomain: "example.com"})
	redirect, _ := s.Approve(clientID, "s", "")
	code := codeFrom(t, redirect)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}}

	for name, h := range map[string]map[string]string{"missing": nil, "wrong": {"X-Domain": "evil.example"}} {
		a := tokenCall(t, s, form, h)
		if m := a.json(t); a.status != 401 || m["code"] != float64(1014) {
			t.Errorf("token with %s X-Domain: %d %s", name, a.status, a.body)
		}
	}
	a := tokenCall(t, s, form, map[string]string{"X-Domain": "Example.com"})
	if a.status != 200 {
		t.Fatalf("token with X-Domain: %d %s", a.status, a.body)
	}
	bearer := "Bearer " + a.json(t)["access_token"].(string)
	if a := get(t, s, s.APIURL()+"/accounts", map[string]string{"Authorization": bearer}); a.status != 401 || a.json(t)["code"] != float64(1014) {
		t.Errorf("API without X-Domain: %d %s", a.status, a.body)
	}
	if a := get(t, s, s.APIURL()+"/accounts", map[string]string{"Authorization": bearer, "X-Domain": "example.com"}); a.status != 200 {
		t.Errorf("API with X-Domain: %d %s", a.status, a.body)
	}
}

func TestPrefix(t *testing.T) {
	s := newTestServer(t, Options{Prefix: "demo-getresponse"})
	if !strings.HasSuffix(s.APIURL(), "/demo-getresponse/v3") || !strings.HasSuffix(s.AuthURL(), "/demo-getresponse/oauth2_authorize.html") {
		t.Errorf("URLs = %s, %s", s.APIURL(), s.AuthURL())
	}
	access, _ := tokens(t, s)
	if a := get(t, s, s.APIURL()+"/accounts", map[string]string{"Authorization": "Bearer " + access}); a.status != 200 ||
		a.json(t)["href"] != s.APIURL()+"/accounts" {
		t.Errorf("accounts under prefix: %d %s", a.status, a.body)
	}
	base := strings.TrimSuffix(s.URL(), "/demo-getresponse")
	for _, p := range []string{"/v3/accounts", "/oauth2_authorize.html", "/demo-getresponsex/v3/accounts", "/demo-getresponse"} {
		if a := get(t, s, base+p, nil); a.status != http.StatusNotFound {
			t.Errorf("%s = %d, want 404", p, a.status)
		}
	}
}

func TestFailureSwitches(t *testing.T) {
	s := newTestServer(t, Options{})
	access, refresh := tokens(t, s)
	refreshForm := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	bearer := map[string]string{"Authorization": "Bearer " + access}

	s.FailToken(TokenServerError, 2)
	for i, want := range []int{500, 500, 200} {
		if a := tokenCall(t, s, refreshForm, nil); a.status != want {
			t.Errorf("token call %d: %d, want %d", i, a.status, want)
		}
	}
	s.FailAPI(APIRateLimited, -1)
	for i := range 3 {
		a := get(t, s, s.APIURL()+"/accounts", bearer)
		m := a.json(t)
		if a.status != 429 || m["code"] != float64(1015) || a.header.Get("Retry-After") != "1" || a.header.Get("X-RateLimit-Reset") != "100 seconds" ||
			m["context"].(map[string]any)["timeToReset"] != "100 seconds" {
			t.Errorf("API call %d: %d %v %s", i, a.status, a.header, a.body)
		}
	}
	s.FailAPI(APIOK, 0)
	if a := get(t, s, s.APIURL()+"/accounts", bearer); a.status != 200 {
		t.Errorf("after clearing: %d", a.status)
	}
	s.FailAPI(APIContextArray, 1)
	if a := get(t, s, s.APIURL()+"/accounts", bearer); a.status != 400 || !strings.Contains(a.body, `"context":[]`) {
		t.Errorf("context array: %d %s", a.status, a.body)
	}
	s.ExpireAccessTokens()
	if a := get(t, s, s.APIURL()+"/accounts", bearer); a.status != 401 || a.json(t)["message"] != msgExpired {
		t.Errorf("after ExpireAccessTokens: %d %s", a.status, a.body)
	}
	if got := s.Count(EndpointAccounts); got != 6 {
		t.Errorf("Count(EndpointAccounts) = %d, want 6", got)
	}
	s.ResetCounts()
	if got := s.Count(EndpointAccounts) + s.Count(EndpointToken); got != 0 {
		t.Errorf("after ResetCounts: %d", got)
	}
}

func TestCloseReleasesHangs(t *testing.T) {
	s := newTestServer(t, Options{})
	access, refresh := tokens(t, s)
	s.FailAPI(APIHang, -1)
	s.FailToken(TokenHang, -1)

	var wg sync.WaitGroup
	statuses := make(chan int, 2)
	send := func(req *http.Request) {
		defer wg.Done()
		res, err := s.Client().Do(req)
		if err != nil {
			statuses <- 0
			return
		}
		res.Body.Close()
		statuses <- res.StatusCode
	}
	apiReq, _ := http.NewRequest(http.MethodGet, s.APIURL()+"/accounts", nil)
	apiReq.Header.Set("Authorization", "Bearer "+access)
	tokReq, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode()))
	tokReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	wg.Add(2)
	go send(apiReq)
	go send(tokReq)

	waitFor(t, func() bool { return s.Count(EndpointAccounts) == 1 && s.Count(EndpointTokenRefresh) == 1 })
	s.Fake.Close()
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != http.StatusServiceUnavailable {
			t.Errorf("released request answered %d, want 503", st)
		}
	}
}

func TestHangEndsWithRequest(t *testing.T) {
	s := newTestServer(t, Options{})
	access, _ := tokens(t, s)
	s.FailAPI(APIHang, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.APIURL()+"/accounts", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	if _, err := s.Client().Do(req); err == nil {
		t.Fatal("hanging request returned an answer")
	}
	// The switch was for one call.
	if a := get(t, s, s.APIURL()+"/accounts", map[string]string{"Authorization": "Bearer " + access}); a.status != 200 {
		t.Errorf("next call: %d", a.status)
	}
}

func TestLatency(t *testing.T) {
	s := newTestServer(t, Options{})
	access, _ := tokens(t, s)
	s.SetAPILatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.APIURL()+"/accounts", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	if _, err := s.Client().Do(req); err == nil {
		t.Fatal("slow request returned an answer")
	}
	s.SetAPILatency(0)
	if a := get(t, s, s.APIURL()+"/accounts", map[string]string{"Authorization": "Bearer " + access}); a.status != 200 {
		t.Errorf("after clearing latency: %d", a.status)
	}
}

func TestCountsAreExactUnderConcurrency(t *testing.T) {
	s := newTestServer(t, Options{PerSecond: -1, Parallel: -1})
	access, refresh := tokens(t, s)
	const n = 400
	var wg sync.WaitGroup
	errs := make(chan string, 2*n)
	client := s.Client()
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var req *http.Request
			if i%2 == 0 {
				req, _ = http.NewRequest(http.MethodGet, s.APIURL()+"/accounts", nil)
				req.Header.Set("Authorization", "Bearer "+access)
			} else {
				req, _ = http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
			}
			res, err := client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				errs <- res.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := s.Count(EndpointAccounts); got != n {
		t.Errorf("Count(EndpointAccounts) = %d, want %d", got, n)
	}
	if got := s.Count(EndpointTokenRefresh); got != n {
		t.Errorf("Count(EndpointTokenRefresh) = %d, want %d", got, n)
	}
	if got := s.Count(EndpointToken); got != n+1 {
		t.Errorf("Count(EndpointToken) = %d, want %d", got, n+1)
	}
	a := get(t, s, s.APIURL()+"/accounts", map[string]string{"Authorization": "Bearer " + access})
	// n API calls, n refreshes and this call.
	if got := a.header.Get("X-RateLimit-Remaining"); got != "29199" {
		t.Errorf("X-RateLimit-Remaining = %s, want 29199", got)
	}
}

// waitFor polls cond until it holds; it fails the test after 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClientCredentialsCanBeRefusedAsAGrant: GetResponse documents the client
// credentials flow; RefuseClientCredentials makes the fake refuse that grant
// (400, unsupported_grant_type or unauthorized_client) for a client whose secret
// is right, while a wrong secret is still invalid_client and refreshes and code
// exchanges of the same client keep working.
func TestClientCredentialsCanBeRefusedAsAGrant(t *testing.T) {
	for _, tc := range []struct {
		refusal GrantRefusal
		code    string
	}{{GrantUnsupported, "unsupported_grant_type"}, {GrantUnauthorized, "unauthorized_client"}} {
		t.Run(tc.code, func(t *testing.T) {
			s := newTestServer(t, Options{})
			_, refresh := tokens(t, s)
			cc := url.Values{"grant_type": {"client_credentials"}}
			if a := tokenCall(t, s, cc, nil); a.status != http.StatusOK || a.json(t)["access_token"] == nil {
				t.Fatalf("client_credentials before the switch = %d %s", a.status, a.body)
			}
			s.RefuseClientCredentials(tc.refusal)
			a := tokenCall(t, s, cc, nil)
			if m := a.json(t); a.status != http.StatusBadRequest || m["error"] != tc.code || m["access_token"] != nil {
				t.Fatalf("refused client_credentials = %d %s", a.status, a.body)
			}
			wrong := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID)+":wrong"))
			if a := tokenCall(t, s, cc, map[string]string{"Authorization": wrong}); a.status != http.StatusUnauthorized || a.json(t)["error"] != "invalid_client" {
				t.Fatalf("a wrong secret while the grant is refused = %d %s", a.status, a.body)
			}
			if a := tokenCall(t, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, nil); a.status != http.StatusOK {
				t.Fatalf("a refresh while client_credentials is refused = %d %s", a.status, a.body)
			}
			tokens(t, s) // consent and code exchange still work
			s.RefuseClientCredentials(GrantAllowed)
			if a := tokenCall(t, s, cc, nil); a.status != http.StatusOK {
				t.Fatalf("client_credentials after clearing = %d %s", a.status, a.body)
			}
		})
	}
}
