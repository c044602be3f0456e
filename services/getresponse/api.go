package getresponse

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxBodyBytes caps how much of an answer is read.
const maxBodyBytes = 8 << 20

// Response is the answer of a raw API call.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	RateLimit  RateLimit
	// Latency is the time from sending the request to reading the whole body.
	Latency time.Duration
}

// Do sends an API request with the Bearer token (and X-Domain for MAX). path
// is relative to app.APIURL, e.g. "/from-fields"; body, if any, is sent as
// JSON. A non-2xx answer (a 3xx included: redirects are never followed)
// returns the *Response and an *APIError; no answer at all returns a
// *NetworkError (which matches ErrTransient).
func (c *Client) Do(ctx context.Context, app App, accessToken, method, path string, query url.Values, body io.Reader) (*Response, error) {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := app.apiBase() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, &NetworkError{Method: method, Path: path, Err: errors.New("invalid request: check the API URL")}
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	app.accountHeaders(req.Header, true)

	start := time.Now()
	res, err := c.hc.Do(req)
	c.observe(CallAPI, res, start)
	if err != nil {
		return nil, &NetworkError{Method: method, Path: path, Err: stripURL(err)}
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBodyBytes))
	res.Body.Close()
	if err != nil {
		return nil, &NetworkError{Method: method, Path: path, Err: stripURL(err)}
	}
	resp := &Response{
		StatusCode: res.StatusCode,
		Header:     res.Header,
		Body:       data,
		RateLimit:  ParseRateLimit(res.Header),
		Latency:    time.Since(start),
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return resp, newAPIError(resp, accessToken)
	}
	return resp, nil
}

// stripURL drops *url.Error's method and URL, which NetworkError already
// names, keeping the cause (timeouts stay detectable with errors.Is).
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// newAPIError decodes the error envelope of a non-2xx answer. A body that is
// not an envelope still yields an APIError, with Code 0 and the status text.
// Server text is scrubbed of the access token; Context is kept raw.
func newAPIError(resp *Response, accessToken string) *APIError {
	e := &APIError{HTTPStatus: resp.StatusCode, RateLimit: resp.RateLimit}
	env, ok := parseEnvelope(resp.Body)
	if ok {
		e.Code = env.Code
		secrets := []string{accessToken}
		e.CodeDescription = truncate(redact(env.CodeDescription, secrets))
		e.Message = truncate(redact(env.Message, secrets))
		e.MoreInfo = redact(env.MoreInfo, secrets)
		e.UUID = truncate(redact(env.UUID, secrets))
		e.Context = env.Context
	} else {
		e.Message = http.StatusText(resp.StatusCode)
		if e.Message == "" {
			e.Message = "unexpected answer"
		}
	}
	var envp *envelope
	if ok {
		envp = &env
	}
	e.RetryAfter = retryAfter(resp.StatusCode, resp.Header, envp, time.Now())
	return e
}

// getJSON does a GET and decodes a 2xx body into v.
func (c *Client) getJSON(ctx context.Context, app App, accessToken, path string, query url.Values, v any) (*Response, error) {
	resp, err := c.Do(ctx, app, accessToken, http.MethodGet, path, query, nil)
	if err != nil {
		return resp, err
	}
	if err := json.Unmarshal(resp.Body, v); err != nil {
		return resp, &DecodeError{Path: path, Err: err}
	}
	return resp, nil
}
