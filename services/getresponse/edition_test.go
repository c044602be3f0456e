package getresponse_test

import (
	"errors"
	"testing"

	"github.com/grconnect/grconnect/services/getresponse"
)

func TestEdition(t *testing.T) {
	tests := []struct {
		e                getresponse.Edition
		valid, max       bool
		apiURL, authURL  string
		domainForAuthURL string
	}{
		{getresponse.EditionStandard, true, false, "https://api.getresponse.com/v3", "https://app.getresponse.com/oauth2_authorize.html", ""},
		{getresponse.EditionMaxUS, true, true, "https://api3.getresponse360.com/v3", "https://example.com/oauth2_authorize.html", "https://www.Example.com/"},
		{getresponse.EditionMaxPL, true, true, "https://api3.getresponse360.pl/v3", "https://firma.pl/oauth2_authorize.html", "firma.pl"},
		{getresponse.EditionMaxPL, true, true, "https://api3.getresponse360.pl/v3", "", "not a domain"},
		{"", false, false, "", "", ""},
		{"max", false, false, "", "", "example.com"},
	}
	for _, tt := range tests {
		t.Run(string(tt.e)+"/"+tt.domainForAuthURL, func(t *testing.T) {
			if got := tt.e.Valid(); got != tt.valid {
				t.Errorf("Valid() = %v, want %v", got, tt.valid)
			}
			if got := tt.e.IsMax(); got != tt.max {
				t.Errorf("IsMax() = %v, want %v", got, tt.max)
			}
			if got := getresponse.DefaultAPIURL(tt.e); got != tt.apiURL {
				t.Errorf("DefaultAPIURL() = %q, want %q", got, tt.apiURL)
			}
			if got := getresponse.DefaultAuthURL(tt.e, tt.domainForAuthURL); got != tt.authURL {
				t.Errorf("DefaultAuthURL() = %q, want %q", got, tt.authURL)
			}
		})
	}
}

func TestNormalizeDomain(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"https://www.Example.com/", "example.com"},
		{"example.com", "example.com"},
		{"  EXAMPLE.com  ", "example.com"},
		{"http://news.example.co.uk/path?q=1", "news.example.co.uk"},
		{"www.example.com/some/page", "example.com"},
		{"example.com.", "example.com"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"my-shop.example.com", "my-shop.example.com"},
		{"", ""},
		{"localhost", ""},
		{"https://", ""},
		{"exa mple.com", ""},
		{"-bad.example.com", ""},
		{"bad-.example.com", ""},
		{"a..b.com", ""},
		{"bücher.example", ""},
		{"192.168.1.1", ""},
		{"https://example.com:8443/", ""},
		{"https://user:pw@example.com/", ""},
		{"example.com:8443", ""},
		{"<script>.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := getresponse.NormalizeDomain(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("NormalizeDomain(%q) = %q, want an error", tt.in, got)
				}
				if !errors.Is(err, getresponse.ErrInvalidDomain) {
					t.Errorf("error %v is not ErrInvalidDomain", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}
