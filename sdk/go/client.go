// Package grconnect is the Go client of grconnect's JSON API: fresh GetResponse
// access tokens for a connection (cached until shortly before they expire), calls
// through grconnect's proxy, connect sessions for customers, the connections
// themselves, and the verification of grconnect's webhooks (Standard Webhooks).
//
// It depends on the standard library only.
//
//	gc, err := grconnect.New("https://grconnect.example.com", os.Getenv("GRCONNECT_API_KEY"))
//	tok, err := gc.Token(ctx, "con_…") // call it before every GetResponse request: it is cached
//
// Every call returns an *APIError when grconnect answers with its error envelope;
// CodeOf names its code.
package grconnect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults of a Client's options.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultRetries      = 2
	DefaultTokenMargin  = 60 * time.Second
	DefaultMaxRetryWait = 60 * time.Second
)

// Client calls one grconnect installation with one API key. It is safe for
// concurrent use; share one per process so that its token cache is shared too.
type Client struct {
	base         string // ends in /api/v1
	apiKey       string
	hc           *http.Client
	timeout      time.Duration
	userAgent    string
	retries      int
	retryBackoff time.Duration
	tokenMargin  time.Duration
	maxRetryWait time.Duration
	now          func() time.Time

	mu      sync.Mutex
	tokens  map[string]Token
	flights map[string]*flight
}

// Option configures a Client.
type Option func(*Client)

// WithTimeout limits each HTTP attempt (default 30 s).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithUserAgent names the calling application; it goes before the SDK's own
// product token in the User-Agent header ("billing/1.2 grconnect-go/0.3.0").
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		if ua = strings.TrimSpace(ua); ua != "" {
			c.userAgent = ua + " " + c.userAgent
		}
	}
}

// WithHTTPClient sends the requests through hc (its Timeout is replaced by
// WithTimeout's). The Client never follows redirects, whatever hc says.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRetries sets how often a request that failed in transport (no answer) is
// sent again, for idempotent calls only: GET, HEAD, PUT, DELETE and OPTIONS, and
// the token call (default 2).
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(0, n) } }

// WithTokenMargin sets how long before expires_at a cached token stops being
// served from the cache (default 60 s).
func WithTokenMargin(d time.Duration) Option { return func(c *Client) { c.tokenMargin = max(0, d) } }

// WithMaxRetryWait sets the longest Retry-After the proxy waits out on a 429
// (default 60 s); a longer one is returned to the caller at once.
func WithMaxRetryWait(d time.Duration) Option { return func(c *Client) { c.maxRetryWait = max(0, d) } }

// New returns a Client for the grconnect at baseURL (like
// "https://grconnect.example.com"; a trailing "/api/v1" is accepted) that
// authenticates with apiKey.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("grconnect: base URL %q: give an absolute http(s) URL like https://grconnect.example.com", baseURL)
	}
	if strings.TrimSpace(apiKey) == "" {
		return nil, errors.New("grconnect: the API key is empty")
	}
	base := strings.TrimRight(u.String(), "/")
	if !strings.HasSuffix(base, "/api/v1") {
		base += "/api/v1"
	}
	c := &Client{
		base: base, apiKey: strings.TrimSpace(apiKey), timeout: DefaultTimeout, userAgent: "grconnect-go/" + Version,
		retries: DefaultRetries, retryBackoff: 250 * time.Millisecond, tokenMargin: DefaultTokenMargin,
		maxRetryWait: DefaultMaxRetryWait, now: time.Now, tokens: map[string]Token{}, flights: map[string]*flight{},
	}
	for _, o := range opts {
		o(c)
	}
	hc := http.Client{}
	if c.hc != nil {
		hc = *c.hc
	}
	hc.Timeout = c.timeout
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

// request is one call of the API.
type request struct {
	method string
	path   string // below /api/v1, escaped
	query  url.Values
	header http.Header
	body   []byte
	// idempotent calls are sent again after a transport failure.
	idempotent bool
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// idempotentMethod reports whether sending method twice does what sending it once does.
func idempotentMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// send sends r, again after a transport failure when r is idempotent, and reads
// the answer whole.
func (c *Client) send(ctx context.Context, r request) (*response, error) {
	target := c.base + r.path
	if len(r.query) > 0 {
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + r.query.Encode()
	}
	attempts := 1
	if r.idempotent {
		attempts += c.retries
	}
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			// Exponential backoff with jitter: 250 ms, 500 ms, … (±25 %).
			d := c.retryBackoff << (attempt - 1)
			d = time.Duration(float64(d) * (0.75 + 0.5*rand.Float64()))
			if err := sleep(ctx, d); err != nil {
				return nil, lastErr
			}
		}
		res, err := c.attempt(ctx, target, r)
		if err == nil {
			return res, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func (c *Client) attempt(ctx context.Context, target string, r request) (*response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("grconnect: %s %s: %w", r.method, r.path, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("User-Agent", c.userAgent)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("grconnect: %s %s: %w", r.method, r.path, stripURL(err))
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("grconnect: %s %s: reading the answer: %w", r.method, r.path, err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}, nil
}

// stripURL drops the request URL from a *url.Error: the caller knows it, and a
// proxied path may carry a customer's data.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// call sends r and decodes a 2xx JSON answer into out (when out is not nil); any
// other answer becomes an *APIError.
func (c *Client) call(ctx context.Context, r request, out any) error {
	if r.body != nil {
		if r.header == nil {
			r.header = http.Header{}
		}
		r.header.Set("Content-Type", "application/json")
	}
	res, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	if res.status < 200 || res.status > 299 {
		return errorFrom(res)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(res.body, out); err != nil {
		return &APIError{StatusCode: res.status, Code: CodeUnexpectedResponse,
			Message: "the answer is not the JSON this call expects: " + err.Error(), RequestID: res.header.Get("X-Request-Id")}
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// segment escapes one path segment (an ID).
func segment(id string) string { return url.PathEscape(id) }

// requireID refuses an empty ID before it becomes a request for a list.
func requireID(what, id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("grconnect: the %s ID is empty", what)
	}
	return nil
}
