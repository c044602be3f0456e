package getresponsetest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// TokenFailure is a failure the token endpoint can be switched to.
type TokenFailure int

// The token failures.
const (
	// TokenOK is no failure; FailToken(TokenOK, …) clears the switch.
	TokenOK TokenFailure = iota
	// TokenInvalidGrantRFC answers 400 {"error":"invalid_grant",…}.
	TokenInvalidGrantRFC
	// TokenInvalidGrantEnvelope answers 400 with a GetResponse envelope whose
	// message is "invalid_grant" (no RFC "error" member).
	TokenInvalidGrantEnvelope
	// TokenInvalidClient answers 401 {"error":"invalid_client",…}.
	TokenInvalidClient
	// TokenServerError answers 500 with envelope code 1.
	TokenServerError
	// TokenUnavailable answers 503 with a plain-text body, as a proxy would.
	TokenUnavailable
	// TokenHang never answers: it blocks until the request ends or the Fake closes.
	TokenHang
	// TokenMalformedJSON answers 200 with truncated JSON.
	TokenMalformedJSON
	// TokenRateLimited answers 429, envelope code 1015, Retry-After: 1 and
	// X-RateLimit-Reset: 100 seconds, X-RateLimit-Remaining: 0 (the two
	// windows' headers mixed).
	TokenRateLimited
	// TokenUnauthorizedClient answers 400 {"error":"unauthorized_client",…}.
	TokenUnauthorizedClient
	// TokenXDomain answers 401, code 1014, context {"authenticationType":"x-domain"}.
	TokenXDomain
	// TokenTemporarilyBlocked answers 403, code 1016.
	TokenTemporarilyBlocked
	// TokenAPIBlocked answers 403, code 1017 (API access permanently blocked).
	TokenAPIBlocked
	// TokenIPBlocked answers 403, code 1018 (IP address blocked).
	TokenIPBlocked
	// TokenMaintenance answers 403, code 1019.
	TokenMaintenance
	// TokenInvalidHeaders answers 400, code 1021.
	TokenInvalidHeaders
	// TokenDomainNotFound answers 404, code 1024.
	TokenDomainNotFound
	// TokenRateLimitedPerSecond answers a per-second 429 as reported live:
	// code 1015, Retry-After: 1, X-RateLimit-Limit: 80,
	// X-RateLimit-Remaining: 0, X-RateLimit-Reset: 1 seconds.
	TokenRateLimitedPerSecond
	// TokenRateLimitedWindow answers the 10-minute window's 429: code 1015,
	// no Retry-After, X-RateLimit-Limit: 30000, X-RateLimit-Remaining: 0,
	// X-RateLimit-Reset: 100 seconds, context.timeToReset "100 seconds".
	TokenRateLimitedWindow
	// TokenRedirect answers 307 Temporary Redirect to <fake>/moved/v3/token,
	// which counts EndpointRedirectTarget if anything follows it.
	TokenRedirect
	// TokenSlow answers normally after Options.SlowDelay (or when the
	// request ends or the Fake closes, without an answer).
	TokenSlow
)

// GrantRefusal is how the token endpoint refuses grant_type=client_credentials
// while answering every other grant as usual: an answer about the grant, not
// about the client's credentials (which are checked first).
type GrantRefusal int

// The client_credentials refusals.
const (
	// GrantAllowed answers client_credentials with a token (the default).
	GrantAllowed GrantRefusal = iota
	// GrantUnsupported answers 400 {"error":"unsupported_grant_type",…}.
	GrantUnsupported
	// GrantUnauthorized answers 400 {"error":"unauthorized_client",…}: the
	// client authenticated but may not use this grant.
	GrantUnauthorized
)

// RefuseClientCredentials makes grant_type=client_credentials answer refusal
// for every client whose credentials are right (a wrong secret still gets
// invalid_client); GrantAllowed clears it. Refreshes and code exchanges are
// not affected.
func (f *Fake) RefuseClientCredentials(refusal GrantRefusal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ccRefusal = refusal
}

// FailToken makes the next n token calls fail with mode (n < 0: until
// cleared; n == 0 or TokenOK: clear). It replaces any earlier token switch.
func (f *Fake) FailToken(mode TokenFailure, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenFail = failure[TokenFailure]{mode: mode, n: n}
}

type authCode struct {
	clientID, accountID string
	issued              time.Time
	// rejectRefresh makes the refresh token issued for the code fail at its
	// first refresh (the consent outcome OutcomeApproveRejectRefresh).
	rejectRefresh bool
}

