package getresponse

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ForwardRequest is an API call relayed for someone else, with a body that streams.
type ForwardRequest struct {
	Method string
	// Path is relative to the API base and already checked ("/contacts/abc"): it
	// starts with "/" and has no empty, "." or ".." segments.
	Path     string
	RawQuery string
	// Header holds the headers to send besides Authorization, X-Domain and
	// User-Agent, which Forward sets itself.
	Header http.Header
	// Body is nil for none. GetBody, when set, returns a fresh copy of it.
	Body          io.Reader
	GetBody       func() (io.ReadCloser, error)
	ContentLength int64 // -1 when unknown
}

// ErrOffBase is returned when a forwarded path would leave the app's API base.
var ErrOffBase = errors.New("getresponse: path leaves the API base")

// Forward sends req with the Bearer token (and X-Domain for MAX) and returns the
// answer unread, whatever its status: the caller streams its body and closes it.
// A 3xx is returned as it is, never followed. No answer at all returns a
// *NetworkError.
func (c *Client) Forward(ctx context.Context, app App, accessToken string, req ForwardRequest) (*http.Response, error) {
	base, err := url.Parse(app.apiBase())
	if err != nil || base.Host == "" {
		return nil, &NetworkError{Method: req.Method, Path: req.Path, Err: errors.New("invalid API URL")}
	}
	u, err := url.Parse(app.apiBase() + req.Path)
	// Belt and braces: whatever the path, the call stays under the API base.
	if err != nil || leavesBase(req.Path) || u.Scheme != base.Scheme || u.Host != base.Host ||
		!strings.HasPrefix(u.EscapedPath(), base.EscapedPath()+"/") {
		return nil, ErrOffBase
	}
	u.RawQuery = req.RawQuery
	body := req.Body
	if body == nil {
		body = http.NoBody
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return nil, &NetworkError{Method: req.Method, Path: req.Path, Err: errors.New("invalid request")}
	}
	hr.ContentLength = req.ContentLength
	if req.Body == nil {
		hr.ContentLength = 0
	}
	if req.GetBody != nil {
		hr.GetBody = req.GetBody
	}
	for k, v := range req.Header {
		hr.Header[k] = append([]string(nil), v...)
	}
	hr.Header.Set("Authorization", "Bearer "+accessToken)
	hr.Header.Set("User-Agent", c.userAgent())
	app.accountHeaders(hr.Header, true)
	start := time.Now()
	res, err := c.hc.Do(hr)
	c.observe(CallProxy, res, start)
	if err != nil {
		return nil, &NetworkError{Method: req.Method, Path: req.Path, Err: stripURL(err)}
	}
	return res, nil
}

// leavesBase reports whether a path could step out of the directory it is joined
// to: it must start with "/" and have no empty (but a trailing), "." or ".."
// segment, and no backslash, "%", "?" or "#".
func leavesBase(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, `\%?#`) {
		return true
	}
	segments := strings.Split(p[1:], "/")
	for i, s := range segments {
		if (s == "" && i != len(segments)-1) || s == "." || s == ".." {
			return true
		}
	}
	return false
}

// IsTokenExpired reports whether an answer is GetResponse's "access token expired
// or invalid" (code 1014, with HTTP 401 or, on old accounts, 403), given its status
// and body.
func IsTokenExpired(status int, body []byte) bool {
	if status != http.StatusUnauthorized && status != http.StatusForbidden {
		return false
	}
	env, ok := parseEnvelope(body)
	return ok && env.Code == CodeAuthFailed
}
