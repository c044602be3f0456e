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
// The first three split failures by Actor, so that what the engine does
// with a failure never depends on guessing from a status code.
var (
	// ErrGrantRejected means the customer's grant is dead (invalid_grant,
	// or no refresh token stored): only a new consent by the customer helps.
	ErrGrantRejected = errors.New("getresponse: authorization rejected; the customer must connect again")
	// ErrClientRejected means GetResponse refuses the app itself: its client
	// ID or secret, its API URL or MAX domain, or its API access (1017). The
	// operator must fix the app; no customer reconnect helps.
	ErrClientRejected = errors.New("getresponse: app rejected; the operator must check its settings")
	// ErrTransient means the call may succeed if retried later: 5xx, 429,
	// timeouts, network errors, unreadable answers, temporary and IP blocks,
	// maintenance, redirects.
	ErrTransient = errors.New("getresponse: transient failure")
	// ErrRateLimited means GetResponse answered 429 (code 1015); it is also
	// transient.
	ErrRateLimited = errors.New("getresponse: rate limited")
	// ErrTokenExpired means an API call was refused with code 1014: the access
	// token is expired, unknown or missing. Refresh at most once, then report.
	ErrTokenExpired = errors.New("getresponse: access token expired or invalid")
)

// TokenError is the error of Exchange, Refresh and CheckCredentials.
type TokenError struct {
	// Op is "exchange", "refresh" or "check".
	Op string
	// Kind is what went wrong; Kind.Actor() says who must act.
	Kind ErrorKind
	// HTTPStatus is the token endpoint's status, 0 when no answer came.
	HTTPStatus int
	// Code is the RFC 6749 error ("invalid_grant", "invalid_client", …) or
	// the GetResponse envelope code as a string ("1014"); "" for network errors.
	Code string
	// Description is human text from the server or about the failure; it
	// never contains tokens, codes or the client secret.
	Description string
	// RetryAfter is how long GetResponse asked to wait (Retry-After, the
	// rate-limit headers or a 1015's context.timeToReset); 0 when unknown.
	RetryAfter time.Duration
	// RateLimit is what the answer's X-RateLimit-* headers said.
	RateLimit RateLimit
	// Err is the underlying network or decoding error, if any.
	Err error
}

// Actor returns who must act: Kind.Actor().
func (e *TokenError) Actor() Actor { return e.Kind.Actor() }

// Error describes the failure without any credential.
func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString("getresponse: token")
	if e.Op != "" {
		b.WriteString(" " + e.Op)
	}
	b.WriteString(": " + string(e.Kind))
	if a := e.Actor(); a != "" {
		b.WriteString(" [" + string(a) + "]")
	}
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.HTTPStatus)
	}
	if e.Code != "" && e.Code != string(e.Kind) {
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

// Is matches ErrGrantRejected (customer), ErrClientRejected (operator),
// ErrTransient (wait) and ErrRateLimited, according to Kind.
func (e *TokenError) Is(target error) bool {
	switch target {
	case ErrGrantRejected:
		return e.Actor() == ActorCustomer
	case ErrClientRejected:
		return e.Actor() == ActorOperator
	case ErrTransient:
		return e.Actor() == ActorWait
	case ErrRateLimited:
		return e.Kind == KindRateLimited
	}
	return false
}

// GetResponse error codes the client reacts to.
const (
	CodeInternal           = 1    // 500 internal error
	CodeValidation         = 1000 // 400 validation error
	CodeConflict           = 1008 // 409 conflict
	CodeNotFound           = 1013 // 404 resource not found
	CodeAuthFailed         = 1014 // 401 (or 403) expired, invalid or missing token, or a wrong X-Domain
	CodeQuotaReached       = 1015 // 429 rate limit
	CodeTemporaryBlock     = 1016 // 403 API access temporarily blocked
	CodeAPIBlocked         = 1017 // 403 API access permanently blocked
	CodeIPBlocked          = 1018 // 403 the caller's IP address is blocked
	CodeMaintenance        = 1019 // 403 maintenance
	CodeInvalidHeaders     = 1021 // invalid request headers
	CodeMissingPermissions = 1023 // 403 the GetResponse user lacks the rights for the call
	CodeDomainNotFound     = 1024 // the MAX domain (X-Domain) is unknown
	maxErrorTextBytes      = 300
)

// waitCode reports whether a GetResponse code means "refused for now":
// temporary block, IP block, maintenance.
func waitCode(code int) bool {
	return code == CodeTemporaryBlock || code == CodeIPBlocked || code == CodeMaintenance
}

// configCode reports whether a GetResponse code is about the app's
// configuration: invalid headers, unknown domain.
func configCode(code int) bool {
	return code == CodeInvalidHeaders || code == CodeDomainNotFound
}

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
	Context   json.RawMessage
	RateLimit RateLimit
	// RetryAfter is how long to wait before calling again: for a 429 as
	// BackoffAfter reckons it (or the 1015's context.timeToReset), else the
	// Retry-After header; 0 when none applies.
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

// Actor returns who must act on the answer:
//   - ActorWait for 3xx (not followed), 5xx, 429/1015, 1016, 1018 and 1019;
//   - ActorOperator for 1017, 1021, 1024 and a 1014 about X-Domain;
//   - ActorCustomer for 1023 (the customer's GetResponse user lacks rights)
//     and any other 1014 once the one refresh allowed has not helped;
//   - ActorCaller for any other 4xx (validation, not found, conflict, …).
func (e *APIError) Actor() Actor {
	switch {
	case e.rateLimited(), waitCode(e.Code), e.HTTPStatus >= 300 && e.HTTPStatus < 400, e.HTTPStatus >= 500:
		return ActorWait
	case e.Code == CodeAPIBlocked, configCode(e.Code), e.Code == CodeAuthFailed && aboutXDomain(e.Context, e.Message):
		return ActorOperator
	case e.Code == CodeAuthFailed, e.Code == CodeMissingPermissions:
		return ActorCustomer
	case e.HTTPStatus >= 400:
		return ActorCaller
	}
	return ActorWait
}

// Is matches ErrTokenExpired (code 1014), ErrRateLimited (429 or 1015),
// ErrTransient (Actor wait) and ErrClientRejected (Actor operator). An API
// answer never matches ErrGrantRejected: only the token endpoint can say a
// grant is dead.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrTokenExpired:
		return e.Code == CodeAuthFailed
	case ErrRateLimited:
		return e.rateLimited()
	case ErrTransient:
		return e.Actor() == ActorWait
	case ErrClientRejected:
		return e.Actor() == ActorOperator
	}
	return false
}

func (e *APIError) rateLimited() bool {
	return e.HTTPStatus == http.StatusTooManyRequests || e.Code == CodeQuotaReached
}

// aboutXDomain reports whether a 1014 answer blames the X-Domain header:
// context {"authenticationType":"x-domain"} or a message naming X-Domain.
func aboutXDomain(context json.RawMessage, message string) bool {
	var ctx struct {
		AuthenticationType string `json:"authenticationType"`
	}
	if len(context) > 0 && context[0] == '{' && json.Unmarshal(context, &ctx) == nil &&
		strings.EqualFold(ctx.AuthenticationType, "x-domain") {
		return true
	}
	return strings.Contains(strings.ToLower(message), "x-domain")
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
