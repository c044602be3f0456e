package getresponsetest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
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
	// X-RateLimit-Reset: 100 seconds.
	TokenRateLimited
)

// FailToken makes the next n token calls fail with mode (n < 0: until
// cleared; n == 0 or TokenOK: clear). It replaces any earlier token switch.
func (f *Fake) FailToken(mode TokenFailure, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenFail = failure[TokenFailure]{mode: mode, n: n}
}

// ExpireAccessTokens makes every access token issued so far expired.
func (f *Fake) ExpireAccessTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.access {
		t.expired = true
	}
}

// RevokeRefreshTokens kills every refresh token issued so far: refreshing
// with one answers invalid_grant.
func (f *Fake) RevokeRefreshTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.refresh)
}

// IssueTokens creates a token pair for clientID and accountID ("" = the
// first account) without going through consent and exchange; it counts
// nothing.
func (f *Fake) IssueTokens(clientID, accountID string) (access, refresh string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.clients[clientID]; !ok {
		return "", "", ErrUnknownClient
	}
	if accountID == "" && len(f.accounts) > 0 {
		accountID = f.accounts[0].AccountID
	}
	if _, ok := f.accountLocked(accountID); !ok {
		return "", "", ErrUnknownAccount
	}
	return f.newAccessLocked(clientID, accountID), f.newRefreshLocked(clientID, accountID), nil
}

// tokenAnswer is the token endpoint's success body.
type tokenAnswer struct {
	AccessToken  string  `json:"access_token"`
	ExpiresIn    int64   `json:"expires_in"`
	TokenType    string  `json:"token_type"`
	Scope        *string `json:"scope"`
	RefreshToken string  `json:"refresh_token,omitempty"`
}

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

	f.mu.Lock()
	mode, failing := f.tokenFail.take()
	latency := f.tokenLatency
	f.mu.Unlock()
	if !f.wait(r.Context(), latency) {
		return
	}
	if failing {
		f.writeTokenFailure(w, r, mode)
		return
	}
	if !f.domainOK(r) {
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

	f.mu.Lock()
	ans, errCode, errDesc := f.grantLocked(clientID, grant, r.PostForm)
	f.mu.Unlock()
	if errCode != "" {
		writeRFCError(w, http.StatusBadRequest, errCode, errDesc)
		return
	}
	writeTokenJSON(w, http.StatusOK, ans)
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
// RFC 6749 error.
func (f *Fake) grantLocked(clientID, grant string, form url.Values) (ans tokenAnswer, errCode, errDesc string) {
	switch grant {
	case "authorization_code":
		code := form.Get("code")
		c, ok := f.codes[code]
		if !ok || c.clientID != clientID {
			return ans, "invalid_grant", "Authorization code doesn't exist or is invalid for the client"
		}
		delete(f.codes, code) // single use, even when expired
		if f.now().Sub(c.issued) > CodeLifetime {
			return ans, "invalid_grant", "The authorization code has expired"
		}
		if _, ok := f.accountLocked(c.accountID); !ok {
			return ans, "invalid_grant", "The account no longer exists"
		}
		return f.answerLocked(clientID, c.accountID, f.newRefreshLocked(clientID, c.accountID)), "", ""

	case "refresh_token":
		old := form.Get("refresh_token")
		rt, ok := f.refresh[old]
		if !ok || rt.clientID != clientID {
			return ans, "invalid_grant", "Invalid refresh token"
		}
		if _, ok := f.accountLocked(rt.accountID); !ok {
			return ans, "invalid_grant", "The account no longer exists"
		}
		var next string
		switch f.opts.Rotation {
		case RotationNone:
			next = old
		case RotationRotate:
			next = f.newRefreshLocked(clientID, rt.accountID)
		case RotationStrict:
			delete(f.refresh, old)
			next = f.newRefreshLocked(clientID, rt.accountID)
		case RotationOmit:
			next = ""
		}
		return f.answerLocked(clientID, rt.accountID, next), "", ""

	case "client_credentials":
		if len(f.accounts) == 0 {
			return ans, "invalid_grant", "There is no account"
		}
		return f.answerLocked(clientID, f.accounts[0].AccountID, ""), "", ""

	case "":
		return ans, "invalid_request", "The grant type was not specified in the request"
	}
	return ans, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server"
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
	f.refresh[tok] = refreshToken{clientID: clientID, accountID: accountID}
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
	case TokenServerError:
		writeEnvelope(w, http.StatusInternalServerError, 1, "Internal error", "Internal error, please try again later", []string{})
	case TokenUnavailable:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("Service Unavailable\n"))
	case TokenHang:
		f.wait(r.Context(), -1)
		if r.Context().Err() != nil {
			return
		}
		writeEnvelope(w, http.StatusServiceUnavailable, 1, "Internal error", "Server is shutting down", []string{})
	case TokenMalformedJSON:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"access_token":"` + randomHex(20) + `","expires_in":36`))
	case TokenRateLimited:
		h := w.Header()
		h.Set("Retry-After", "1")
		h.Set("X-RateLimit-Limit", strconv.Itoa(RateLimitCalls))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", "100 seconds")
		writeQuotaEnvelope(w)
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
