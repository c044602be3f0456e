package models

import (
	"net/url"
	"strings"
)

// DomainPlaceholder in a MAX app's authorize URL stands for the connecting
// customer's MAX domain: https://{domain}/oauth2_authorize.html.
const DomainPlaceholder = "{domain}"

// AuthURLFor returns the authorize URL of the app for a customer on MAX domain
// (standard apps and "" return the stored URL): DomainPlaceholder is replaced,
// and a URL on the app's default domain moves to the customer's. Any other URL
// (a proxy, a test server) is used as it is.
func (app *App) AuthURLFor(domain string) string {
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
