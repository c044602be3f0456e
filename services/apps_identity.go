package services

import (
	"net/mail"
	"net/url"
	"strings"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
)

// defaultMaxAuthURL is a MAX edition's authorize URL: on the app's default domain
// when it has one (as apps made before per-customer domains stored it), else on
// each customer's own.
func defaultMaxAuthURL(e getresponse.Edition, domain string) string {
	if domain == "" {
		return "https://" + models.DomainPlaceholder + "/oauth2_authorize.html"
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
	if strings.Contains(u, models.DomainPlaceholder) {
		if maxDomain == "" {
			return ""
		}
		u = strings.ReplaceAll(u, models.DomainPlaceholder, maxDomain)
	}
	return u
}

// IsMax reports whether app is a GetResponse MAX (Enterprise) app, whose
// connections each live on a MAX domain.
func IsMax(app *models.App) bool { return getresponse.Edition(app.Edition).IsMax() }

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
