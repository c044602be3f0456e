package getresponsetest

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// Errors of Approve and Deny.
var (
	ErrUnknownClient  = errors.New("getresponsetest: unknown client_id")
	ErrUnknownAccount = errors.New("getresponsetest: unknown account")
)

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize {{.ClientID}} · GetResponse (fake)</title>
</head>
<body>
<main>
<h1>Authorize application</h1>
<p data-testid="consent-client">The application <strong>{{.ClientID}}</strong> asks for access to your GetResponse account.</p>
<form method="post" action="{{.Action}}" data-testid="consent-form">
<input type="hidden" name="response_type" value="code">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="state" value="{{.State}}">
{{- if eq (len .Accounts) 1}}
{{- with index .Accounts 0}}
<p data-testid="consent-account">Account: {{.Label}}</p>
<input type="hidden" name="account_id" value="{{.ID}}">
{{- end}}
{{- else}}
<label for="account_id">Account</label>
<select id="account_id" name="account_id" data-testid="consent-account">
{{- range .Accounts}}
<option value="{{.ID}}">{{.Label}}</option>
{{- end}}
</select>
{{- end}}
<p>
<button type="submit" name="decision" value="approve" data-testid="consent-approve">Approve</button>
<button type="submit" name="decision" value="deny" data-testid="consent-deny">Deny</button>
</p>
</form>
<p><small>This is a fake GetResponse for tests and demo mode. No data leaves this server.</small></p>
</main>
</body>
</html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Error · GetResponse (fake)</title></head>
<body><main><h1>Authorization error</h1><p data-testid="consent-error">{{.}}</p></main></body>
</html>
`))

type accountOption struct{ ID, Label string }

type consentData struct {
	Action, ClientID, State string
	Accounts                []accountOption
}

func accountLabel(a Account) string {
	label := strings.TrimSpace(a.FirstName + " " + a.LastName)
	if a.CompanyName != "" {
		label += " — " + a.CompanyName
	}
	if a.Email != "" {
		label += " (" + a.Email + ")"
	}
	return strings.TrimSpace(label)
}

func (f *Fake) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		f.inc(EndpointAuthorize)
		f.showConsent(w, r)
	case http.MethodPost:
		f.inc(EndpointConsent)
		f.decide(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		renderHTML(w, http.StatusMethodNotAllowed, errorPage, "Method not allowed.")
	}
}

func (f *Fake) showConsent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID := q.Get("client_id")
	if q.Get("response_type") != "code" {
		renderHTML(w, http.StatusBadRequest, errorPage, "Unsupported response_type: only \"code\" is supported.")
		return
	}
	f.mu.Lock()
	_, known := f.clients[clientID]
	data := consentData{Action: f.opts.Prefix + "/oauth2_authorize.html", ClientID: clientID, State: q.Get("state")}
	for _, a := range f.accounts {
		data.Accounts = append(data.Accounts, accountOption{ID: a.AccountID, Label: accountLabel(a)})
	}
	f.mu.Unlock()
	if !known {
		renderHTML(w, http.StatusBadRequest, errorPage, "Unknown application (client_id "+clientID+").")
		return
	}
	if len(data.Accounts) == 0 {
		renderHTML(w, http.StatusBadRequest, errorPage, "There is no account to authorize.")
		return
	}
	renderHTML(w, http.StatusOK, consentPage, data)
}

func (f *Fake) decide(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderHTML(w, http.StatusBadRequest, errorPage, "Malformed form.")
		return
	}
	clientID, state := r.PostForm.Get("client_id"), r.PostForm.Get("state")
	var (
		target string
		err    error
	)
	if r.PostForm.Get("decision") == "approve" {
		target, err = f.approve(clientID, state, r.PostForm.Get("account_id"))
	} else {
		target, err = f.deny(clientID, state)
	}
	if err != nil {
		renderHTML(w, http.StatusBadRequest, errorPage, err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// Approve consents programmatically, as the Approve button does, and returns
// the redirect URL (registered URL + ?code=<40 hex>&state=…). An empty
// accountID picks the first account. It counts as EndpointConsent.
func (f *Fake) Approve(clientID, state, accountID string) (redirect string, err error) {
	f.inc(EndpointConsent)
	return f.approve(clientID, state, accountID)
}

// Deny refuses programmatically, as the Deny button does, and returns the
// redirect URL (?error=access_denied&error_description=…&state=…). It counts
// as EndpointConsent.
func (f *Fake) Deny(clientID, state string) (redirect string, err error) {
	f.inc(EndpointConsent)
	return f.deny(clientID, state)
}

func (f *Fake) approve(clientID, state, accountID string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[clientID]
	if !ok {
		return "", ErrUnknownClient
	}
	if accountID == "" && len(f.accounts) > 0 {
		accountID = f.accounts[0].AccountID
	}
	if _, ok := f.accountLocked(accountID); !ok {
		return "", ErrUnknownAccount
	}
	code := randomHex(20)
	f.codes[code] = authCode{clientID: clientID, accountID: accountID, issued: f.now()}
	return withQuery(c.redirectURL, url.Values{"code": {code}, "state": {state}})
}

func (f *Fake) deny(clientID, state string) (string, error) {
	f.mu.Lock()
	c, ok := f.clients[clientID]
	f.mu.Unlock()
	if !ok {
		return "", ErrUnknownClient
	}
	return withQuery(c.redirectURL, url.Values{
		"error":             {"access_denied"},
		"error_description": {"The user denied access to the application"},
		"state":             {state},
	})
}

// withQuery adds v to the query of raw (state is omitted when empty).
func withQuery(raw string, v url.Values) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, vals := range v {
		if len(vals) == 1 && vals[0] == "" {
			continue
		}
		q[k] = vals
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func renderHTML(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action *; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
