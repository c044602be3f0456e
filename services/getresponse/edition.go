package getresponse

import (
	"errors"
	"net/url"
	"strings"
)

// Edition is the edition of a GetResponse account; it decides the API host.
type Edition string

// The GetResponse editions.
const (
	// EditionStandard is a standard getresponse.com account.
	EditionStandard Edition = "standard"
	// EditionMaxUS is a GetResponse MAX account on the .com platform.
	EditionMaxUS Edition = "max_us"
	// EditionMaxPL is a GetResponse MAX account on the .pl platform.
	EditionMaxPL Edition = "max_pl"
)

// Valid reports whether e is one of the known editions.
func (e Edition) Valid() bool {
	switch e {
	case EditionStandard, EditionMaxUS, EditionMaxPL:
		return true
	}
	return false
}

// IsMax reports whether e is a MAX edition, which needs a customer domain
// (sent as X-Domain) and authorizes on that domain.
func (e Edition) IsMax() bool {
	return e == EditionMaxUS || e == EditionMaxPL
}

// DefaultAPIURL returns the API base of an edition without a trailing slash
// (standard: https://api.getresponse.com/v3), or "" for an unknown edition.
// The token URL is the API base plus "/token".
func DefaultAPIURL(e Edition) string {
	switch e {
	case EditionStandard:
		return "https://api.getresponse.com/v3"
	case EditionMaxUS:
		return "https://api3.getresponse360.com/v3"
	case EditionMaxPL:
		return "https://api3.getresponse360.pl/v3"
	}
	return ""
}

// DefaultAuthURL returns the authorize URL of an edition: the standard one is
// https://app.getresponse.com/oauth2_authorize.html, a MAX one lives on the
// customer's own domain (https://<domain>/oauth2_authorize.html). It returns
// "" for an unknown edition or a MAX edition whose domain is not a valid host
// name.
func DefaultAuthURL(e Edition, domain string) string {
	switch {
	case e == EditionStandard:
		return "https://app.getresponse.com/oauth2_authorize.html"
	case e.IsMax():
		d, err := NormalizeDomain(domain)
		if err != nil {
			return ""
		}
		return "https://" + d + "/oauth2_authorize.html"
	}
	return ""
}

// ErrInvalidDomain is returned by NormalizeDomain for input that is not a
// host name.
var ErrInvalidDomain = errors.New("getresponse: invalid domain")

// NormalizeDomain turns what an operator pastes ("https://www.Example.com/")
// into the bare host GetResponse MAX expects in X-Domain ("example.com"):
// no scheme, path, port or "www." prefix, lowercase. It returns an error
// wrapping ErrInvalidDomain when the result is not a valid ASCII host name of
// at least two labels (internationalized names must be given in punycode).
func NormalizeDomain(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", ErrInvalidDomain
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.User != nil || u.Port() != "" {
			return "", ErrInvalidDomain
		}
		s = u.Host
	} else if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(s, ".")
	s = strings.TrimPrefix(s, "www.")
	if !validHostName(s) {
		return "", ErrInvalidDomain
	}
	return s, nil
}

// validHostName checks RFC 1123 syntax and requires a dot, since a MAX domain
// is always a public name.
func validHostName(s string) bool {
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	// An all-numeric top label means an IP address, not a domain.
	tld := labels[len(labels)-1]
	return strings.Trim(tld, "0123456789") != ""
}
