package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestAPIWrongMethodIs405: a known API path called with another method answers 405
// method_not_allowed with Allow; an unknown path stays 404; both after the key check.
func TestAPIWrongMethodIs405(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	for _, tc := range []struct {
		method, path, allow string
	}{
		{http.MethodGet, "/api/v1/connections/" + conn.ID + "/token", "POST"},
		{http.MethodPut, "/api/v1/connections/" + conn.ID + "/refresh", "POST"},
		{http.MethodPost, "/api/v1/connections", "GET"},
		{http.MethodPost, "/api/v1/connections/" + conn.ID, "GET, DELETE"},
		{http.MethodGet, "/api/v1/connect-sessions", "POST"},
		{http.MethodPost, "/api/v1/openapi.json", "GET"},
	} {
		r := f.call(tc.method, tc.path, nil)
		e := wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
		if got := r.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		if !strings.Contains(e.Error.Message, tc.allow) {
			t.Errorf("%s %s: message %q does not name %s", tc.method, tc.path, e.Error.Message, tc.allow)
		}
	}
	wantError(t, f.call(http.MethodGet, "/api/v1/nothing-here", nil), http.StatusNotFound, "not_found")
	wantError(t, f.call(http.MethodGet, "/api/v1/connections/"+conn.ID+"/nope", nil), http.StatusNotFound, "not_found")
	// Without a key, the key is asked for first.
	r, err := f.send(http.MethodGet, "/api/v1/connections/"+conn.ID+"/token", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, r, http.StatusUnauthorized, "unauthorized")
	// The right method still works.
	if r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", nil); r.status != http.StatusOK {
		t.Fatalf("POST …/token = %d", r.status)
	}
}
