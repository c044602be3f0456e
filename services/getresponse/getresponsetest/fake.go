// Package getresponsetest provides a fake GetResponse (authorize page, token
// endpoint and a few API calls) that behaves like the real one as described
// in grconnect's getresponse-api.md, in the manner of net/http/httptest.
//
// A Fake is an http.Handler: tests wrap it in an httptest server with
// NewServer, and demo mode mounts it inside the app under a path prefix
// (Options.Prefix). Failure switches (FailToken, FailTokenFor, FailAPI,
// FailAPIFor, ExpireAccessTokens, RevokeRefreshTokens, SetOutage,
// RefuseClientCredentials), the
// documented rate limits (Options.WindowCalls, PerSecond, Parallel), exact
// counters (Count, Stat, PeakInFlight, DomainCalls) and a clock (Options.Now)
// let tests drive the client's and the engine's error paths without sleeping.
// MAX accounts may live on several domains at once (Account.Domain). The
// state can be saved and restored (Snapshot, Restore, Options.OnChange). All
// methods are safe for concurrent use.
//
// Where the real API's behaviour is unknown the fake picks one answer:
//   - a token or API request without the X-Domain of the account's MAX domain
//     gets HTTP 401 with envelope code 1014 (context {"authenticationType":"x-domain"});
//     for a standard account X-Domain is ignored;
//   - the token endpoint accepts client credentials only as HTTP Basic (both
//     parts URL-decoded, as x/oauth2 sends them) and answers RFC 6749 error
//     bodies; unauthorized_client is HTTP 400;
//   - the consent page of a MAX domain D is the one asked for with ?domain=D
//     (see Server.AuthURLFor), or with Host: D, since one test server stands
//     for every customer's domain;
//   - the blocks 1016, 1017, 1018 and 1019 and 1023 come with HTTP 403, 1021
//     with 400, 1024 with 404;
//   - an outage (SetOutage, or the consent outcome) answers 503, code 1, with
//     Retry-After until it ends;
//   - refresh calls count against the account's per-second and 10-minute
//     limits (code exchanges and client_credentials calls do not); every token
//     or API call whose account the fake can tell takes one of its parallel
//     slots while it is answered;
//   - a refusal for the per-second limit is 429, code 1015, Retry-After: 1,
//     X-RateLimit-Limit: 80, X-RateLimit-Remaining: 0, X-RateLimit-Reset:
//     1 seconds (as reported live); for the 10-minute window it is 429, code
//     1015, no Retry-After, and the window's headers with context.timeToReset;
//   - the 11th parallel request of an account is refused with 429, code 1015,
//     Retry-After: 1 and the window's headers (the real answer is unknown);
//   - client_credentials (documented in GetResponse's "Client Credentials
//     flow") returns a token for the client's owner (SetClientOwner, else the
//     first account), with no refresh token; RefuseClientCredentials makes it
//     answer 400 unsupported_grant_type or unauthorized_client instead, after
//     the client's credentials were checked;
//   - with RotationGrace a rotated-away refresh token keeps working for
//     Options.RotationGrace, each use issuing a new one;
//   - the consent decision redirects with 302 Found;
//   - /v3/accounts/callbacks keeps one setting per account, takes the action
//     goal beside those of the OpenAPI document, and answers GET of an account
//     without callbacks 404, code 1013.
//
// The fake also sends events as GetResponse does (FireWebhook: JSON with a
// stable X-Webhook-ID, retried 3 times until the answer is a 2xx with
// {"status":"OK"}; FireCallback: one GET with the callback's parameters to the
// account's registered callback URL).
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
	// RotationGrace returns a new refresh token; the old one keeps working
	// for Options.RotationGrace, then dies.
	RotationGrace
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
	// RotationGrace is how long a rotated-away refresh token keeps working
	// under RotationGrace; 0 means DefaultRotationGrace.
	RotationGrace time.Duration
	// MaxDomain turns on single-domain MAX mode: every account without a
	// Domain of its own belongs to it, so every token and API request must
	// carry X-Domain equal to it (case-insensitive), else HTTP 401, code 1014.
	MaxDomain string
	// WindowCalls is the calls per account per Window; 0 means 30,000,
	// negative means no limit.
	WindowCalls int
	// Window is the length of the long rate-limit window; 0 means 10 minutes.
	Window time.Duration
	// PerSecond is the calls per account per second; 0 means 80, negative
	// means no limit.
	PerSecond int
	// Parallel is the requests per account in flight at once; 0 means 10,
	// negative means no limit.
	Parallel int
	// SlowDelay is how long TokenSlow and APISlow delay an answer; 0 means
	// DefaultSlowDelay.
	SlowDelay time.Duration
	// OutageLength is how long the consent outcome OutcomeApproveOutage
	// makes the account fail; 0 means DefaultOutageLength.
	OutageLength time.Duration
	// WebhookRetryDelay is the wait before a webhook's first retry (FireWebhook);
	// each further retry waits twice as long. 0 means DefaultWebhookRetryDelay.
	WebhookRetryDelay time.Duration
	// OnChange, when set, is called after the state that Snapshot saves
	// changed (clients, accounts, codes, tokens, plans). It runs outside the
	// Fake's lock, never twice at once, and calls may be coalesced: one call
	// can stand for several changes. It may call Snapshot.
	OnChange func()
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
	// EndpointConsent counts consent decisions (POSTs of the page, Approve, Deny, Decide).
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
	// EndpointCallbacks counts GET, POST and DELETE /v3/accounts/callbacks.
	EndpointCallbacks
	// EndpointOther counts any other request under /v3 (answered 404, code 1013).
	EndpointOther
	// EndpointRedirectTarget counts requests to the Location of the fake's
	// redirects (TokenRedirect, APIRedirect): any of them means a client
	// followed a redirect. They are answered 410 Gone.
	EndpointRedirectTarget
	numEndpoints
)

