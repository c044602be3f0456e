package getresponsetest

// client is a registered OAuth app.
type client struct {
	secret      string
	redirectURL string
	// owner is the account client_credentials tokens are for; "" means the
	// first account.
	owner string
}

// AddClient registers an OAuth app: after consent the browser is sent to
// redirectURL. Adding an existing id replaces it (and its owner).
func (f *Fake) AddClient(id, secret, redirectURL string) {
	f.mu.Lock()
	f.clients[id] = &client{secret: secret, redirectURL: redirectURL}
	f.mu.Unlock()
	f.changed()
}

// SetClientOwner makes accountID the account that registered the client:
// grant_type=client_credentials returns tokens for it. Without an owner the
// first account is used.
func (f *Fake) SetClientOwner(clientID, accountID string) error {
	f.mu.Lock()
	c, ok := f.clients[clientID]
	switch {
	case !ok:
		f.mu.Unlock()
		return ErrUnknownClient
	case accountID != "":
		if _, ok := f.accountLocked(accountID); !ok {
			f.mu.Unlock()
			return ErrUnknownAccount
		}
	}
	c.owner = accountID
	f.mu.Unlock()
	f.changed()
	return nil
}

// ownerLocked returns the account client_credentials tokens of c are for;
// f.mu must be held.
func (f *Fake) ownerLocked(c *client) (string, bool) {
	if c.owner != "" {
		_, ok := f.accountLocked(c.owner)
		return c.owner, ok
	}
	if len(f.accounts) == 0 {
		return "", false
	}
	return f.accounts[0].AccountID, true
}
