// Package getresponse is a small client for the GetResponse API v3: the
// OAuth 2.0 authorization-code flow (through golang.org/x/oauth2), token
// refresh, a client-credentials check of an app's ID and secret, and the few
// API calls grconnect makes.
//
// It knows nothing of grconnect's models or handlers. Every failure comes back
// as a typed error ([*TokenError], [*APIError], [*NetworkError],
// [*DecodeError]) that says who must act on it ([ActorOf]: the customer, the
// operator, or nobody but time) and matches the sentinel errors with
// [errors.Is]. No error string ever contains an access token, a refresh token
// or a client secret, and no request of this package follows a redirect.
//
// The package getresponsetest holds a fake GetResponse server for tests and
// demo mode.
package getresponse
