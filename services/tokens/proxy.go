package tokens

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
)

// Proxy limits.
const (
	// MaxInFlightPerAccount is GetResponse's documented limit of parallel requests
	// per user; the proxy keeps it across replicas (see proxy_pace.go).
	MaxInFlightPerAccount = getresponse.LimitParallel
	// ProxyReplayLimit is the largest request body held in memory, so that a call
	// refused with an expired token (1014) can be sent again after a refresh. Larger
	// bodies stream through untouched and are never replayed.
	ProxyReplayLimit = 1 << 20
	// ProxyMaxBody is the largest request body the proxy accepts.
	ProxyMaxBody = 32 << 20
	// DefaultProxyMaxWait is how long a call waits in its account's queue by default.
	DefaultProxyMaxWait = 5 * time.Second
	// errorPeekLimit is how much of an error answer is read before streaming it: a
	// whole small answer can be checked for 1014 and cleared of the echoed token.
	errorPeekLimit = 64 << 10
)

// ProxyRequest is a GetResponse call that the operator's backend sends through a
// connection.
type ProxyRequest struct {
	ConnectionID string
	Method       string
	// Path is what follows /proxy in the URL, still percent-encoded ("/contacts/abc").
	Path     string
	RawQuery string
	// Header holds the caller's headers; only forwardedHeaders reach GetResponse.
	Header        http.Header
	Body          io.Reader // nil for none
	ContentLength int64     // -1 when unknown
	Actor         string
}

// ProxyResponse is GetResponse's answer, to be streamed back to the caller, who
// must close Body: that frees the account's slot.
type ProxyResponse struct {
	StatusCode int
	// Queued is how long the call waited in its account's queue before it was sent.
	Queued time.Duration
	// Header holds only returnedHeaders of GetResponse's answer.
	Header http.Header
	Body   io.ReadCloser
	// Retried says the call met an expired token (1014) and was sent again after a refresh.
	Retried bool
	// NotReplayed says the call met 1014 with a body too large to replay: the token
	// was refreshed and GetResponse's 401 is returned; sending the call again works.
	NotReplayed bool
}

// forwardedHeaders are the caller's headers that reach GetResponse. Everything else
// stays behind: Authorization (grconnect sends the connection's token), X-Domain
// (the app's), X-Auth-Token, cookies, proxies' and hop-by-hop headers.
var forwardedHeaders = []string{
	"Accept", "Accept-Language", "Content-Type", "X-Time-Zone",
	"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
}

// returnedHeaders are the headers of GetResponse's answer passed back to the caller.
var returnedHeaders = []string{
	"Content-Type", "Content-Language", "Location", "ETag", "Last-Modified", "Retry-After",
	"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
	"TotalCount", "TotalPages", "CurrentPage",
}

// ErrMethodNotAllowed is returned for a method the proxy does not forward.
var ErrMethodNotAllowed = errors.New("the proxy forwards GET, HEAD, POST, PUT, PATCH and DELETE only")

// RateLimitedError is a proxied call answered locally, without reaching GetResponse.
type RateLimitedError struct {
	RetryAfter time.Duration
	// Busy says the account's queue did not reach the call within the proxy's
	// maximum wait (or was already too long for it); otherwise GetResponse asked
	// to wait (a 429, or the window's last call) for longer than that.
	Busy bool
	// Queued is how long the call waited before it was refused.
	Queued time.Duration
}

// Error says why and for how long.
func (e *RateLimitedError) Error() string {
	secs := max(int(e.RetryAfter.Round(time.Second).Seconds()), 1)
	if e.Busy {
		return fmt.Sprintf("this GetResponse account's calls (at most %d at once, %d a second) did not leave room for this one in time; try again in %d s",
			MaxInFlightPerAccount, getresponse.LimitPerSecond, secs)
	}
	return fmt.Sprintf("GetResponse's rate limit for this account resets in %d s; not calling it before then", secs)
}

// UnavailableError is a proxied call that got no answer from GetResponse (network
// failure, timeout). It matches ErrTransient.
type UnavailableError struct{ Err error }

