package getresponse

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors; match them with errors.Is on any error of this package.
var (
	// ErrNeedsReconnect means the stored grant is dead (invalid_grant,
	// invalid_client, 1014/1017/1018 from the token endpoint): only a new
	// authorization by a human helps.
	ErrNeedsReconnect = errors.New("getresponse: connection needs to be re-authorized")
	// ErrTransient means the call may succeed if retried later: 5xx, 429,
	// timeouts, network errors, unreadable answers.
	ErrTransient = errors.New("getresponse: transient failure")
	// ErrRateLimited means GetResponse answered 429 (code 1015); it is also
	// transient.
	ErrRateLimited = errors.New("getresponse: rate limited")
	// ErrTokenExpired means an API call was refused with code 1014: the access
	// token is expired, unknown or missing. Refresh at most once, then report.
	ErrTokenExpired = errors.New("getresponse: access token expired or invalid")
	// ErrBlocked means API access is blocked (1017) or the caller's IP is
	// blocked (1018); it needs a human.
	ErrBlocked = errors.New("getresponse: API access blocked")
)

// ErrorKind classifies a token-endpoint failure by what the caller should do.
type ErrorKind string

// The kinds of token errors.
const (
	// KindNeedsReconnect: the grant or the client is rejected; reconnect.
	KindNeedsReconnect ErrorKind = "needs_reconnect"
	// KindTransient: retry later (5xx, timeouts, network, malformed answers).
	KindTransient ErrorKind = "transient"
	// KindRateLimited: HTTP 429; retry after TokenError.RetryAfter.
	KindRateLimited ErrorKind = "rate_limited"
	// KindInvalidRequest: any other 4xx; retrying the same request won't help.
	KindInvalidRequest ErrorKind = "invalid_request"
)

// TokenError is the error of Exchange and Refresh.
type TokenError struct {
	// Op is "exchange" or "refresh".
	Op string
	// Kind says what the caller should do about it.
	Kind ErrorKind
	// HTTPStatus is the token endpoint's status, 0 when no answer came.
	HTTPStatus int
	// Code is the RFC 6749 error ("invalid_grant", "invalid_client", …) or
	// the GetResponse envelope code as a string ("1014"); "" for network errors.
	Code string
	// Description is human text from the server or about the failure; it
	// never contains tokens, codes or the client secret.
	Description string
	// RetryAfter is the wait asked for by Retry-After or X-RateLimit-Reset.
	RetryAfter time.Duration
	// Err is the underlying network or decoding error, if any.
	Err error
}

// Error describes the failure without any credential.
func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString("getresponse: token")
	if e.Op != "" {
		b.WriteString(" " + e.Op)
	}
	b.WriteString(": " + string(e.Kind))
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.HTTPStatus)
	}
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *TokenError) Unwrap() error { return e.Err }

// Is matches ErrNeedsReconnect, ErrTransient, ErrRateLimited and ErrBlocked
// according to Kind and Code.
func (e *TokenError) Is(target error) bool {
	switch target {
	case ErrNeedsReconnect:
		return e.Kind == KindNeedsReconnect
	case ErrTransient:
		return e.Kind == KindTransient || e.Kind == KindRateLimited
	case ErrRateLimited:
		return e.Kind == KindRateLimited
	case ErrBlocked:
		return e.Code == "1017" || e.Code == "1018"
	}
	return false
}

// GetResponse error codes the client reacts to.
const (
	CodeInternal      = 1    // 500 internal error
	CodeValidation    = 1000 // 400 validation error
	CodeConflict      = 1008 // 409 conflict
	CodeNotFound      = 1013 // 404 resource not found
	CodeAuthFailed    = 1014 // 401 (or 403) expired, invalid or missing token
	CodeQuotaReached  = 1015 // 429 rate limit
	CodeAPIBlocked    = 1017 // API permanently blocked
	CodeIPBlocked     = 1018 // IP blocked
	maxErrorTextBytes = 300
)

