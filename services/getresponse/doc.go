// Package getresponse is a small client for the GetResponse API v3: the
// OAuth 2.0 authorization-code flow (through golang.org/x/oauth2), token
// refresh, and the few API calls grconnect makes.
//
// It knows nothing of grconnect's models or handlers. Every failure comes back
// as a typed error ([*TokenError], [*APIError], [*NetworkError],
// [*DecodeError]) that matches the sentinel errors with [errors.Is], and no
// error string ever contains an access token, a refresh token or a client
// secret.
//
// The package getresponsetest holds a fake GetResponse server for tests and
// demo mode.
package getresponse
