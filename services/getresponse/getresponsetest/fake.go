// Package getresponsetest provides a fake GetResponse (authorize page, token
// endpoint and a few API calls) that behaves like the real one as described
// in grconnect's getresponse-api.md, in the manner of net/http/httptest.
//
// A Fake is an http.Handler: tests wrap it in an httptest server with
// NewServer, and demo mode mounts it inside the app under a path prefix
// (Options.Prefix). Failure switches (FailToken, FailAPI, ExpireAccessTokens,
// RevokeRefreshTokens) and exact per-endpoint counters let tests drive the
// client's error paths. All methods are safe for concurrent use.
//
// Where the real API's behaviour is unknown the fake picks one documented
// answer:
//   - a token or API request without the right X-Domain in MAX mode gets
//     HTTP 401 with envelope code 1014 (context {"authenticationType":"x-domain"});
//   - the token endpoint accepts client credentials only as HTTP Basic (both
//     parts URL-decoded, as x/oauth2 sends them) and answers RFC 6749 error
//     bodies;
//   - 1017 and 1018 come with HTTP 403;
//   - the consent decision redirects with 302 Found.
package getresponsetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Rotation decides what a refresh does with the refresh token.
type Rotation int

// The refresh-token rotation policies.
const (
	// RotationNone returns the same refresh token (GetResponse's documented example).
	RotationNone Rotation = iota
	// RotationRotate returns a new refresh token; the old one stays valid.
	RotationRotate
	// RotationStrict returns a new refresh token; the old one dies at once.
	RotationStrict
	// RotationOmit sends no refresh_token field; the old one stays valid.
	RotationOmit
)

// Options configures a Fake.
type Options struct {
	// Prefix is the path the fake is mounted under, e.g. "/demo-getresponse";
	// "" in tests.
	Prefix string
	// ExpiresIn is the access-token lifetime; 0 means 3600 s.
	ExpiresIn time.Duration
	// Rotation is the refresh-token policy.
	Rotation Rotation
	// MaxDomain turns on MAX mode: every token and API request must carry
	// X-Domain equal to it (case-insensitive), else HTTP 401, code 1014.
	MaxDomain string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Endpoint names what Count counts.
type Endpoint int

// The counted endpoints. A call is counted when it arrives, before any
// failure switch, latency or check applies.
const (
	// EndpointAuthorize counts GETs of the consent page.
	EndpointAuthorize Endpoint = iota
	// EndpointConsent counts consent decisions (POSTs of the page, Approve, Deny).
	EndpointConsent
	// EndpointToken counts every call of /v3/token.
	EndpointToken
	// EndpointTokenCode counts token calls with grant_type=authorization_code.
	EndpointTokenCode
	// EndpointTokenRefresh counts token calls with grant_type=refresh_token.
	EndpointTokenRefresh
	// EndpointTokenClientCredentials counts token calls with grant_type=client_credentials.
	EndpointTokenClientCredentials
	// EndpointAccounts counts GET /v3/accounts.
	EndpointAccounts
	// EndpointFromFields counts GET /v3/from-fields.
	EndpointFromFields
	// EndpointCampaigns counts GET /v3/campaigns.
	EndpointCampaigns
	// EndpointOther counts any other request under /v3 (answered 404, code 1013).
	EndpointOther
	numEndpoints
)

// Default lifetimes and limits, as GetResponse documents them.
const (
	DefaultExpiresIn = 3600 * time.Second
	CodeLifetime     = 10 * time.Minute
	RateLimitWindow  = 10 * time.Minute
	RateLimitCalls   = 30000
)

type client struct {
	secret      string
	redirectURL string
}

type authCode struct {
	clientID, accountID string
	issued              time.Time
}

type accessToken struct {
	clientID, accountID string
	expiry              time.Time
	expired             bool
}

type refreshToken struct {
	clientID, accountID string
}

type bucket struct {
	start time.Time
	used  int
}

// failure is a failure switch: a mode for the next n calls, or forever (n<0).
type failure[M comparable] struct {
	mode M
	n    int
}

func (s *failure[M]) take() (M, bool) {
	var zero M
	if s.mode == zero || s.n == 0 {
		return zero, false
	}
	if s.n > 0 {
		s.n--
	}
	return s.mode, true
}

// Fake is a fake GetResponse. Create it with New or NewServer.
type Fake struct {
	opts   Options
	counts [numEndpoints]atomic.Int64
	closed chan struct{}
	once   sync.Once

	mu           sync.Mutex
	clients      map[string]client
	accounts     []Account
	accountIndex map[string]int // AccountID → position in accounts; nil until needed
	codes        map[string]authCode
	access       map[string]*accessToken
	refresh      map[string]refreshToken
	buckets      map[string]*bucket
	tokenFail    failure[TokenFailure]
	apiFail      failure[APIFailure]
	tokenLatency time.Duration
	apiLatency   time.Duration
}

// New returns a Fake offering DefaultAccount on its consent page and no
// registered clients (see AddClient).
func New(opts Options) *Fake {
	opts.Prefix = strings.TrimRight(opts.Prefix, "/")
	if opts.Prefix != "" && !strings.HasPrefix(opts.Prefix, "/") {
		opts.Prefix = "/" + opts.Prefix
	}
	if opts.ExpiresIn <= 0 {
		opts.ExpiresIn = DefaultExpiresIn
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Fake{
		opts:     opts,
		closed:   make(chan struct{}),
		clients:  map[string]client{},
		accounts: []Account{DefaultAccount()},
		codes:    map[string]authCode{},
		access:   map[string]*accessToken{},
		refresh:  map[string]refreshToken{},
		buckets:  map[string]*bucket{},
	}
}

// Prefix returns the normalized path prefix ("" or "/something").
func (f *Fake) Prefix() string { return f.opts.Prefix }

func (f *Fake) now() time.Time { return f.opts.Now() }

// AddClient registers an OAuth app: after consent the browser is sent to
// redirectURL. Adding an existing id replaces it.
func (f *Fake) AddClient(id, secret, redirectURL string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[id] = client{secret: secret, redirectURL: redirectURL}
}

// Count returns how many calls of e arrived. It is exact under concurrency.
func (f *Fake) Count(e Endpoint) int {
	if e < 0 || e >= numEndpoints {
		return 0
	}
	return int(f.counts[e].Load())
}

// ResetCounts sets every counter to zero.
func (f *Fake) ResetCounts() {
	for i := range f.counts {
		f.counts[i].Store(0)
	}
}

func (f *Fake) inc(e Endpoint) { f.counts[e].Add(1) }

// SetTokenLatency delays every token answer by d (0 turns it off).
func (f *Fake) SetTokenLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenLatency = d
}

// SetAPILatency delays every API answer by d (0 turns it off).
func (f *Fake) SetAPILatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apiLatency = d
}

