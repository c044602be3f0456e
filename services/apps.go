package services

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/infra/netguard"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// AppInput is what an operator submits for an app registration.
type AppInput struct {
	Name          string
	ClientID      string
	ClientSecret  string // empty on update keeps the stored secret
	Edition       string // the environment: standard, max_us (MAX .com) or max_pl (MAX .pl)
	MaxDomain     string // MAX only, optional: the default MAX domain of the app's links
	AuthURL       string // empty: the edition's default
	APIURL        string // empty: the edition's default
	ReturnOrigins string // one origin per line (commas and spaces also separate)
	// LogoURL and SupportContact are shown to customers on the connect pages.
	LogoURL        string
	SupportContact string // an e-mail address or an http(s) URL
	// Reauthenticated says the operator confirmed their password in the last
	// ReauthWindow: Update needs it to replace the client secret or move a URL.
	Reauthenticated bool
}

// AppDefaults are the authorize and API URLs new standard apps start from
// (GRCONNECT_GETRESPONSE_AUTH_URL and GRCONNECT_GETRESPONSE_API_URL).
type AppDefaults struct {
	AuthURL string
	APIURL  string
}

// Apps manages GetResponse OAuth app registrations.
type Apps struct {
	store    *models.Store
	box      *secrets.Box
	defaults AppDefaults
	// Guard is the outgoing-call guard that GetResponse calls dial through: an
	// app's authorize and API URLs must pass its address check when saved. NewApps
	// sets one that allows private addresses for the defaults' hosts only.
	Guard *netguard.Guard
}

// NewApps returns the app service.
func NewApps(store *models.Store, box *secrets.Box, defaults AppDefaults) *Apps {
	guard := netguard.New("GRCONNECT_GETRESPONSE_ALLOW_PRIVATE", nil, netguard.HostOf(defaults.AuthURL), netguard.HostOf(defaults.APIURL))
	return &Apps{store: store, box: box, defaults: defaults, Guard: guard}
}

// Defaults returns the authorize and API URLs an edition starts from.
func (a *Apps) Defaults(edition, domain string) (authURL, apiURL string) {
	e := getresponse.Edition(edition)
	if !e.IsMax() {
		return a.defaults.AuthURL, a.defaults.APIURL
	}
	return defaultMaxAuthURL(e, domain), getresponse.DefaultAPIURL(e)
}

// Create validates in and stores a new app with its client secret sealed.
func (a *Apps) Create(ctx context.Context, in AppInput) (*models.App, error) {
	app := &models.App{ID: models.NewID("app")}
	if err := a.apply(app, in, true); err != nil {
		return nil, err
	}
	ctx = auditing(ctx, models.AuditAppCreated, TargetApp, app.ID,
		fmt.Sprintf("App %q registered: client ID %q, edition %s, API URL %s", app.Name, app.ClientID, app.Edition, app.APIURL))
	if err := a.store.CreateApp(ctx, app); errors.Is(err, models.ErrDuplicate) {
		return nil, FieldErrors{"name": "Another app already has this name."}
	} else if err != nil {
		return nil, err
	}
	return app, nil
}

// Update validates in and saves it over app id on behalf of actor (an operator's
// email); an empty client secret keeps the old one. Replacing the client secret or
// moving the authorize or API URL to another origin (scheme and host) needs
// in.Reauthenticated, else it returns ErrReauthRequired: grconnect sends the
// secret and every refresh token to the API URL, so a stolen session alone must
// not be able to redirect them. The edit is recorded as an app event (what
// changed, never the secret).
func (a *Apps) Update(ctx context.Context, id, actor string, in AppInput) (*models.App, error) {
	app, err := a.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	before := *app
	if err := a.apply(app, in, false); err != nil {
		return nil, err
	}
	same, err := a.sensitiveEdit(&before, app, in)
	if err != nil {
		return nil, err
	}
	entered := strings.TrimSpace(in.ClientSecret)
	if same {
		app.ClientSecretEnc, app.ClientSecretHint = before.ClientSecretEnc, before.ClientSecretHint
	}
	ev := &models.Event{AppID: &app.ID, Type: models.EventAppUpdated, Actor: actor, Message: describeAppChanges(&before, app, entered != "" && !same)}
	action := models.AuditAppUpdated
	if before.ClientSecretEnc != app.ClientSecretEnc {
		action = models.AuditAppSecretChanged // one entry, named after the change that matters most
	}
	ctx = auditing(ctx, action, TargetApp, app.ID, fmt.Sprintf("App %q edited: %s", app.Name, strings.TrimPrefix(ev.Message, "App edited: ")))
	if err := a.store.UpdateAppAudited(ctx, app, ev); errors.Is(err, models.ErrDuplicate) {
		return nil, FieldErrors{"name": "Another app already has this name."}
	} else if err != nil {
		return nil, err
	}
	return app, nil
}