type accessToken struct {
	clientID, accountID string
	expiry              time.Time
	expired             bool
}

type refreshToken struct {
	clientID, accountID string
	// retired is set when the token was rotated away; it works until
	// graceUntil (never under RotationStrict).
	retired    bool
	graceUntil time.Time
	// rejectNext makes the next refresh with the token answer invalid_grant
	// and forget it.
	rejectNext bool
}

// ExpireAccessTokens makes every access token issued so far expired.
func (f *Fake) ExpireAccessTokens() {
	f.mu.Lock()
	for _, t := range f.access {
		t.expired = true
	}
	f.mu.Unlock()
	f.changed()
}

// RevokeRefreshTokens kills every refresh token issued so far: refreshing
// with one answers invalid_grant.
func (f *Fake) RevokeRefreshTokens() {
	f.mu.Lock()
	clear(f.refresh)
	f.mu.Unlock()
	f.changed()
}

// RejectNextRefresh makes the next refresh with refreshToken answer
// invalid_grant, after which the token is gone; it reports whether the
// token was known.
func (f *Fake) RejectNextRefresh(refreshToken string) bool {
	f.mu.Lock()
	rt, ok := f.refresh[refreshToken]
	if ok {
		rt.rejectNext = true
	}
	f.mu.Unlock()
	if ok {
		f.changed()
	}
	return ok
}

// IssueTokens creates a token pair for clientID and accountID ("" = the
// first account) without going through consent and exchange; it counts
// nothing.
func (f *Fake) IssueTokens(clientID, accountID string) (access, refresh string, err error) {
	f.mu.Lock()
	if _, ok := f.clients[clientID]; !ok {
		f.mu.Unlock()
		return "", "", ErrUnknownClient
	}
	if accountID == "" && len(f.accounts) > 0 {
		accountID = f.accounts[0].AccountID
	}
	if _, ok := f.accountLocked(accountID); !ok {
		f.mu.Unlock()
		return "", "", ErrUnknownAccount
	}
	access, refresh = f.newAccessLocked(clientID, accountID), f.newRefreshLocked(clientID, accountID)
	f.mu.Unlock()
	f.changed()
	return access, refresh, nil
}

// tokenAnswer is the token endpoint's success body.
type tokenAnswer struct {
	AccessToken  string  `json:"access_token"`
	ExpiresIn    int64   `json:"expires_in"`
	TokenType    string  `json:"token_type"`
	Scope        *string `json:"scope"`
	RefreshToken string  `json:"refresh_token,omitempty"`
}

