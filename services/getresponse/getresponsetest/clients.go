package getresponsetest

import (
	"html/template"
	"net/http"
	"slices"
	"strings"
)

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

// SetRedirectURL changes where a registered client's consent sends the
// browser, keeping its secret.
func (f *Fake) SetRedirectURL(clientID, redirectURL string) error {
	f.mu.Lock()
	c, ok := f.clients[clientID]
	if ok {
		c.redirectURL = redirectURL
	}
	f.mu.Unlock()
	if !ok {
		return ErrUnknownClient
	}
	f.changed()
	return nil
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

// applicationsPath is where the fake lists its registered applications, as
// GetResponse's panel does under Integrations & API → OAuth.
const applicationsPath = "/authorizations"

var applicationsPage = template.Must(template.New("apps").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Applications · GetResponse (simulated)</title>
<link rel="stylesheet" href="{{.Stylesheet}}">
</head>
<body>
<main>
<h1>Your applications</h1>
<p>Integrations &amp; API → OAuth. Each application's client ID and secret go into the app's settings in your integration.</p>
{{- range .Apps}}
<section class="app" data-testid="fake-app">
<h2>{{.ID}}</h2>
<dl>
<dt>Client ID</dt><dd><code data-testid="fake-client-id">{{.ID}}</code></dd>
<dt>Client secret</dt><dd><code data-testid="fake-client-secret">{{.Secret}}</code></dd>
<dt>Redirect URL</dt><dd><code>{{.RedirectURL}}</code></dd>
</dl>
</section>
{{- else}}
<p>No applications yet.</p>
{{- end}}
<p class="note">This is a simulated GetResponse for tests and demo mode. No data leaves this server.</p>
</main>
</body>
</html>
`))

type applicationView struct{ ID, Secret, RedirectURL string }

// serveApplications answers GET /authorizations: the registered clients with
// their secrets, by client ID.
func (f *Fake) serveApplications(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	apps := make([]applicationView, 0, len(f.clients))
	for id, c := range f.clients {
		apps = append(apps, applicationView{ID: id, Secret: c.secret, RedirectURL: c.redirectURL})
	}
	f.mu.Unlock()
	slices.SortFunc(apps, func(a, b applicationView) int { return strings.Compare(a.ID, b.ID) })
	renderHTML(w, http.StatusOK, applicationsPage, struct {
		Stylesheet string
		Apps       []applicationView
	}{f.opts.Prefix + stylesheetPath, apps})
}