// Error describes the failure; the cause never holds a token.
func (e *UnavailableError) Error() string { return "GetResponse did not answer: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is matches ErrTransient.
func (e *UnavailableError) Is(target error) bool { return target == ErrTransient }

// Proxy relays the operator's backend's GetResponse calls through a connection: it
// adds the access token (refreshing it once on 1014), keeps every call on the app's
// API base, and paces each account's calls within GetResponse's limits
// (proxy_pace.go), across replicas on PostgreSQL (proxy_fleet.go).
type Proxy struct {
	tokens *Tokens
	store  *models.Store
	gr     *getresponse.Client
	pace   *pacer
	// fleet shares the limits with every replica on the same PostgreSQL database;
	// nil on SQLite, where one process is the whole fleet.
	fleet *proxyFleet
}

// NewProxy returns the proxy; a call waits up to maxWait for its account's limits
// (0: none, a call over a limit is answered 429 at once). On PostgreSQL, Run
// shares the limits with the other replicas.
func NewProxy(tokens *Tokens, store *models.Store, gr *getresponse.Client, maxWait time.Duration) *Proxy {
	p := &Proxy{tokens: tokens, store: store, gr: gr, pace: newPacer(getResponseLimits, time.Now, maxWait)}
	if store.IsPostgres() {
		p.fleet = newProxyFleet(store, p.pace, tokens.log)
	}
	return p
}

// Run shares the per-account limits with the other replicas until ctx ends (on
// PostgreSQL; on SQLite it returns at once).
func (p *Proxy) Run(ctx context.Context) {
	if p.fleet != nil {
		p.fleet.run(ctx)
	}
}

// Do sends in to GetResponse and returns its answer, whatever its status. Errors are
// FieldErrors (a refused path), ErrMethodNotAllowed, the token engine's (models.ErrNotFound,
// models.ErrDisconnected, *RefreshError), *RateLimitedError and *UnavailableError.
func (p *Proxy) Do(ctx context.Context, in ProxyRequest) (*ProxyResponse, error) {
	switch in.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return nil, ErrMethodNotAllowed
	}
	path, err := CleanProxyPath(in.Path)
	if err != nil {
		return nil, err
	}
	grant, err := p.tokens.AccessToken(ctx, in.ConnectionID, in.Actor)
	if err != nil {
		return nil, err
	}
	app, err := p.tokens.App(ctx, grant.AppID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, models.ErrDisconnected // deleting an app disconnects its connections
	}
	if err != nil {
		return nil, err
	}
	// The client secret is not needed for API calls, so it stays sealed.
	ga := APIClientFor(app, grant.Identity)
	key := budgetKey(app.APIURL, grant.Identity.MaxDomain, grant.AccountID)
	ticket, queued, err := p.pace.acquire(ctx, key)
	if err != nil {
		return nil, err
	}
	out := &ProxyResponse{Queued: queued}
	res, token, err := p.exchange(ctx, in, path, ga, grant, out)
	if err != nil {
		ticket.end()
		return nil, err
	}
	ticket.observe(res.StatusCode, res.Header)
	if p.fleet != nil {
		p.fleet.observe(ctx, key, res.StatusCode, res.Header)
	}
	p.tokens.ObserveAnswer(app.APIURL, grant.Identity.MaxDomain, grant.AccountID, res.StatusCode, res.Header)
	release := ticket.end
	out.StatusCode = res.StatusCode
	out.Header = http.Header{}
	for _, h := range returnedHeaders {
		if v := res.Header.Values(h); len(v) > 0 {
			out.Header[http.CanonicalHeaderKey(h)] = v
		}
	}
	if res.StatusCode >= 400 {
		// GetResponse echoes the sent token in some errors ({"sentToken": …}).
		complete, err := peek(res, errorPeekLimit)
		if err != nil {
			res.Body.Close()
			release()
			return nil, &UnavailableError{Err: errors.New("the answer broke off")}
		}
		if complete != nil {
			clean := bytes.ReplaceAll(complete, []byte(token), []byte("[redacted]"))
			res.Body, res.ContentLength = io.NopCloser(bytes.NewReader(clean)), int64(len(clean))
		}
	}
	if res.ContentLength >= 0 {
		out.Header.Set("Content-Length", strconv.FormatInt(res.ContentLength, 10))
	}
	out.Body = &releasingBody{ReadCloser: res.Body, release: release}
	return out, nil
}

