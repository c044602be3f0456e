package getresponsetest

import (
	"bytes"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors of Approve, Deny and Decide.
var (
	ErrUnknownClient  = errors.New("getresponsetest: unknown client_id")
	ErrUnknownAccount = errors.New("getresponsetest: unknown account")
	// ErrInvalidAccount is a new account without a name or a valid e-mail address.
	ErrInvalidAccount = errors.New("getresponsetest: a new account needs a name and a valid e-mail address")
)

// Outcome is what a consent decision does, as chosen on the consent page.
type Outcome string

// The consent outcomes.
const (
	// OutcomeApprove approves: the browser gets a code.
	OutcomeApprove Outcome = "approve"
	// OutcomeDeny refuses: the browser gets error=access_denied.
	OutcomeDeny Outcome = "deny"
	// OutcomeApproveRejectRefresh approves, but the refresh token issued for
	// the code is rejected (invalid_grant) at its first refresh.
	OutcomeApproveRejectRefresh Outcome = "approve_reject_refresh"
	// OutcomeApproveOutage approves, then the account's token and API calls
	// answer 503 for Options.OutageLength, starting after its first
	// successful API call (the app's "who am I") or at its first refresh.
	OutcomeApproveOutage Outcome = "approve_outage"
)

// Consent is a decision on the consent page, made programmatically by Decide.
type Consent struct {
	// ClientID and State are those of the authorize request.
	ClientID, State string
	// Domain is the MAX domain whose consent page is used: its accounts are
	// the ones offered. "" means the standard accounts (all accounts in
	// Options.MaxDomain mode).
	Domain string
	// AccountID is the account approved; "" means the domain's first one,
	// unless NewName is set.
	AccountID string
	// NewName and NewEmail, when AccountID is "", create a new account of
	// Domain (as typing one on the page does).
	NewName, NewEmail string
	// Outcome is what happens; "" means OutcomeApprove.
	Outcome Outcome
}

// stylesheetPath is where the fake serves the consent page's stylesheet:
// no inline styles, so the page works under a CSP of style-src 'self'.
const stylesheetPath = "/getresponse-fake.css"

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize {{.ClientID}} · GetResponse (simulated)</title>
<link rel="stylesheet" href="{{.Stylesheet}}">
</head>
<body>
<main>
<h1>Authorize application</h1>
<p data-testid="consent-client">The application <strong>{{.ClientID}}</strong> asks for access to your GetResponse account{{if .Domain}} on <strong data-testid="consent-domain">{{.Domain}}</strong>{{end}}.</p>
{{- if .Error}}
<p class="error" role="alert" id="consent-error" data-testid="consent-error">{{.Error}}</p>
{{- end}}
<form method="post" action="{{.Action}}" data-testid="consent-form">
<input type="hidden" name="response_type" value="code">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="domain" value="{{.Domain}}">
<fieldset data-testid="consent-accounts">
<legend>Account</legend>
{{- range $i, $a := .Accounts}}
<div class="choice"><input type="radio" id="account-{{$i}}" name="account_id" value="{{$a.ID}}" data-testid="consent-account"{{if $a.Checked}} checked{{end}}><label for="account-{{$i}}">{{$a.Label}}</label></div>
{{- end}}
<div class="choice"><input type="radio" id="account-new" name="account_id" value="new" data-testid="consent-account-new"{{if .NewChecked}} checked{{end}}><label for="account-new">Another account:</label></div>
<div class="field"><label for="new_name">Name</label><input type="text" id="new_name" name="new_name" value="{{.NewName}}" autocomplete="name" maxlength="100"{{if .Error}} aria-describedby="consent-error"{{end}}></div>
<div class="field"><label for="new_email">E-mail</label><input type="email" id="new_email" name="new_email" value="{{.NewEmail}}" autocomplete="email" maxlength="254"{{if .Error}} aria-describedby="consent-error"{{end}}></div>
</fieldset>
<fieldset data-testid="consent-outcomes">
<legend>If you approve (simulation)</legend>
{{- range $i, $o := .Outcomes}}
<div class="choice"><input type="radio" id="outcome-{{$i}}" name="outcome" value="{{$o.Value}}" data-testid="consent-outcome"{{if $o.Checked}} checked{{end}}><label for="outcome-{{$i}}">{{$o.Label}}<span class="hint">{{$o.Hint}}</span></label></div>
{{- end}}
</fieldset>
<p class="actions">
<button type="submit" name="decision" value="approve" class="primary" data-testid="consent-approve">Approve</button>
<button type="submit" name="decision" value="deny" data-testid="consent-deny">Deny</button>
</p>
</form>
<p class="note">This is a simulated GetResponse for tests and demo mode. No data leaves this server.</p>
</main>
</body>
</html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Error · GetResponse (simulated)</title>
<link rel="stylesheet" href="{{.Stylesheet}}">
</head>
<body><main><h1>Authorization error</h1><p data-testid="consent-error">{{.Message}}</p></main></body>
</html>
`))

type errorData struct{ Stylesheet, Message string }

type accountOption struct {
	ID, Label string
	Checked   bool
}

type outcomeOption struct {
	Value, Label, Hint string
	Checked            bool
}

type consentData struct {
	Stylesheet, Action, ClientID, State, Domain string
	Accounts                                    []accountOption
	NewChecked                                  bool
	NewName, NewEmail                           string
	Outcomes                                    []outcomeOption
	Error                                       string
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
		f.decideForm(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		f.renderError(w, http.StatusMethodNotAllowed, "Method not allowed.")
	}
}

// pageDomain is the MAX domain whose consent page r asks for: the domain
// query parameter, else the Host when accounts live on it, else
// Options.MaxDomain ("" for standard accounts).
func (f *Fake) pageDomain(r *http.Request, q url.Values) string {
	if d := normalizeDomain(q.Get("domain")); d != "" {
		return d
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = normalizeDomain(host)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.accounts {
		if a.Domain != "" && normalizeDomain(a.Domain) == host {
			return host
		}
	}
	return f.opts.MaxDomain
}

func (f *Fake) showConsent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("response_type") != "code" {
		f.renderError(w, http.StatusBadRequest, "Unsupported response_type: only \"code\" is supported.")
		return
	}
	c := Consent{ClientID: q.Get("client_id"), State: q.Get("state"), Domain: f.pageDomain(r, q)}
	f.renderConsent(w, http.StatusOK, c, "")
}

// renderConsent renders the page for c, with the choices of c selected.
func (f *Fake) renderConsent(w http.ResponseWriter, status int, c Consent, problem string) {
	data := consentData{
		Stylesheet: f.opts.Prefix + stylesheetPath,
		Action:     f.opts.Prefix + "/oauth2_authorize.html",
		ClientID:   c.ClientID, State: c.State, Domain: c.Domain,
		NewName: c.NewName, NewEmail: c.NewEmail, Error: problem,
	}
	f.mu.Lock()
	_, known := f.clients[c.ClientID]
	for _, a := range f.accountsOfLocked(c.Domain) {
		if a.Unlisted {
			continue
		}
		checked := a.AccountID == c.AccountID || (c.AccountID == "" && len(data.Accounts) == 0 && c.NewName == "")
		data.Accounts = append(data.Accounts, accountOption{ID: a.AccountID, Label: accountLabel(a), Checked: checked})
	}
	minutes := int(f.opts.OutageLength.Minutes())
	f.mu.Unlock()
	if !known {
		f.renderError(w, http.StatusBadRequest, "Unknown application (client_id "+c.ClientID+").")
		return
	}
	data.NewChecked = c.AccountID == "new" || len(data.Accounts) == 0 || (c.AccountID == "" && c.NewName != "")
	outage := "Token and API calls answer HTTP 503 for a few minutes, starting after the first API call."
	if minutes >= 1 {
		outage = "Token and API calls answer HTTP 503 for " + pluralMinutes(minutes) + ", starting after the first API call."
	}
	data.Outcomes = []outcomeOption{
		{Value: string(OutcomeApprove), Label: "Everything works", Hint: "Tokens refresh and API calls answer normally."},
		{Value: string(OutcomeApproveRejectRefresh), Label: "The refresh token is rejected later", Hint: "The first refresh answers invalid_grant: the customer must connect again."},
		{Value: string(OutcomeApproveOutage), Label: "GetResponse fails for a while", Hint: outage},
	}
	for i := range data.Outcomes {
		data.Outcomes[i].Checked = Outcome(data.Outcomes[i].Value) == c.Outcome || (c.Outcome == "" && i == 0)
	}
	renderHTML(w, status, consentPage, data)
}

func pluralMinutes(n int) string {
	if n == 1 {
		return "1 minute"
	}
	return strconv.Itoa(n) + " minutes"
}

func (f *Fake) decideForm(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		f.renderError(w, http.StatusBadRequest, "Malformed form.")
		return
	}
	form := r.PostForm
	c := Consent{
		ClientID: form.Get("client_id"), State: form.Get("state"), Domain: normalizeDomain(form.Get("domain")),
		AccountID: form.Get("account_id"), Outcome: Outcome(form.Get("outcome")),
	}
	if c.AccountID == "new" {
		c.NewName, c.NewEmail = form.Get("new_name"), form.Get("new_email")
	}
	if form.Get("decision") != "approve" {
		c.Outcome = OutcomeDeny
	}
	target, err := f.decide(c, true)
	switch {
	case errors.Is(err, ErrInvalidAccount):
		c.AccountID, c.NewName, c.NewEmail = "new", form.Get("new_name"), form.Get("new_email")
		f.renderConsent(w, http.StatusUnprocessableEntity, c, "Type a name and a valid e-mail address for the new account.")
		return
	case err != nil:
		f.renderError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
}

// Approve consents programmatically, as the Approve button does, and returns
// the redirect URL (registered URL + ?code=<40 hex>&state=…). An empty
// accountID picks the first account; any account may be approved, whatever
// its domain. It counts as EndpointConsent.
func (f *Fake) Approve(clientID, state, accountID string) (redirect string, err error) {
	f.inc(EndpointConsent)
	return f.decide(Consent{ClientID: clientID, State: state, AccountID: accountID}, false)
}

// Deny refuses programmatically, as the Deny button does, and returns the
// redirect URL (?error=access_denied&error_description=…&state=…). It counts
// as EndpointConsent.
func (f *Fake) Deny(clientID, state string) (redirect string, err error) {
	f.inc(EndpointConsent)
	return f.decide(Consent{ClientID: clientID, State: state, Outcome: OutcomeDeny}, false)
}

// Decide makes a decision on the consent page of c.Domain, as a visitor
// does, and returns the redirect URL. The account must belong to c.Domain.
// It counts as EndpointConsent.
func (f *Fake) Decide(c Consent) (redirect string, err error) {
	f.inc(EndpointConsent)
	c.Domain = normalizeDomain(c.Domain)
	return f.decide(c, true)
}

// decide runs a decision; checkDomain refuses accounts of other domains.
func (f *Fake) decide(c Consent, checkDomain bool) (string, error) {
	switch c.Outcome {
	case "", OutcomeApprove, OutcomeApproveRejectRefresh, OutcomeApproveOutage:
	case OutcomeDeny:
		return f.deny(c.ClientID, c.State)
	default:
		return "", errors.New("getresponsetest: unknown outcome")
	}
	var newAcct *Account
	if (c.AccountID == "" || c.AccountID == "new") && (c.NewName != "" || c.NewEmail != "" || c.AccountID == "new") {
		a, err := f.checkNewAccount(c)
		if err != nil {
			return "", err
		}
		newAcct = &a
	}

	f.mu.Lock()
	cl, ok := f.clients[c.ClientID]
	if !ok {
		f.mu.Unlock()
		return "", ErrUnknownClient
	}
	accountID := c.AccountID
	switch {
	case newAcct != nil:
		f.putAccountLocked(*newAcct)
		accountID = newAcct.AccountID
	case accountID == "" && checkDomain:
		if as := f.accountsOfLocked(c.Domain); len(as) > 0 {
			accountID = as[0].AccountID
		}
	case accountID == "" && len(f.accounts) > 0:
		accountID = f.accounts[0].AccountID
	}
	a, ok := f.accountLocked(accountID)
	if !ok || (checkDomain && f.accountDomain(a) != c.Domain) {
		f.mu.Unlock()
		return "", ErrUnknownAccount
	}
	code := randomHex(20)
	f.codes[code] = &authCode{clientID: c.ClientID, accountID: accountID, issued: f.now(),
		rejectRefresh: c.Outcome == OutcomeApproveRejectRefresh}
	if c.Outcome == OutcomeApproveOutage {
		p := f.planLocked(accountID)
		p.outageArmed = true
	}
	redirectURL := cl.redirectURL
	f.mu.Unlock()
	f.changed()
	return withQuery(redirectURL, url.Values{"code": {code}, "state": {c.State}})
}

// checkNewAccount builds the account typed on the page.
func (f *Fake) checkNewAccount(c Consent) (Account, error) {
	name, email := strings.TrimSpace(c.NewName), strings.TrimSpace(c.NewEmail)
	addr, err := mail.ParseAddress(email)
	if name == "" || utf8.RuneCountInString(name) > 100 || len(email) > 254 || err != nil || addr.Address != email {
		return Account{}, ErrInvalidAccount
	}
	return newAccount(name, email, c.Domain, f.now()), nil
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

func (f *Fake) renderError(w http.ResponseWriter, status int, msg string) {
	renderHTML(w, status, errorPage, errorData{Stylesheet: f.opts.Prefix + stylesheetPath, Message: msg})
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
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action *; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// serveStylesheet serves the consent page's stylesheet.
func serveStylesheet(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(stylesheet))
}

// stylesheet styles the consent and error pages: one column that fits a
// 390 px phone, long names wrap, a visible focus ring, AA contrast.
const stylesheet = `*, *::before, *::after { box-sizing: border-box; }
html { color-scheme: light; -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a; background: #fff; overflow-wrap: anywhere; }
main { max-width: 36rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: .5rem 0 1rem; }
fieldset { min-width: 0; margin: 0 0 1rem; padding: .75rem 1rem; border: 1px solid #767676; border-radius: .5rem; }
legend { padding: 0 .25rem; font-weight: 600; }
.choice { display: flex; gap: .5rem; align-items: flex-start; margin: .5rem 0; }
.choice input { flex: none; margin: .3rem 0 0; }
.choice label { flex: 1; min-width: 0; }
.hint { display: block; color: #4a4a4a; font-size: .875rem; }
.field { margin: .5rem 0 0 1.5rem; }
.field label { display: block; }
input[type=text], input[type=email] { width: 100%; max-width: 100%; padding: .5rem; font: inherit; color: inherit; background: #fff; border: 1px solid #767676; border-radius: .375rem; }
.actions { display: flex; flex-wrap: wrap; gap: .75rem; }
button { padding: .625rem 1.25rem; font: inherit; color: #1a1a1a; background: #fff; border: 1px solid #767676; border-radius: .375rem; cursor: pointer; }
button.primary { color: #fff; background: #006970; border-color: #006970; }
:focus-visible { outline: 3px solid #1a5fb4; outline-offset: 2px; }
.error { margin: 0 0 1rem; padding: .5rem .75rem; color: #8a0010; border-left: 4px solid #8a0010; background: #fff5f5; }
.note { color: #4a4a4a; font-size: .875rem; }
`