// Stat names what Stat counts besides endpoints.
type Stat int

// The counted events.
const (
	// StatRefusedParallel counts requests refused (429) because Options.Parallel
	// requests of the same account were already in flight.
	StatRefusedParallel Stat = iota
	// StatRefusedPerSecond counts requests refused (429) by the per-second limit.
	StatRefusedPerSecond
	// StatRefusedWindow counts requests refused (429) by the 10-minute window.
	StatRefusedWindow
	// StatRefusedDomain counts token and API requests refused (401, 1014)
	// for a missing or wrong X-Domain.
	StatRefusedDomain
	// StatDeadRefreshToken counts refresh calls that presented a refresh
	// token rotated away (RotationStrict, or RotationGrace after the grace).
	StatDeadRefreshToken
	// StatGraceRefresh counts refresh calls accepted with a rotated-away
	// refresh token inside its grace period.
	StatGraceRefresh
	numStats
)

// Defaults, as GetResponse documents them where it does.
const (
	DefaultExpiresIn     = 3600 * time.Second
	CodeLifetime         = 10 * time.Minute
	RateLimitWindow      = 10 * time.Minute
	RateLimitCalls       = 30000
	PerSecondLimit       = 80
	ParallelLimit        = 10
	DefaultRotationGrace = time.Minute
	DefaultSlowDelay     = 20 * time.Second
	DefaultOutageLength  = 5 * time.Minute
)

// failure is a failure switch: a mode for the next n calls, or forever (n<0).
type failure[M comparable] struct {
	mode M
	n    int
}