// urlOrigin is a URL's scheme and host ("https://api.getresponse.com"), lowercased.
func urlOrigin(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// describeAppChanges says in words what an edit changed (never a secret's value).
func describeAppChanges(before, after *models.App, secretReplaced bool) string {
	var parts []string
	field := func(name, old, new string) {
		if old != new {
			parts = append(parts, fmt.Sprintf("%s %q → %q", name, old, new))
		}
	}
	field("name", before.Name, after.Name)
	field("client ID", before.ClientID, after.ClientID)
	field("edition", before.Edition, after.Edition)
	field("MAX domain", before.MaxDomain, after.MaxDomain)
	field("authorize URL", before.AuthURL, after.AuthURL)
	field("API URL", before.APIURL, after.APIURL)
	if before.ReturnOrigins != after.ReturnOrigins {
		parts = append(parts, "return origins now "+strings.Join(after.Origins(), ", "))
	}
	if urlOrigin(before.AuthURL) != urlOrigin(after.AuthURL) || urlOrigin(before.APIURL) != urlOrigin(after.APIURL) {
		parts = append(parts, "moved to another host, confirmed with the operator's password")
	}
	if secretReplaced && before.ClientSecretEnc != after.ClientSecretEnc {
		parts = append(parts, "client secret replaced")
	}
	if len(parts) == 0 {
		return "App saved without changes"
	}
	return "App edited: " + strings.Join(parts, "; ")
}

// apply validates in and copies it onto app.
func (a *Apps) apply(app *models.App, in AppInput, creating bool) error {
	fe := FieldErrors{}
	name := strings.TrimSpace(in.Name)
	switch {
	case name == "":
		fe.Add("name", "Give the app a name.")
	case utf8.RuneCountInString(name) > 100:
		fe.Add("name", "Use at most 100 characters.")
	case hasUnprintable(name):
		fe.Add("name", unprintableProblem)
	}
	clientID := strings.TrimSpace(in.ClientID)
	switch {
	case clientID == "":
		fe.Add("client_id", "Paste the client ID from GetResponse.")
	case len(clientID) > 200 || strings.ContainsAny(clientID, " \t\r\n:"):
		fe.Add("client_id", "A client ID has no spaces or colons and at most 200 characters.")
	}
	secret := strings.TrimSpace(in.ClientSecret)
	switch {
	case secret == "" && creating:
		fe.Add("client_secret", "Paste the client secret from GetResponse.")
	case len(secret) > 500 || strings.ContainsAny(secret, " \t\r\n"):
		fe.Add("client_secret", "A client secret has no spaces and at most 500 characters.")
	}
	edition := getresponse.Edition(in.Edition)
	if in.Edition == "" {
		edition = getresponse.EditionStandard
	}
	domain := ""
	if !edition.Valid() {
		fe.Add("edition", "Choose standard GetResponse, or GetResponse MAX (Enterprise) on .com or .pl.")
	} else if edition.IsMax() && strings.TrimSpace(in.MaxDomain) != "" {
		d, err := getresponse.NormalizeDomain(in.MaxDomain)
		if err != nil {
			fe.Add("max_domain", "Enter a MAX domain like mycompany.getresponse360.com, or leave it empty to ask each customer.")
		}
		domain = d
	} else if !edition.IsMax() && strings.TrimSpace(in.MaxDomain) != "" {
		fe.Add("max_domain", "Only GetResponse MAX (Enterprise) apps have a domain; leave it empty for a standard app.")
	}
	defAuth, defAPI := a.Defaults(string(edition), domain)
	authURL := a.editionURL(in.AuthURL, defAuth, app.MaxDomain, domain, 0)
	if !validHTTPURL(strings.ReplaceAll(authURL, DomainPlaceholder, "example.com")) {
		fe.Add("auth_url", "Enter an absolute http(s) URL without credentials, a query or a fragment ("+DomainPlaceholder+" stands for the customer's MAX domain).")
	} else if !edition.IsMax() && strings.Contains(authURL, DomainPlaceholder) {
		fe.Add("auth_url", "Only GetResponse MAX (Enterprise) apps authorize on the customer's domain ("+DomainPlaceholder+").")
	}
	apiURL := strings.TrimRight(a.editionURL(in.APIURL, defAPI, app.MaxDomain, domain, 1), "/")
	if !validHTTPURL(apiURL) {
		fe.Add("api_url", "Enter an absolute http(s) URL without credentials, a query or a fragment.")
	}
	if p := a.addressProblem(strings.ReplaceAll(authURL, DomainPlaceholder, "example.com")); p != "" {
		fe.Add("auth_url", p)
	}
	if p := a.addressProblem(apiURL); p != "" {
		fe.Add("api_url", p)
	}
	origins, problem := ParseReturnOrigins(in.ReturnOrigins)
	if problem != "" {
		fe.Add("return_origins", problem)
	}
	logoURL := strings.TrimSpace(in.LogoURL)
	if logoURL != "" && !validLogoURL(logoURL) {
		fe.Add("logo_url", "Enter an absolute https URL of an image (http only for localhost).")
	}
	support, problem := parseSupportContact(in.SupportContact)
	if problem != "" {
		fe.Add("support_contact", problem)
	}
	if err := fe.OrNil(); err != nil {
		return err
	}
	app.Name, app.ClientID, app.Edition, app.MaxDomain = name, clientID, string(edition), domain
	app.LogoURL, app.SupportContact = logoURL, support
	app.AuthURL, app.APIURL, app.ReturnOrigins = authURL, apiURL, strings.Join(origins, "\n")
	if secret != "" {
		sealed, err := a.box.Seal(secret, secrets.AAD("app", app.ID, "client_secret"))
		if err != nil {
			return err
		}
		app.ClientSecretEnc = sealed
		app.ClientSecretHint = secretHint(secret)
	}
	return nil
}

// addressProblem says, for the form, why the outgoing-call guard refuses a URL's
// host, or "".
func (a *Apps) addressProblem(rawURL string) string {
	err := a.Guard.CheckURL(rawURL)
	b, ok := netguard.Blocked(err)
	switch {
	case err == nil:
		return ""
	case !ok:
		return "" // not a URL: the URL check says so
	case b.Private:
		return "grconnect does not call loopback or private-network addresses (" + b.Host + "): use GetResponse's public address. " +
			"For a test server on your own network, start grconnect with GRCONNECT_GETRESPONSE_ALLOW_PRIVATE=true."
	}
	return "grconnect never calls link-local or cloud metadata addresses (" + b.Host + "): use GetResponse's public address."
}

// secretHint is the end of a client secret shown as "ends in …3f2a": four
// characters of a secret of 16 or more, fewer of a shorter one, and none of a
// secret under 8 characters, which it would give away.
func secretHint(secret string) string {
	n := 4
	switch {
	case len(secret) < 8:
		return ""
	case len(secret) < 16:
		n = len(secret) / 8
	}
	return secret[len(secret)-n:]
}

// editionURL returns the URL to store for an authorize (which=0) or API (which=1)
// URL field: empty, or still some edition's default (the form was pre-filled and the
// edition or domain changed), means the chosen edition's default.
func (a *Apps) editionURL(submitted, def, oldDomain, newDomain string, which int) string {
	s := strings.TrimRight(strings.TrimSpace(submitted), "/")
	if s == "" {
		return def
	}
	for _, e := range []string{"standard", "max_us", "max_pl"} {
		for _, d := range []string{oldDomain, newDomain, ""} {
			auth, api := a.Defaults(e, d)
			known := [2]string{auth, api}[which]
			if known != "" && s == strings.TrimRight(known, "/") {
				return def
			}
		}
	}
	return strings.TrimSpace(submitted)
}

// EditionDefaults returns each edition's default authorize and API URLs for domain.
func (a *Apps) EditionDefaults(domain string) map[string][2]string {
	out := map[string][2]string{}
	for _, e := range []string{"standard", "max_us", "max_pl"} {
		auth, api := a.Defaults(e, domain)
		out[e] = [2]string{auth, api}
	}
	return out
}

// validHTTPURL accepts an absolute http(s) URL with a host and nothing that could
// move where a request goes or what it carries: no userinfo, no query or fragment
// (a "#" at the end of an API URL would swallow the path grconnect appends), no
// backslash, space or control character.
func validHTTPURL(s string) bool {
	if len(s) > 500 || strings.ContainsAny(s, "?#\\@") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] == 0x7f {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.Opaque == ""
}

// ParseReturnOrigins validates a list of origins ("https://app.example.com",
// separated by newlines, commas or spaces) and returns them normalized, or what is
// wrong with them in words for the form.
func ParseReturnOrigins(s string) (origins []string, problem string) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ' ' || r == '\t' })
	seen := map[string]bool{}
	var out, bad []string
	for _, f := range fields {
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			bad = append(bad, "\""+truncate(f, 60)+"\"")
			continue
		}
		o := strings.ToLower(u.Scheme + "://" + u.Host)
		if !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	switch {
	case len(bad) == 1:
		return nil, "Each return origin is scheme://host[:port] with no path, like https://app.example.com; " + bad[0] + " is not."
	case len(bad) > 1:
		return nil, "Each return origin is scheme://host[:port] with no path, like https://app.example.com; " + strings.Join(bad, ", ") + " are not."
	case len(out) > 20:
		return nil, "List at most 20 return origins."
	}
	return out, ""
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// Get returns a live app, or models.ErrNotFound.
func (a *Apps) Get(ctx context.Context, id string) (*models.App, error) {
	app, err := a.store.AppByID(ctx, id)
	return app, err
}

