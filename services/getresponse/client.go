package getresponse

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// App holds what the client needs of one OAuth app registration.
type App struct {
	ClientID     string
	ClientSecret string
	// AuthURL is the authorize page, see DefaultAuthURL.
	AuthURL string
	// APIURL is the API base without a trailing slash, e.g.
	// https://api.getresponse.com/v3; the token URL is APIURL + "/token".
	APIURL string
	// XDomain is the MAX domain, "" for standard accounts. When set it is sent
	// as X-Domain on every token and API request.
	XDomain string
	// ParentLogin, when set, is sent as X-Parent-Login on API requests: it
	// picks the parent account for a user who belongs to several.
	ParentLogin string
	// RedirectURL is BASE_URL/oauth/callback, as registered with GetResponse.
	RedirectURL string
}

// TokenURL returns the token endpoint of the app.
func (a App) TokenURL() string { return a.apiBase() + "/token" }

func (a App) apiBase() string { return strings.TrimRight(a.APIURL, "/") }

// Default timeouts of New.
const (
	DefaultTokenTimeout = 15 * time.Second
	defaultDialTimeout  = 5 * time.Second
	defaultTLSTimeout   = 5 * time.Second
	defaultHeaderWait   = 20 * time.Second
	defaultOverall      = 30 * time.Second
)

// Client talks to GetResponse. It holds no credentials: every call takes the
// App and the token it needs, so one Client serves all connections. It is
// safe for concurrent use; set its fields before the first call.
type Client struct {
	// TokenTimeout is the deadline of each token call (exchange, refresh);
	// zero or negative means DefaultTokenTimeout.
	TokenTimeout time.Duration
	// UserAgent is sent on every request; "" means "grconnect".
	UserAgent string
	// Observe, when set, is told about every call to GetResponse (the metrics).
	Observe CallObserver

	hc *http.Client
}

// The kinds of call an observer is told about.
const (
	CallToken = "token" // the token endpoint: exchange, refresh, credentials check
	CallAPI   = "api"   // grconnect's own API calls (the account, test calls)
	CallProxy = "proxy" // calls relayed for someone else (Forward)
)

// CallObserver is told about one call: its kind (CallToken, CallAPI, CallProxy),
// the answer's HTTP status (0 when none came: a network error or timeout) and the
// time until the answer's headers. It must be quick and safe for concurrent use.
type CallObserver func(kind string, status int, took time.Duration)

// observe reports a call to the observer, if any.
func (c *Client) observe(kind string, res *http.Response, start time.Time) {
	if c.Observe == nil {
		return
	}
	status := 0
	if res != nil {
		status = res.StatusCode
	}
	c.Observe(kind, status, time.Since(start))
}

// New returns a Client using a copy of hc, or, when hc is nil, an
// *http.Client with sane timeouts (dial 5 s, TLS handshake 5 s, response
// header 20 s, 30 s overall). The copy never follows redirects, whatever hc
// does: a 3xx answer comes back as it is, so no token, code or client
// secret is ever re-sent to the address in its Location. hc itself is not
// changed.
func New(hc *http.Client) *Client {
	if hc == nil {
		hc = defaultHTTPClient()
	} else {
		cp := *hc
		hc = &cp
	}
	hc.CheckRedirect = refuseRedirect
	return &Client{TokenTimeout: DefaultTokenTimeout, hc: hc}
}

// refuseRedirect makes an *http.Client return a 3xx answer instead of
// following it.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: defaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = defaultTLSTimeout
	t.ResponseHeaderTimeout = defaultHeaderWait
	t.MaxIdleConnsPerHost = 10 // GetResponse allows 10 parallel requests per user
	return &http.Client{Transport: t, Timeout: defaultOverall}
}

func (c *Client) userAgent() string {
	if c.UserAgent != "" {
		return c.UserAgent
	}
	return "grconnect"
}

// headerTransport adds fixed headers (X-Domain, User-Agent) to token
// requests, which x/oauth2 builds itself, and keeps the headers of the last
// answer (x/oauth2 hides them on success).
type headerTransport struct {
	base   http.RoundTripper
	header http.Header
	client *Client // told about each call

	mu   sync.Mutex
	last http.Header
}

// RoundTrip sends a copy of r with the extra headers.
func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	for k, v := range t.header {
		r2.Header[k] = v
	}
	start := time.Now()
	res, err := t.base.RoundTrip(r2)
	t.client.observe(CallToken, res, start)
	if res != nil {
		t.mu.Lock()
		t.last = res.Header
		t.mu.Unlock()
	}
	return res, err
}

// rateLimit parses the X-RateLimit-* headers of the last answer.
func (t *headerTransport) rateLimit() RateLimit {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		return RateLimit{}
	}
	return ParseRateLimit(t.last)
}

// accountHeaders sets the headers that name the account a call is for, replacing
// any the caller sent: X-Domain (GetResponse MAX) on every call, and on API calls
// X-Parent-Login. It is the one place these headers are written.
func (a App) accountHeaders(h http.Header, api bool) {
	h.Del("X-Domain")
	if a.XDomain != "" {
		h.Set("X-Domain", a.XDomain)
	}
	h.Del("X-Parent-Login")
	if api && a.ParentLogin != "" {
		h.Set("X-Parent-Login", a.ParentLogin)
	}
}

// tokenHTTPClient is c.hc with the headers every token call of app needs,
// and the transport that sees the answer.
func (c *Client) tokenHTTPClient(app App) (*http.Client, *headerTransport) {
	h := http.Header{}
	h.Set("User-Agent", c.userAgent())
	app.accountHeaders(h, false)
	base := c.hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	ht := &headerTransport{base: base, header: h, client: c}
	hc := *c.hc
	hc.Transport = ht
	return &hc, ht
}