func (s *failure[M]) take() (M, bool) {
	var zero M
	if s == nil || s.mode == zero || s.n == 0 {
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
	stats  [numStats]atomic.Int64
	closed chan struct{}
	once   sync.Once

	notifyPending atomic.Bool
	notifyRunning atomic.Bool

	mu           sync.Mutex
	clients      map[string]*client
	accounts     []Account
	accountIndex map[string]int // AccountID → position in accounts; nil until needed
	codes        map[string]*authCode
	access       map[string]*accessToken
	refresh      map[string]*refreshToken
	plans        map[string]*plan            // by AccountID
	callbacks    map[string]*callbackSetting // by AccountID
	eventClient  *http.Client                // fires webhooks and callbacks (SetEventClient)
	usage        map[string]*usage
	domainCalls  map[DomainCall]int
	tokenFail    failure[TokenFailure]
	tokenFailFor map[string]*failure[TokenFailure] // by client ID
	apiFail      failure[APIFailure]
	apiFailFor   map[string]*failure[APIFailure] // by AccountID
	tokenLatency time.Duration
	apiLatency   time.Duration
	ccRefusal    GrantRefusal
}

// New returns a Fake offering the DemoAccounts on its consent page (the
// first is DefaultAccount) and no registered clients (see AddClient).
func New(opts Options) *Fake {
	opts.Prefix = strings.TrimRight(opts.Prefix, "/")
	if opts.Prefix != "" && !strings.HasPrefix(opts.Prefix, "/") {
		opts.Prefix = "/" + opts.Prefix
	}
	opts.MaxDomain = normalizeDomain(opts.MaxDomain)
	if opts.ExpiresIn <= 0 {
		opts.ExpiresIn = DefaultExpiresIn
	}
	if opts.RotationGrace <= 0 {
		opts.RotationGrace = DefaultRotationGrace
	}
	if opts.WindowCalls == 0 {
		opts.WindowCalls = RateLimitCalls
	}
	if opts.Window <= 0 {
		opts.Window = RateLimitWindow
	}
	if opts.PerSecond == 0 {
		opts.PerSecond = PerSecondLimit
	}
	if opts.Parallel == 0 {
		opts.Parallel = ParallelLimit
	}
	if opts.SlowDelay <= 0 {
		opts.SlowDelay = DefaultSlowDelay
	}
	if opts.OutageLength <= 0 {
		opts.OutageLength = DefaultOutageLength
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WebhookRetryDelay <= 0 {
		opts.WebhookRetryDelay = DefaultWebhookRetryDelay
	}
	f := &Fake{opts: opts, closed: make(chan struct{})}
	f.resetStateLocked()
	for _, a := range DemoAccounts() {
		f.accounts = append(f.accounts, cloneAccount(a))
	}
	return f
}

// resetStateLocked empties everything Snapshot saves; f.mu must be held (or
// f not yet shared).
func (f *Fake) resetStateLocked() {
	f.clients = map[string]*client{}
	f.accounts = nil
	f.accountIndex = nil
	f.codes = map[string]*authCode{}
	f.access = map[string]*accessToken{}
	f.refresh = map[string]*refreshToken{}
	f.plans = map[string]*plan{}
	f.callbacks = map[string]*callbackSetting{}
	if f.usage == nil {
		f.usage = map[string]*usage{}
		f.domainCalls = map[DomainCall]int{}
		f.tokenFailFor = map[string]*failure[TokenFailure]{}
		f.apiFailFor = map[string]*failure[APIFailure]{}
	}
}

// Prefix returns the normalized path prefix ("" or "/something").
func (f *Fake) Prefix() string { return f.opts.Prefix }

func (f *Fake) now() time.Time { return f.opts.Now() }

// Count returns how many calls of e arrived. It is exact under concurrency.
func (f *Fake) Count(e Endpoint) int {
	if e < 0 || e >= numEndpoints {
		return 0
	}
	return int(f.counts[e].Load())
}

// Stat returns how many times s happened. It is exact under concurrency.
func (f *Fake) Stat(s Stat) int {
	if s < 0 || s >= numStats {
		return 0
	}
	return int(f.stats[s].Load())
}

// ResetCounts sets every counter (Count, Stat, DomainCalls) to zero, and
// PeakInFlight to the requests in flight now.
func (f *Fake) ResetCounts() {
	for i := range f.counts {
		f.counts[i].Store(0)
	}
	for i := range f.stats {
		f.stats[i].Store(0)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.domainCalls)
	for _, u := range f.usage {
		u.peak = u.inFlight
	}
}

func (f *Fake) inc(e Endpoint) { f.counts[e].Add(1) }

func (f *Fake) stat(s Stat) { f.stats[s].Add(1) }

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

// Close releases every handler blocked by TokenHang, APIHang, a slow answer
// or a latency; later hangs return at once. The Fake keeps answering otherwise.
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

// changed tells Options.OnChange that the saved state changed. Calls that
// arrive while OnChange runs are folded into one more call after it.
func (f *Fake) changed() {
	if f.opts.OnChange == nil {
		return
	}
	f.notifyPending.Store(true)
	for f.notifyPending.Load() && f.notifyRunning.CompareAndSwap(false, true) {
		f.notifyPending.Store(false)
		f.opts.OnChange()
		f.notifyRunning.Store(false)
	}
}

// ServeHTTP routes, under Options.Prefix:
//
//	GET/POST /oauth2_authorize.html  consent page and decision
//	GET      /getresponse-fake.css   the consent page's stylesheet
//	POST     /v3/token               token endpoint
//	GET      /v3/accounts, /v3/from-fields, /v3/campaigns
//	*        /v3/accounts/callbacks   the account's callback setting (GET, POST, DELETE)
//	*        /moved/…                where the fake's redirects point (410)
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
	case path == stylesheetPath:
		serveStylesheet(w, r)
	case path == "/v3/token":
		f.serveToken(w, r)
	case path == "/v3" || strings.HasPrefix(path, "/v3/"):
		f.serveAPI(w, r, strings.TrimPrefix(path, "/v3"))
	case strings.HasPrefix(path, movedPrefix+"/"):
		f.inc(EndpointRedirectTarget)
		http.Error(w, "Gone: this address is where the fake's redirects point; nothing should follow them.", http.StatusGone)
	default:
		http.NotFound(w, r)
	}
}

// movedPrefix is the path the fake's redirects point to.
const movedPrefix = "/moved"

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
