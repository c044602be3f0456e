package services

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/secrets"
	"github.com/grconnect/grconnect/services/getresponse"
)

// AppInput is what an operator submits for an app registration.
type AppInput struct {
	Name          string
	ClientID      string
	ClientSecret  string // empty on update keeps the stored secret
	Edition       string
	MaxDomain     string
	AuthURL       string // empty: the edition's default
	APIURL        string // empty: the edition's default
	ReturnOrigins string // one origin per line (commas and spaces also separate)
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
}

// NewApps returns the app service.
func NewApps(store *models.Store, box *secrets.Box, defaults AppDefaults) *Apps {
	return &Apps{store: store, box: box, defaults: defaults}
}

// Defaults returns the authorize and API URLs an edition starts from.
func (a *Apps) Defaults(edition, domain string) (authURL, apiURL string) {
	e := getresponse.Edition(edition)
	if !e.IsMax() {
		return a.defaults.AuthURL, a.defaults.APIURL
	}
	return getresponse.DefaultAuthURL(e, domain), getresponse.DefaultAPIURL(e)
}

// Create validates in and stores a new app with its client secret sealed.
func (a *Apps) Create(ctx context.Context, in AppInput) (*models.App, error) {
	app := &models.App{ID: models.NewID("app")}
	if err := a.apply(app, in, true); err != nil {
		return nil, err
	}
	if err := a.store.CreateApp(ctx, app); errors.Is(err, models.ErrDuplicate) {
		return nil, FieldErrors{"name": "Another app already has this name."}
	} else if err != nil {
		return nil, err
	}
	return app, nil
}

// Update validates in and saves it over app id; an empty client secret keeps the old one.
func (a *Apps) Update(ctx context.Context, id string, in AppInput) (*models.App, error) {
	app, err := a.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := a.apply(app, in, false); err != nil {
		return nil, err
	}
	if err := a.store.UpdateApp(ctx, app); errors.Is(err, models.ErrDuplicate) {
		return nil, FieldErrors{"name": "Another app already has this name."}
	} else if err != nil {
		return nil, err
	}
	return app, nil
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
		fe.Add("edition", "Choose standard, MAX (.com) or MAX (.pl).")
	} else if edition.IsMax() {
		d, err := getresponse.NormalizeDomain(in.MaxDomain)
		if err != nil {
			fe.Add("max_domain", "Enter the MAX account's domain, like example.com.")
		}
		domain = d
	} else if strings.TrimSpace(in.MaxDomain) != "" {
		fe.Add("max_domain", "Only MAX apps have a domain; leave it empty for a standard app.")
	}
	defAuth, defAPI := a.Defaults(string(edition), domain)
	authURL := a.editionURL(in.AuthURL, defAuth, app.MaxDomain, domain, 0)
	if !validHTTPURL(authURL) {
		fe.Add("auth_url", "Enter an absolute http(s) URL.")
	}
	apiURL := strings.TrimRight(a.editionURL(in.APIURL, defAPI, app.MaxDomain, domain, 1), "/")
	if !validHTTPURL(apiURL) {
		fe.Add("api_url", "Enter an absolute http(s) URL.")
	}
	origins, problem := ParseReturnOrigins(in.ReturnOrigins)
	if problem != "" {
		fe.Add("return_origins", problem)
	}
	if err := fe.OrNil(); err != nil {
		return err
	}
	app.Name, app.ClientID, app.Edition, app.MaxDomain = name, clientID, string(edition), domain
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
		for _, d := range []string{oldDomain, newDomain} {
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

func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && len(s) <= 500
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
