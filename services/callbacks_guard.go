package services

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// GuardedAPIClient returns the HTTP client for the GetResponse calls grconnect
// makes on its own for a connection (registering and removing its callbacks):
// dialled through the address guard, never following a redirect. Loopback and
// private addresses are allowed only for the hosts of the URLs named in the
// server's own settings (trustedURLs: GRCONNECT_GETRESPONSE_*_URL), so an app's
// API URL pointed at an internal address gets nothing sent there.
func GuardedAPIClient(timeout time.Duration, trustedURLs ...string) *http.Client {
	hosts := map[string]bool{}
	for _, u := range trustedURLs {
		if p, err := url.Parse(u); err == nil && p.Hostname() != "" {
			hosts[strings.ToLower(p.Hostname())] = true
		}
	}
	strict := guardedClient(timeout, func() bool { return false })
	trusted := guardedClient(timeout, func() bool { return true })
	return &http.Client{Timeout: timeout, CheckRedirect: noRedirects, Transport: hostRoute{
		trusted: hosts, strict: strict.Transport, lenient: trusted.Transport}}
}

// hostRoute sends a request through lenient when its host is trusted, else strict.
type hostRoute struct {
	trusted         map[string]bool
	strict, lenient http.RoundTripper
}

func (h hostRoute) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.trusted[strings.ToLower(r.URL.Hostname())] {
		return h.lenient.RoundTrip(r)
	}
	return h.strict.RoundTrip(r)
}
