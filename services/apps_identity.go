package services

import (
	"net/mail"
	"net/url"
	"strings"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// DomainPlaceholder in a MAX app's authorize URL stands for the connecting
// customer's MAX domain: https://{domain}/oauth2_authorize.html.
const DomainPlaceholder = "{domain}"

// defaultMaxAuthURL is a MAX edition's authorize URL: on the app's default domain
// when it has one (as apps made before per-customer domains stored it), else on
// each customer's own.
func defaultMaxAuthURL(e getresponse.Edition, domain string) string {
	if domain == "" {
		return "https://" + DomainPlaceholder + "/oauth2_authorize.html"
	}
	return getresponse.DefaultAuthURL(e, domain)
}

// SettingsURL is the GetResponse page where an app's registration is kept (its
// client ID, secret and redirect URL): "authorizations" beside its authorize
// page — on app.getresponse.com, on a MAX panel's own domain, in the demo's
// simulator. It is "" when the authorize URL is not GetResponse's usual page or
// names a MAX domain that is not known.
func SettingsURL(authURL, maxDomain string) string {
	const page = "/oauth2_authorize.html"
	if !strings.HasSuffix(authURL, page) {
		return ""
	}
	u := strings.TrimSuffix(authURL, page) + "/authorizations"
	if strings.Contains(u, DomainPlaceholder) {
		if maxDomain == "" {
			return ""
		}
		u = strings.ReplaceAll(u, DomainPlaceholder, maxDomain)
	}
	return u
}

// AuthURLFor returns the authorize URL of app for a customer on MAX domain
// (standard apps and "" return the stored URL): DomainPlaceholder is replaced,
// and a URL on the app's default domain moves to the customer's. Any other URL
// (a proxy, a test server) is used as it is.
func AuthURLFor(app *models.App, domain string) string {
	if domain == "" {
		return strings.ReplaceAll(app.AuthURL, DomainPlaceholder, app.MaxDomain)
	}
	if strings.Contains(app.AuthURL, DomainPlaceholder) {
		return strings.ReplaceAll(app.AuthURL, DomainPlaceholder, domain)
	}
	u, err := url.Parse(app.AuthURL)
	if err != nil || app.MaxDomain == "" {
		return app.AuthURL
	}
	if h := strings.ToLower(u.Hostname()); h == app.MaxDomain || h == "www."+app.MaxDomain {
		u.Host = domain
		if p := u.Port(); p != "" {
			u.Host += ":" + p
		}
		return u.String()
	}
	return app.AuthURL
}

// IsMax reports whether app is a GetResponse MAX (Enterprise) app, whose
// connections each live on a MAX domain.
func IsMax(app *models.App) bool { return getresponse.Edition(app.Edition).IsMax() }

// ClientFor returns what the GetResponse client needs to act for one connection
// of app: the app's credentials and URLs with the connection's MAX domain
// (X-Domain on every token and API call, and its authorize page) and its
// X-Parent-Login. Every refresh, test call and proxied call goes through it.
func (a *Apps) ClientFor(app *models.App, id models.Identity, redirectURL string) (getresponse.App, error) {
	secret, err := a.box.Open(app.ClientSecretEnc, secrets.AAD("app", app.ID, "client_secret"))
	if err != nil {
		return getresponse.App{}, err
	}
	return getresponse.App{
		ClientID: app.ClientID, ClientSecret: secret, AuthURL: AuthURLFor(app, id.MaxDomain), APIURL: app.APIURL,
		XDomain: id.MaxDomain, ParentLogin: id.ParentLogin, RedirectURL: redirectURL,
	}, nil
}

// APIClientFor is ClientFor without the client secret, which API calls do not
// need: it stays sealed.
func APIClientFor(app *models.App, id models.Identity) getresponse.App {
	return getresponse.App{APIURL: app.APIURL, XDomain: id.MaxDomain, ParentLogin: id.ParentLogin}
}

// validLogoURL accepts an https URL (http on a local host, for trying things out).
func validLogoURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || len(s) > 500 || u.Fragment != "" {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return u.Scheme == "https" || (u.Scheme == "http" && (h == "localhost" || h == "127.0.0.1" || h == "::1"))
}

// parseSupportContact validates what customers may contact the operator at: an
// e-mail address or an http(s) URL.
func parseSupportContact(s string) (string, string) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", ""
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"):
		if !validHTTPURL(s) {
			return "", "Enter an e-mail address or an absolute http(s) URL."
		}
		return s, ""
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || len(s) > 254 {
		return "", "Enter an e-mail address or an absolute http(s) URL."
	}
	return s, ""
}