// List returns the live apps with their connection counts.
func (a *Apps) List(ctx context.Context) ([]models.AppSummary, error) {
	return a.store.ListApps(ctx)
}

// LiveConnections returns how many connections of app id are not disconnected.
func (a *Apps) LiveConnections(ctx context.Context, id string) (int64, error) {
	return a.store.CountLiveConnections(ctx, id)
}

// Delete removes app id. With live connections it returns models.ErrInUse unless
// disconnect is set, in which case those connections are disconnected.
func (a *Apps) Delete(ctx context.Context, id, actor string, disconnect bool) (int64, error) {
	if _, ok := ActorOf(ctx); ok {
		app, err := a.Get(ctx, id)
		if err != nil {
			return 0, err
		}
		live, err := a.LiveConnections(ctx, id)
		if err != nil {
			return 0, err
		}
		details := fmt.Sprintf("App %q deleted", app.Name)
		if live > 0 {
			details += fmt.Sprintf("; its %d live connections were disconnected", live)
		}
		ctx = auditing(ctx, models.AuditAppDeleted, TargetApp, id, details)
	}
	n, err := a.store.DeleteApp(ctx, id, actor, disconnect)
	return n, err
}

// Client returns what the GetResponse client needs of app, with its secret opened.
func (a *Apps) Client(app *models.App, redirectURL string) (getresponse.App, error) {
	secret, err := a.box.Open(app.ClientSecretEnc, secrets.AAD("app", app.ID, "client_secret"))
	if err != nil {
		return getresponse.App{}, err
	}
	return getresponse.App{
		ClientID: app.ClientID, ClientSecret: secret, AuthURL: app.AuthURL, APIURL: app.APIURL,
		XDomain: app.MaxDomain, RedirectURL: redirectURL,
	}, nil
}