// APIError is a non-2xx answer of the API, decoded from GetResponse's error
// envelope when there is one.
type APIError struct {
	HTTPStatus      int
	Code            int // 0 when the body was not an envelope
	CodeDescription string
	Message         string
	MoreInfo        string
	UUID            string
	// Context is the envelope's raw context: an object, [] or an array of
	// strings. It may echo the sent token and is never part of Error().
	Context    json.RawMessage
	RateLimit  RateLimit
	RetryAfter time.Duration
}

// Error describes the answer without its context (which can echo the token).
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "getresponse: HTTP %d", e.HTTPStatus)
	if e.Code != 0 {
		fmt.Fprintf(&b, " code %d", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	} else if e.CodeDescription != "" {
		b.WriteString(": " + e.CodeDescription)
	}
	if e.UUID != "" {
		b.WriteString(" (uuid " + e.UUID + ")")
	}
	return b.String()
}

// Is matches ErrTokenExpired (code 1014), ErrRateLimited (429 or 1015),
// ErrBlocked (1017, 1018) and ErrTransient (5xx, 429).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrTokenExpired:
		return e.Code == CodeAuthFailed
	case ErrRateLimited:
		return e.rateLimited()
	case ErrBlocked:
		return e.Code == CodeAPIBlocked || e.Code == CodeIPBlocked
	case ErrTransient:
		return e.HTTPStatus >= 500 || e.rateLimited()
	}
	return false
}

func (e *APIError) rateLimited() bool {
	return e.HTTPStatus == http.StatusTooManyRequests || e.Code == CodeQuotaReached
}

// NetworkError is an API call that got no usable HTTP answer (connection
// failure, timeout, cancelled context). It matches ErrTransient.
type NetworkError struct {
	Method, Path string
	Err          error
}

// Error names the call and the cause.
func (e *NetworkError) Error() string {
	return fmt.Sprintf("getresponse: %s %s: %v", e.Method, e.Path, e.Err)
}

// Unwrap returns the cause, e.g. context.DeadlineExceeded.
func (e *NetworkError) Unwrap() error { return e.Err }

// Is matches ErrTransient.
func (e *NetworkError) Is(target error) bool { return target == ErrTransient }

// DecodeError is a 2xx API answer whose body could not be decoded. It
// matches ErrTransient: a truncated or garbled answer is worth a retry.
type DecodeError struct {
	Path string
	Err  error
}

// Error names the call and the cause, without the body.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("getresponse: decode %s: %v", e.Path, e.Err)
}

// Unwrap returns the JSON error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Is matches ErrTransient.
func (e *DecodeError) Is(target error) bool { return target == ErrTransient }

// envelope is GetResponse's error body.
type envelope struct {
	HTTPStatus      int             `json:"httpStatus"`
	Code            int             `json:"code"`
	CodeDescription string          `json:"codeDescription"`
	Message         string          `json:"message"`
	MoreInfo        string          `json:"moreInfo"`
	Context         json.RawMessage `json:"context"`
	UUID            string          `json:"uuid"`
}

// parseEnvelope decodes body as an error envelope; ok is false when it is not
// one (not JSON, or neither code nor message).
func parseEnvelope(body []byte) (envelope, bool) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return envelope{}, false
	}
	if env.Code == 0 && env.Message == "" && env.CodeDescription == "" {
		return envelope{}, false
	}
	return env, true
}

// timeToReset reads context.timeToReset ("100 seconds") of a 1015 answer.
func (env envelope) timeToReset() (time.Duration, bool) {
	var ctx struct {
		TimeToReset json.RawMessage `json:"timeToReset"`
	}
	if len(env.Context) == 0 || env.Context[0] != '{' || json.Unmarshal(env.Context, &ctx) != nil {
		return 0, false
	}
	return parseDurationText(unquote(ctx.TimeToReset))
}

func unquote(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// truncate shortens server text so an error message stays one readable line.
func truncate(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxErrorTextBytes {
		return s
	}
	cut := maxErrorTextBytes
	for cut > 0 && s[cut]&0xC0 == 0x80 { // don't split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}