// serveToken answers /v3/token. In order: the counters; the account's
// parallel slot; latency; failure switches; the account's outage; X-Domain;
// client authentication; the account's rate limits (refreshes only); the grant.
func (f *Fake) serveToken(w http.ResponseWriter, r *http.Request) {
	f.inc(EndpointToken)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeRFCError(w, http.StatusMethodNotAllowed, "invalid_request", "The token endpoint accepts POST only")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	formErr := r.ParseForm()
	grant := r.PostForm.Get("grant_type")
	switch grant {
	case "authorization_code":
		f.inc(EndpointTokenCode)
	case "refresh_token":
		f.inc(EndpointTokenRefresh)
	case "client_credentials":
		f.inc(EndpointTokenClientCredentials)
	}

	sentID := basicUser(r)
	f.mu.Lock()
	accountID := f.grantAccountLocked(sentID, grant, r.PostForm)
	f.countDomainLocked(r, sentID, accountID)
	f.mu.Unlock()
	if accountID != "" {
		if !f.enter(w, accountID) {
			return
		}
		defer f.leave(accountID)
	}

	f.mu.Lock()
	mode, failing := f.tokenFailFor[sentID].take()
	if !failing {
		mode, failing = f.tokenFail.take()
	}
	latency := f.tokenLatency
	f.mu.Unlock()
	if !f.wait(r.Context(), latency) {
		return
	}
	if failing && mode == TokenSlow {
		if !f.wait(r.Context(), f.opts.SlowDelay) {
			return
		}
		failing = false
	}
	if failing {
		f.writeTokenFailure(w, r, mode)
		return
	}
	// An armed outage (a consent outcome) starts with the first refresh.
	if !f.checkOutage(w, accountID, grant == "refresh_token") {
		return
	}
	f.mu.Lock()
	domainOK := f.domainOKLocked(r, accountID)
	f.mu.Unlock()
	if !domainOK {
		f.stat(StatRefusedDomain)
		writeDomainError(w)
		return
	}
	if formErr != nil {
		writeRFCError(w, http.StatusBadRequest, "invalid_request", "Malformed request body")
		return
	}
	clientID, ok := f.authenticateClient(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="GetResponse"`)
		writeRFCError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	if grant == "refresh_token" && accountID != "" && !f.consume(w, accountID) {
		return
	}
	if grant == "client_credentials" {
		f.mu.Lock()
		refusal := f.ccRefusal
		f.mu.Unlock()
		switch refusal {
		case GrantUnsupported:
			writeRFCError(w, http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server")
			return
		case GrantUnauthorized:
			writeRFCError(w, http.StatusBadRequest, "unauthorized_client", "The client is not authorized to use this grant type")
			return
		}
	}

	f.mu.Lock()
	ans, errCode, errDesc, changed := f.grantLocked(clientID, grant, r.PostForm)
	f.mu.Unlock()
	if changed {
		f.changed()
	}
	if errCode != "" {
		writeRFCError(w, http.StatusBadRequest, errCode, errDesc)
		return
	}
	writeTokenJSON(w, http.StatusOK, ans)
}

// basicUser is the URL-decoded Basic user of r, unverified; "" if none.
func basicUser(r *http.Request) string {
	user, _, ok := r.BasicAuth()
	if !ok {
		return ""
	}
	id, err := url.QueryUnescape(user)
	if err != nil {
		return ""
	}
	return id
}

// grantAccountLocked returns the account a token call is for, when the
// fake can tell before checking anything: the account of the code or refresh
// token (when issued to clientID), or the owner of clientID for
// client_credentials; "" otherwise. f.mu must be held.
func (f *Fake) grantAccountLocked(clientID, grant string, form url.Values) string {
	switch grant {
	case "authorization_code":
		if c, ok := f.codes[form.Get("code")]; ok && c.clientID == clientID {
			return c.accountID
		}
	case "refresh_token":
		if rt, ok := f.refresh[form.Get("refresh_token")]; ok && rt.clientID == clientID {
			return rt.accountID
		}
	case "client_credentials":
		if c, ok := f.clients[clientID]; ok {
			if id, ok := f.ownerLocked(c); ok {
				return id
			}
		}
	}
	return ""
}

// authenticateClient checks HTTP Basic credentials, URL-decoding both parts
// as RFC 6749 §2.3.1 (and x/oauth2) encode them.
func (f *Fake) authenticateClient(r *http.Request) (string, bool) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", false
	}
	id, err1 := url.QueryUnescape(user)
	secret, err2 := url.QueryUnescape(pass)
	if err1 != nil || err2 != nil {
		return "", false
	}
	f.mu.Lock()
	c, known := f.clients[id]
	f.mu.Unlock()
	if !known || c.secret != secret {
		return "", false
	}
	return id, true
}

// grantLocked runs one grant; f.mu must be held. A non-empty errCode is an
// RFC 6749 error; changed reports a change of the saved state.
func (f *Fake) grantLocked(clientID, grant string, form url.Values) (ans tokenAnswer, errCode, errDesc string, changed bool) {
	now := f.now()
	switch grant {
	case "authorization_code":
		code := form.Get("code")
		c, ok := f.codes[code]
		if !ok || c.clientID != clientID {
			return ans, "invalid_grant", "Authorization code doesn't exist or is invalid for the client", false
		}
		delete(f.codes, code) // single use, even when expired
		if now.Sub(c.issued) > CodeLifetime {
			return ans, "invalid_grant", "The authorization code has expired", true
		}
		if _, ok := f.accountLocked(c.accountID); !ok {
			return ans, "invalid_grant", "The account no longer exists", true
		}
		rt := f.newRefreshLocked(clientID, c.accountID)
		f.refresh[rt].rejectNext = c.rejectRefresh
		return f.answerLocked(clientID, c.accountID, rt), "", "", true

	case "refresh_token":
		old := form.Get("refresh_token")
		rt, ok := f.refresh[old]
		switch {
		case !ok || rt.clientID != clientID:
			return ans, "invalid_grant", "Invalid refresh token", false
		case rt.retired && !now.Before(rt.graceUntil):
			f.stat(StatDeadRefreshToken)
			return ans, "invalid_grant", "Invalid refresh token", false
		case rt.rejectNext:
			delete(f.refresh, old)
			return ans, "invalid_grant", "The refresh token was revoked", true
		}
		if _, ok := f.accountLocked(rt.accountID); !ok {
			return ans, "invalid_grant", "The account no longer exists", false
		}
		if rt.retired {
			f.stat(StatGraceRefresh)
			return f.answerLocked(clientID, rt.accountID, f.newRefreshLocked(clientID, rt.accountID)), "", "", true
		}
		var next string
		switch f.opts.Rotation {
		case RotationNone:
			next = old
		case RotationRotate:
			next = f.newRefreshLocked(clientID, rt.accountID)
		case RotationStrict:
			rt.retired, rt.graceUntil = true, now
			next = f.newRefreshLocked(clientID, rt.accountID)
		case RotationGrace:
			rt.retired, rt.graceUntil = true, now.Add(f.opts.RotationGrace)
			next = f.newRefreshLocked(clientID, rt.accountID)
		case RotationOmit:
			next = ""
		}
		return f.answerLocked(clientID, rt.accountID, next), "", "", true

	case "client_credentials":
		owner, ok := f.ownerLocked(f.clients[clientID])
		if !ok {
			return ans, "invalid_grant", "There is no account", false
		}
		return f.answerLocked(clientID, owner, ""), "", "", true

	case "":
		return ans, "invalid_request", "The grant type was not specified in the request", false
	}
	return ans, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server", false
}

func (f *Fake) answerLocked(clientID, accountID, refresh string) tokenAnswer {
	return tokenAnswer{
		AccessToken:  f.newAccessLocked(clientID, accountID),
		ExpiresIn:    int64(f.opts.ExpiresIn.Seconds()),
		TokenType:    "Bearer",
		RefreshToken: refresh,
	}
}

func (f *Fake) newAccessLocked(clientID, accountID string) string {
	tok := randomHex(20)
	f.access[tok] = &accessToken{clientID: clientID, accountID: accountID, expiry: f.now().Add(f.opts.ExpiresIn)}
	return tok
}

func (f *Fake) newRefreshLocked(clientID, accountID string) string {
	tok := randomHex(20)
	f.refresh[tok] = &refreshToken{clientID: clientID, accountID: accountID}
	return tok
}

func (f *Fake) writeTokenFailure(w http.ResponseWriter, r *http.Request, mode TokenFailure) {
	switch mode {
	case TokenInvalidGrantRFC:
		writeRFCError(w, http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
	case TokenInvalidGrantEnvelope:
		writeEnvelope(w, http.StatusBadRequest, 1000,
			"General error of validation process, more details should be in context section",
			"invalid_grant", map[string]string{"errorDescription": "Invalid refresh token"})
	case TokenInvalidClient:
		w.Header().Set("WWW-Authenticate", `Basic realm="GetResponse"`)
		writeRFCError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
	case TokenUnauthorizedClient:
		writeRFCError(w, http.StatusBadRequest, "unauthorized_client", "The client is not authorized to use this grant type")
	case TokenXDomain:
		writeDomainError(w)
	case TokenTemporarilyBlocked:
		writeCodeAnswer(w, 1016)
	case TokenAPIBlocked:
		writeCodeAnswer(w, 1017)
	case TokenIPBlocked:
		writeCodeAnswer(w, 1018)
	case TokenMaintenance:
		writeCodeAnswer(w, 1019)
	case TokenInvalidHeaders:
		writeCodeAnswer(w, 1021)
	case TokenDomainNotFound:
		writeCodeAnswer(w, 1024)
	case TokenServerError:
		writeEnvelope(w, http.StatusInternalServerError, 1, "Internal error", "Internal error, please try again later", []string{})
	case TokenUnavailable:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("Service Unavailable\n"))
	case TokenHang:
		f.hang(w, r)
	case TokenMalformedJSON:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"access_token":"` + randomHex(20) + `","expires_in":36`))
	case TokenRateLimited:
		writeRateLimited(w, rateMixed)
	case TokenRateLimitedPerSecond:
		writeRateLimited(w, ratePerSecond)
	case TokenRateLimitedWindow:
		writeRateLimited(w, rateWindow)
	case TokenRedirect:
		f.writeRedirect(w, r, "/v3/token")
	}
}

func writeTokenJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	writeJSON(w, status, v)
}

func writeRFCError(w http.ResponseWriter, status int, code, desc string) {
	writeTokenJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "getresponsetest: encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