// Candidate returns app id as an edit with in would save it — validated, its new
// client secret sealed — without storing anything, so that GetResponse can be
// asked about the new credentials before they replace the current ones. It
// returns nil (and no error) when the edit moves the app to another host: the
// stored secret goes nowhere new before Update has confirmed the move. Problems
// come back as FieldErrors, as from Update.
func (a *Apps) Candidate(ctx context.Context, id string, in AppInput) (*models.App, error) {
	app, err := a.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	before := *app
	if err := a.apply(app, in, false); err != nil {
		return nil, err
	}
	if _, err := a.sensitiveEdit(&before, app, in); err != nil {
		return nil, err // nothing typed goes to GetResponse before the password is given
	}
	if urlOrigin(before.AuthURL) != urlOrigin(app.AuthURL) || urlOrigin(before.APIURL) != urlOrigin(app.APIURL) {
		return nil, nil
	}
	return app, nil
}

// sensitiveEdit holds an edit from before to after to the password rule: moving
// the authorize or API URL to another origin, or replacing the client secret,
// needs in.Reauthenticated, else ErrReauthRequired. same reports that the secret
// typed is the current one (nothing to replace).
func (a *Apps) sensitiveEdit(before, after *models.App, in AppInput) (same bool, err error) {
	moved := urlOrigin(before.AuthURL) != urlOrigin(after.AuthURL) || urlOrigin(before.APIURL) != urlOrigin(after.APIURL)
	entered := strings.TrimSpace(in.ClientSecret)
	if entered != "" {
		current, err := a.box.Open(before.ClientSecretEnc, secrets.AAD("app", before.ID, "client_secret"))
		if err != nil {
			return false, err
		}
		same = subtle.ConstantTimeCompare([]byte(entered), []byte(current)) == 1
	}
	if (moved || (entered != "" && !same)) && !in.Reauthenticated {
		return same, ErrReauthRequired
	}
	return same, nil
}
