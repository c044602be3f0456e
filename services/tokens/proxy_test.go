package tokens_test

import (
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/tokens"
)

func TestCleanProxyPath(t *testing.T) {
	for in, want := range map[string]string{
		"/from-fields":                 "/from-fields",
		"/contacts/abc.def/activities": "/contacts/abc.def/activities",
		"/from-fields/":                "/from-fields/",
		"/search-contacts/x:y@z":       "/search-contacts/x:y@z",
		"/a%41b":                       "/aAb", // a harmless encoding is decoded
		"/v3..x/..y":                   "/v3..x/..y",
	} {
		got, err := tokens.CleanProxyPath(in)
		if err != nil || got != want {
			t.Errorf("%q = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "/", "from-fields", "//x", "/a//b", "/..", "/.", "/a/../b", "/a/./b",
		"/%2e%2e", "/%2E", "/.%2e", "/a%2fb", "/a%2F..", "/a%5cb", `/a\b`, "/%252e%252e", "/a%25",
		"/a;b", "/a%00", "/a%0a", "/a b", "/a%20b", "/%C3%A9", "/a%zz", "/https://evil.example", "/a?b", "/a#b",
	} {
		if got, err := tokens.CleanProxyPath(in); err == nil {
			t.Errorf("%q passed as %q", in, got)
		} else if fe, ok := models.AsFieldErrors(err); !ok || fe["path"] == "" {
			t.Errorf("%q: %v, want a path field error", in, err)
		}
	}
}