// Close releases every handler blocked by TokenHang, APIHang or a latency;
// later hangs return at once. The Fake keeps answering otherwise.
func (f *Fake) Close() {
	f.once.Do(func() { close(f.closed) })
}

// wait blocks for d (forever when d < 0) or until the request ends or the
// Fake closes; it reports whether the full time passed.
func (f *Fake) wait(ctx context.Context, d time.Duration) bool {
	if d == 0 {
		return true
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-ctx.Done():
	case <-f.closed:
	}
	return false
}

// ServeHTTP routes, under Options.Prefix:
//
//	GET/POST /oauth2_authorize.html  consent page and decision
//	POST     /v3/token               token endpoint
//	GET      /v3/accounts, /v3/from-fields, /v3/campaigns
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if p := f.opts.Prefix; p != "" {
		if !strings.HasPrefix(path, p+"/") {
			http.NotFound(w, r)
			return
		}
		path = path[len(p):]
	}
	switch {
	case path == "/oauth2_authorize.html":
		f.serveAuthorize(w, r)
	case path == "/v3/token":
		f.serveToken(w, r)
	case path == "/v3" || strings.HasPrefix(path, "/v3/"):
		f.serveAPI(w, r, strings.TrimPrefix(path, "/v3"))
	default:
		http.NotFound(w, r)
	}
}

// randomHex returns n random bytes as 2n hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// baseURL is the fake's own URL as the request reached it, for hrefs.
func (f *Fake) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + f.opts.Prefix
}

// domainOK checks X-Domain in MAX mode.
func (f *Fake) domainOK(r *http.Request) bool {
	return f.opts.MaxDomain == "" || strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Domain")), f.opts.MaxDomain)
}
