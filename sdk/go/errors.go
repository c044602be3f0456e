package grconnect

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The error codes grconnect's API answers with. The list is open: an *APIError
// carries whatever code the server sent, also one this SDK does not know.
const (
	// The caller's side.
	CodeUnauthorized         = "unauthorized"       // 401: no valid API key
	CodeInsufficientScope    = "insufficient_scope" // 403: the key lacks the call's scope
	CodeNotFound             = "not_found"          // 404: no such connection (or not the key's app)
	CodeInvalidInput         = "invalid_input"      // 400: Fields names each bad field
	CodeInvalidCursor        = "invalid_cursor"     // 400: a cursor this API did not give out
	CodeBadRequest           = "bad_request"        // 400: the body is not the JSON the route takes
	CodeMethodNotAllowed     = "method_not_allowed" // 405
	CodeRequestTooLarge      = "request_entity_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeLinkUsed             = "link_used"    // 409: the connect session already connected an account
	CodeDisconnected         = "disconnected" // 409: the connection's tokens were erased

	// The customer must act: a new consent (Reconnect holds the call that makes the link).
	CodeNeedsReconnect = "needs_reconnect" // 409

	// The operator must act on the app (App names it).
	CodeAppCredentialsRejected = "app_credentials_rejected" // 409
	CodeAppMisconfigured       = "app_misconfigured"        // 409

	// Wait and try again (RetryAfter says how long).
	CodeGetResponseUnavailable    = "getresponse_unavailable" // 503
	CodeGetResponseRefusing       = "getresponse_refusing"    // 503
	CodeRateLimited               = "rate_limited"            // 429
	CodeTooManyConcurrentRequests = "too_many_concurrent_requests"
	CodeRefreshTooSoon            = "refresh_too_soon"    // 429: an explicit refresh right after another
	CodeStorageUnavailable        = "storage_unavailable" // 503: grconnect's database
	CodeInternalError             = "internal_error"      // 500

	// CodeUnexpectedResponse is this SDK's own: an answer without grconnect's error
	// envelope (a proxy's HTML error page, a cut-off body).
	CodeUnexpectedResponse = "unexpected_response"
)

// APIError is an error answer of grconnect's API.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the machine-readable code, one of the Code… constants or a newer one.
	Code string
	// Message says what went wrong, in words for a person.
	Message string
	// RequestID is the request's ID in grconnect's logs (also X-Request-Id).
	RequestID string
	// RetryAfter is how long to wait before trying again (429 and 503), else 0.
	RetryAfter time.Duration
	// Fields names each bad input field (invalid_input).
	Fields map[string]string
	// App names the app that is the cause (app_credentials_rejected,
	// app_misconfigured, getresponse_refusing).
	App *AppRef
	// Reconnect is the ready-made call that makes a reconnect link (needs_reconnect).
	Reconnect *ReconnectHint
	// Body is the answer's body as it came.
	Body []byte
}

// AppRef names an app in an error.
type AppRef struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Health string `json:"health"`
}

// ReconnectHint is the request that makes a reconnect link.
type ReconnectHint struct {
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Body   map[string]string `json:"body"`
}

// Error returns "grconnect: <code> (HTTP <status>): <message> [request <id>]".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("grconnect: ")
	b.WriteString(e.Code)
	b.WriteString(" (HTTP ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	b.WriteString(")")
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" [request ")
		b.WriteString(e.RequestID)
		b.WriteString("]")
	}
	return b.String()
}

// CodeOf returns the code of the *APIError in err's chain, or "" when there is none
// (a transport failure, a cancelled context).
func CodeOf(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// envelope is grconnect's error body: {"error":{"code","message",…}}.
type envelope struct {
	Error *struct {
		Code       string            `json:"code"`
		Message    string            `json:"message"`
		RequestID  string            `json:"request_id"`
		RetryAfter int               `json:"retry_after"`
		Fields     map[string]string `json:"fields"`
		App        *AppRef           `json:"app"`
		Reconnect  *ReconnectHint    `json:"reconnect"`
	} `json:"error"`
}

// parseEnvelope returns the *APIError of a grconnect error body, or nil when the
// body is not one (GetResponse's own answers, passed through by the proxy, never are).
func parseEnvelope(res *response) *APIError {
	var env envelope
	if json.Unmarshal(res.body, &env) != nil || env.Error == nil || env.Error.Code == "" {
		return nil
	}
	e := &APIError{StatusCode: res.status, Code: env.Error.Code, Message: env.Error.Message,
		RequestID: env.Error.RequestID, Fields: env.Error.Fields, App: env.Error.App,
		Reconnect: env.Error.Reconnect, Body: res.body}
	if e.RequestID == "" {
		e.RequestID = res.header.Get("X-Request-Id")
	}
	if env.Error.RetryAfter > 0 {
		e.RetryAfter = time.Duration(env.Error.RetryAfter) * time.Second
	} else if d, ok := retryAfter(res.header, time.Now()); ok {
		e.RetryAfter = d
	}
	return e
}

// errorFrom turns an error answer into an *APIError, also when it has no envelope.
func errorFrom(res *response) *APIError {
	if e := parseEnvelope(res); e != nil {
		return e
	}
	msg := "grconnect answered HTTP " + strconv.Itoa(res.status)
	if t := strings.TrimSpace(http.StatusText(res.status)); t != "" {
		msg += " " + t
	}
	msg += " without its error envelope"
	e := &APIError{StatusCode: res.status, Code: CodeUnexpectedResponse, Message: msg,
		RequestID: res.header.Get("X-Request-Id"), Body: res.body}
	if d, ok := retryAfter(res.header, time.Now()); ok {
		e.RetryAfter = d
	}
	return e
}

// retryAfter reads Retry-After as delta seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}
