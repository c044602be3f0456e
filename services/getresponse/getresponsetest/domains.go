package getresponsetest

import (
	"maps"
	"net/http"
	"strings"
)

// DomainCall names the token and API calls made for one account with one
// X-Domain header, as counted by DomainCalls.
type DomainCall struct {
	// ClientID is the client the call was for: the Basic user of a token
	// call, the client the access token was issued to for an API call.
	ClientID string
	// AccountID is the account the code, token or client belongs to.
	AccountID string
	// XDomain is the X-Domain header as sent, trimmed and lowercased; "" when
	// none was sent.
	XDomain string
}

// DomainCalls returns how many token and API calls reached the fake for
// each client, account and X-Domain sent. A call is counted when the fake
// knows its account (a known code, refresh token, access token or client),
// whatever the answer, so a test can assert that every connection's calls
// carried its own domain and no other.
func (f *Fake) DomainCalls() map[DomainCall]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.domainCalls)
}

// normalizeDomain lowercases and trims a domain for comparison.
func normalizeDomain(d string) string {
	return strings.ToLower(strings.TrimSpace(d))
}

// sentDomain is the X-Domain header of r, normalized.
func sentDomain(r *http.Request) string {
	return normalizeDomain(r.Header.Get("X-Domain"))
}

// domainOfLocked returns the MAX domain of an account: its own Domain, else
// Options.MaxDomain ("" for a standard account); f.mu must be held.
func (f *Fake) domainOfLocked(accountID string) string {
	a, _ := f.accountLocked(accountID)
	return f.accountDomain(a)
}

// domainOKLocked checks the X-Domain of r against the account's domain
// (Options.MaxDomain when the account is unknown): MAX accounts need their
// own domain, case-insensitively; standard accounts ignore the header.
// f.mu must be held.
func (f *Fake) domainOKLocked(r *http.Request, accountID string) bool {
	want := f.opts.MaxDomain
	if accountID != "" {
		want = f.domainOfLocked(accountID)
	}
	return want == "" || sentDomain(r) == want
}

// countDomainLocked records one call of clientID for accountID with the
// X-Domain of r; f.mu must be held.
func (f *Fake) countDomainLocked(r *http.Request, clientID, accountID string) {
	if accountID == "" {
		return
	}
	f.domainCalls[DomainCall{ClientID: clientID, AccountID: accountID, XDomain: sentDomain(r)}]++
}

func writeDomainError(w http.ResponseWriter) {
	writeEnvelope(w, http.StatusUnauthorized, 1014, descAuth, msgUnauthenticated,
		map[string]string{"authenticationType": "x-domain"})
}
