package models_test

import (
	"testing"

	"github.com/grconnect/grconnect/models"
)

func TestAuthURLFor(t *testing.T) {
	cases := []struct {
		name, authURL, appDomain, domain, want string
	}{
		{"placeholder", "https://{domain}/oauth2_authorize.html", "", "alpha.example.com", "https://alpha.example.com/oauth2_authorize.html"},
		{"placeholder in the query", "http://127.0.0.1:9/oauth2_authorize.html?domain={domain}", "", "b.example.com", "http://127.0.0.1:9/oauth2_authorize.html?domain=b.example.com"},
		{"the app's default domain moves to the customer's", "https://example.com/oauth2_authorize.html", "example.com", "other.example.org", "https://other.example.org/oauth2_authorize.html"},
		{"www of the default domain", "https://www.example.com/oauth2_authorize.html", "example.com", "c.example.org", "https://c.example.org/oauth2_authorize.html"},
		{"the default domain itself", "https://example.com/oauth2_authorize.html", "example.com", "example.com", "https://example.com/oauth2_authorize.html"},
		{"a proxy stays", "https://proxy.internal/authorize", "example.com", "d.example.org", "https://proxy.internal/authorize"},
		{"standard", "https://app.getresponse.com/oauth2_authorize.html", "", "", "https://app.getresponse.com/oauth2_authorize.html"},
		{"no domain yet: the default's", "https://{domain}/oauth2_authorize.html", "example.com", "", "https://example.com/oauth2_authorize.html"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := &models.App{Edition: "max_us", AuthURL: tc.authURL, MaxDomain: tc.appDomain}
			if got := app.AuthURLFor(tc.domain); got != tc.want {
				t.Errorf("AuthURLFor(%q, %q) = %q, want %q", tc.authURL, tc.domain, got, tc.want)
			}
		})
	}
}
