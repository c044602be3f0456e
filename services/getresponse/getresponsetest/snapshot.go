package getresponsetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"
)

// snapshotVersion is the version of the Snapshot format.
const snapshotVersion = 1

// snapshot is the saved state: what a restarted demo needs so that the
// connections it made keep working. Counters, rate-limit usage and the
// failure switches of tests are not part of it.
type snapshot struct {
	Version  int                    `json:"version"`
	Clients  map[string]snapClient  `json:"clients"`
	Accounts []Account              `json:"accounts"`
	Codes    map[string]snapCode    `json:"codes"`
	Access   map[string]snapAccess  `json:"access_tokens"`
	Refresh  map[string]snapRefresh `json:"refresh_tokens"`
	Plans    map[string]snapPlan    `json:"plans,omitempty"`
	// Callbacks are the accounts' callback settings (absent in older snapshots).
	Callbacks map[string]snapCallback `json:"callbacks,omitempty"`
}

type snapCallback struct {
	URL     string          `json:"url"`
	Actions map[string]bool `json:"actions"`
}

type snapClient struct {
	Secret      string `json:"secret"`
	RedirectURL string `json:"redirect_url"`
	Owner       string `json:"owner,omitempty"`
}

type snapCode struct {
	ClientID      string    `json:"client_id"`
	AccountID     string    `json:"account_id"`
	Issued        time.Time `json:"issued"`
	RejectRefresh bool      `json:"reject_refresh,omitempty"`
}

type snapAccess struct {
	ClientID  string    `json:"client_id"`
	AccountID string    `json:"account_id"`
	Expiry    time.Time `json:"expiry"`
	Expired   bool      `json:"expired,omitempty"`
}

type snapRefresh struct {
	ClientID   string    `json:"client_id"`
	AccountID  string    `json:"account_id"`
	Retired    bool      `json:"retired,omitempty"`
	GraceUntil time.Time `json:"grace_until,omitzero"`
	RejectNext bool      `json:"reject_next,omitempty"`
}

type snapPlan struct {
	OutageArmed bool      `json:"outage_armed,omitempty"`
	OutageUntil time.Time `json:"outage_until,omitzero"`
}

// Snapshot returns the Fake's state as JSON: registered clients, accounts,
// pending codes, access and refresh tokens (the fake's own simulated
// tokens), per-account plans (outages, rejected refresh tokens) and callback
// settings. A Fake
// given it by Restore accepts the tokens issued before. Counters, rate-limit
// usage, latencies and failure switches are not saved.
func (f *Fake) Snapshot() ([]byte, error) {
	f.mu.Lock()
	s := snapshot{
		Version:  snapshotVersion,
		Clients:  make(map[string]snapClient, len(f.clients)),
		Accounts: make([]Account, len(f.accounts)),
		Codes:    make(map[string]snapCode, len(f.codes)),
		Access:   make(map[string]snapAccess, len(f.access)),
		Refresh:  make(map[string]snapRefresh, len(f.refresh)),
		Plans:    make(map[string]snapPlan, len(f.plans)),
	}
	for id, c := range f.clients {
		s.Clients[id] = snapClient{Secret: c.secret, RedirectURL: c.redirectURL, Owner: c.owner}
	}
	for i, a := range f.accounts {
		s.Accounts[i] = cloneAccount(a)
	}
	for k, c := range f.codes {
		s.Codes[k] = snapCode{ClientID: c.clientID, AccountID: c.accountID, Issued: c.issued, RejectRefresh: c.rejectRefresh}
	}
	for k, t := range f.access {
		s.Access[k] = snapAccess{ClientID: t.clientID, AccountID: t.accountID, Expiry: t.expiry, Expired: t.expired}
	}
	for k, t := range f.refresh {
		s.Refresh[k] = snapRefresh{ClientID: t.clientID, AccountID: t.accountID, Retired: t.retired, GraceUntil: t.graceUntil, RejectNext: t.rejectNext}
	}
	for id, p := range f.plans {
		if p.outageArmed || !p.outageUntil.IsZero() {
			s.Plans[id] = snapPlan{OutageArmed: p.outageArmed, OutageUntil: p.outageUntil}
		}
	}
	if len(f.callbacks) > 0 {
		s.Callbacks = make(map[string]snapCallback, len(f.callbacks))
		for id, c := range f.callbacks {
			s.Callbacks[id] = snapCallback{URL: c.URL, Actions: maps.Clone(c.Actions)}
		}
	}
	f.mu.Unlock()
	return json.Marshal(s)
}

// Restore replaces the Fake's state with one saved by Snapshot (of this or
// another Fake). Counters, usage and switches stay as they are; OnChange is
// not called. On an error the state is unchanged.
func (f *Fake) Restore(data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("getresponsetest: restore: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("getresponsetest: restore: snapshot version %d, want %d", s.Version, snapshotVersion)
	}
	seen := map[string]bool{}
	for _, a := range s.Accounts {
		if a.AccountID == "" || seen[a.AccountID] {
			return errors.New("getresponsetest: restore: an account has no or a duplicate AccountID")
		}
		seen[a.AccountID] = true
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.resetStateLocked()
	for id, c := range s.Clients {
		f.clients[id] = &client{secret: c.Secret, redirectURL: c.RedirectURL, owner: c.Owner}
	}
	for _, a := range s.Accounts {
		a = cloneAccount(a)
		a.Domain = normalizeDomain(a.Domain)
		f.accounts = append(f.accounts, a)
	}
	for k, c := range s.Codes {
		f.codes[k] = &authCode{clientID: c.ClientID, accountID: c.AccountID, issued: c.Issued, rejectRefresh: c.RejectRefresh}
	}
	for k, t := range s.Access {
		f.access[k] = &accessToken{clientID: t.ClientID, accountID: t.AccountID, expiry: t.Expiry, expired: t.Expired}
	}
	for k, t := range s.Refresh {
		f.refresh[k] = &refreshToken{clientID: t.ClientID, accountID: t.AccountID, retired: t.Retired, graceUntil: t.GraceUntil, rejectNext: t.RejectNext}
	}
	for id, p := range s.Plans {
		f.plans[id] = &plan{outageArmed: p.OutageArmed, outageUntil: p.OutageUntil}
	}
	for id, c := range s.Callbacks {
		f.callbacks[id] = &callbackSetting{URL: c.URL, Actions: maps.Clone(c.Actions)}
	}
	return nil
}