// exchange sends the call, and on 1014 refreshes the token once and sends it once
// more. It returns the answer to stream and the token that answer was made with.
func (p *Proxy) exchange(ctx context.Context, in ProxyRequest, path string, ga getresponse.App, grant *Grant, out *ProxyResponse) (*http.Response, string, error) {
	body, replay, err := proxyBody(in)
	if err != nil {
		return nil, "", err
	}
	fr := getresponse.ForwardRequest{Method: in.Method, Path: path, RawQuery: in.RawQuery, Header: http.Header{}}
	for _, h := range forwardedHeaders {
		if v := in.Header.Values(h); len(v) > 0 {
			fr.Header[http.CanonicalHeaderKey(h)] = v
		}
	}
	setBody := func() {
		switch {
		case replay != nil:
			fr.Body, fr.ContentLength = bytes.NewReader(replay), int64(len(replay))
			fr.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(replay)), nil }
		default:
			fr.Body, fr.ContentLength = body, in.ContentLength
		}
	}
	setBody()
	res, err := p.forward(ctx, ga, grant.Token, fr)
	if err != nil {
		return nil, "", err
	}
	if res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusForbidden {
		return res, grant.Token, nil
	}
	complete, err := peek(res, errorPeekLimit)
	if err != nil || !getresponse.IsTokenExpired(res.StatusCode, complete) || grant.RecentlyRefreshed(p.tokens.Now()) {
		// Not 1014 (or unreadable), or a 1014 for a token refreshed moments ago,
		// which another refresh would not cure: the answer goes back as it is.
		return res, grant.Token, nil
	}
	if replay == nil {
		// A large body went out and cannot be sent again: refresh for the next call.
		if _, err := p.freshToken(ctx, in, grant); err != nil {
			res.Body.Close()
			return nil, "", err
		}
		out.NotReplayed = true
		return res, grant.Token, nil
	}
	res.Body.Close()
	token, err := p.freshToken(ctx, in, grant)
	if err != nil {
		return nil, "", err
	}
	setBody()
	out.Retried = true
	res, err = p.forward(ctx, ga, token, fr)
	return res, token, err
}

func (p *Proxy) forward(ctx context.Context, ga getresponse.App, token string, fr getresponse.ForwardRequest) (*http.Response, error) {
	res, err := p.gr.Forward(ctx, ga, token, fr)
	switch {
	case errors.Is(err, getresponse.ErrOffBase):
		return nil, models.FieldErrors{"path": "The path must stay under the app's API base."}
	case err != nil:
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, tooBig
		}
		return nil, &UnavailableError{Err: err}
	}
	return res, nil
}

// freshToken returns a token to retry with: the one another request stored
// meanwhile, or a newly refreshed one.
func (p *Proxy) freshToken(ctx context.Context, in ProxyRequest, used *Grant) (string, error) {
	replaced, err := p.tokens.Replaced(ctx, used)
	if err != nil {
		return "", err
	}
	if !replaced {
		if _, err := p.tokens.RefreshRefused(ctx, used, in.Actor); err != nil {
			return "", err
		}
	}
	g, err := p.tokens.AccessToken(ctx, in.ConnectionID, in.Actor)
	if err != nil {
		return "", err
	}
	return g.Token, nil
}

// proxyBody reads a body of up to ProxyReplayLimit into memory (replay is then
// non-nil, possibly empty); a larger one is returned as a stream that starts with
// what was read.
func proxyBody(in ProxyRequest) (stream io.Reader, replay []byte, err error) {
	if in.Body == nil || in.ContentLength == 0 {
		return nil, []byte{}, nil
	}
	if in.ContentLength > ProxyReplayLimit {
		return in.Body, nil, nil
	}
	buf, err := io.ReadAll(io.LimitReader(in.Body, ProxyReplayLimit+1))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, nil, tooBig
		}
		return nil, nil, &UnavailableError{Err: errors.New("the request body broke off")}
	}
	if len(buf) <= ProxyReplayLimit {
		return nil, buf, nil
	}
	return io.MultiReader(bytes.NewReader(buf), in.Body), nil, nil
}

// peek reads up to limit bytes of res's body. A body that fits is returned whole and
// res.Body replays it; otherwise complete is nil and res.Body still yields every byte.
func peek(res *http.Response, limit int64) (complete []byte, err error) {
	buf, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(buf)) <= limit {
		res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(buf))
		return buf, nil
	}
	res.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), res.Body), res.Body}
	return nil, nil
}

// releasingBody frees the account's slot when the answer has been streamed.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
