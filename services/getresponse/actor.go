package getresponse

import "errors"

// Actor says who must act before a failed call can succeed. It is the one
// rule grconnect uses to decide what a failure does to a connection: only
// ActorCustomer failures call for a new consent.
type Actor string

// The actors.
const (
	// ActorCustomer: only the customer can fix it, by authorizing again (a
	// dead grant, no refresh token stored) or by giving their GetResponse
	// user the rights the call needs.
	ActorCustomer Actor = "customer"
	// ActorOperator: grconnect's operator must fix the app's configuration
	// (client ID or secret, API URL, MAX domain) or contact GetResponse (API
	// access permanently blocked). No customer reconnect helps, and every
	// connection of the app fails alike.
	ActorOperator Actor = "operator"
	// ActorWait: nobody; GetResponse or the network fails for now (5xx,
	// timeouts, rate limits, temporary and IP blocks, maintenance, a
	// redirect). Retry later, after RetryAfter when it is set.
	ActorWait Actor = "wait"
	// ActorCaller: the API call itself was refused (validation, not found,
	// conflict); the connection is fine. Only API answers have this actor.
	ActorCaller Actor = "caller"
)

// ActorOf returns who must act on an error of this package: the Actor of a
// *TokenError or *APIError, ActorWait for a *NetworkError or *DecodeError,
// and "" for nil or any other error.
func ActorOf(err error) Actor {
	var te *TokenError
	if errors.As(err, &te) {
		return te.Actor()
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Actor()
	}
	var ne *NetworkError
	var de *DecodeError
	if errors.As(err, &ne) || errors.As(err, &de) {
		return ActorWait
	}
	return ""
}

// ErrorKind classifies a token-endpoint failure precisely; its Actor says
// who must act on it.
type ErrorKind string

// The kinds of token errors, grouped by actor.
const (
	// KindInvalidGrant (customer): the authorization code or refresh token
	// is rejected (invalid_grant, as an RFC 6749 body or in a GetResponse
	// envelope).
	KindInvalidGrant ErrorKind = "invalid_grant"
	// KindNoRefreshToken (customer): there is no refresh token to refresh with.
	KindNoRefreshToken ErrorKind = "no_refresh_token"

	// KindInvalidClient (operator): the client ID or secret is rejected
	// (invalid_client, or a bare 401 as RFC 6749 §5.2 answers it).
	KindInvalidClient ErrorKind = "invalid_client"
	// KindUnauthorizedClient (operator): the client authenticated but may not
	// use this grant type (unauthorized_client).
	KindUnauthorizedClient ErrorKind = "unauthorized_client"
	// KindMisconfigured (operator): GetResponse refuses the request's setup:
	// code 1014 on the token endpoint (a missing or wrong X-Domain), 1021
	// (invalid headers) or 1024 (domain not found).
	KindMisconfigured ErrorKind = "misconfigured"
	// KindBlocked (operator): API access is permanently blocked (1017); the
	// operator must contact GetResponse.
	KindBlocked ErrorKind = "blocked"
	// KindInvalidRequest (operator): any other 4xx (invalid_request,
	// unsupported_grant_type, a 404 from a wrong API URL, …) or an app with
	// no API URL or client ID. Retrying the same request cannot help and the
	// customer cannot fix it: the request is built from the app's settings,
	// so it is the operator's to check (or to report as a grconnect bug).
	KindInvalidRequest ErrorKind = "invalid_request"

	// KindRateLimited (wait): HTTP 429 or code 1015; retry after RetryAfter.
	KindRateLimited ErrorKind = "rate_limited"
	// KindRefused (wait): GetResponse refuses calls for a while: 1016
	// (temporary block), 1018 (IP address blocked) or 1019 (maintenance).
	KindRefused ErrorKind = "refused"
	// KindTransient (wait): 5xx, timeouts, network errors, unreadable answers.
	KindTransient ErrorKind = "transient"
	// KindRedirected (wait): the token endpoint answered 3xx; the redirect
	// was not followed, so no credential went to another address.
	KindRedirected ErrorKind = "redirected"
)

// Actor returns who must act on a failure of kind k ("" for an unknown kind).
func (k ErrorKind) Actor() Actor {
	switch k {
	case KindInvalidGrant, KindNoRefreshToken:
		return ActorCustomer
	case KindInvalidClient, KindUnauthorizedClient, KindMisconfigured, KindBlocked, KindInvalidRequest:
		return ActorOperator
	case KindRateLimited, KindRefused, KindTransient, KindRedirected:
		return ActorWait
	}
	return ""
}
