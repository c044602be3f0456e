package grconnect

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ProxyRequest is a GetResponse API call sent through grconnect's proxy.
type ProxyRequest struct {
	// Method is the HTTP method (default GET).
	Method string
	// Path is the GetResponse API path below /v3, like "/from-fields" or
	// "/contacts/abc"; it may carry a query string.
	Path string
	// Query is added to the path's query.
	Query url.Values
	// Header holds extra request headers.
	Header http.Header
	// Body is sent as it is; JSON, when Body is nil, is sent encoded as JSON. A body
	// goes out as application/json unless Header names another Content-Type.
	Body []byte
	JSON any
}

// ProxyResponse is GetResponse's answer, whatever its status.
type ProxyResponse struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// DecodeJSON decodes the body into v.
func (r *ProxyResponse) DecodeJSON(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("grconnect: GetResponse's answer (HTTP %d) is not the expected JSON: %w", r.StatusCode, err)
	}
	return nil
}

// Proxy sends a GetResponse API call through grconnect, which adds the
// connection's access token (and refreshes it once on a 401). GetResponse's
// answer is returned as it is, also a 4xx or 5xx; grconnect's own refusals (no
// such connection, needs_reconnect, …) are an *APIError.
//
// A 429 with a Retry-After (GetResponse's or grconnect's own pacing) is waited
// out once, up to the client's maximum retry wait, and the call sent again; a
// second 429 is returned. A call that failed in transport is sent again only
// when its method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS).
func (c *Client) Proxy(ctx context.Context, connectionID string, pr ProxyRequest) (*ProxyResponse, error) {
	if err := requireID("connection", connectionID); err != nil {
		return nil, err
	}
	method := strings.ToUpper(strings.TrimSpace(pr.Method))
	if method == "" {
		method = http.MethodGet
	}
	path := pr.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if path == "/" || strings.Contains(path, "://") {
		return nil, fmt.Errorf("grconnect: proxy path %q: give a GetResponse API path like /from-fields", pr.Path)
	}
	r := request{method: method, path: "/connections/" + segment(connectionID) + "/proxy" + path, query: pr.Query,
		header: pr.Header.Clone(), body: pr.Body, idempotent: idempotentMethod(method)}
	if r.header == nil {
		r.header = http.Header{}
	}
	if r.body == nil && pr.JSON != nil {
		b, err := json.Marshal(pr.JSON)
		if err != nil {
			return nil, fmt.Errorf("grconnect: encoding the proxy body: %w", err)
		}
		r.body = b
	}
	if r.body != nil && r.header.Get("Content-Type") == "" {
		r.header.Set("Content-Type", "application/json") // GetResponse's API takes JSON only
	}
	waited := false
	for {
		res, err := c.send(ctx, r)
		if err != nil {
			return nil, err
		}
		if res.status == http.StatusTooManyRequests && !waited {
			if d, ok := c.retryWait(res); ok {
				waited = true
				if err := sleep(ctx, d); err != nil {
					return nil, err
				}
				continue
			}
		}
		if res.status >= 400 {
			if e := parseEnvelope(res); e != nil {
				return nil, e
			}
		}
		return &ProxyResponse{StatusCode: res.status, Header: res.header, Body: res.body}, nil
	}
}

// retryWaitPad is added to a Retry-After so the call comes back after the limit
// has reset, not at the very instant.
const retryWaitPad = 100 * time.Millisecond

// retryWait says how long to wait before sending a refused call again: its
// Retry-After, when there is one no longer than the maximum wait.
func (c *Client) retryWait(res *response) (time.Duration, bool) {
	d, ok := retryAfter(res.header, c.now())
	if !ok || d > c.maxRetryWait {
		return 0, false
	}
	return d + retryWaitPad, true
}
