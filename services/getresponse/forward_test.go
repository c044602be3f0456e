package getresponse_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/getresponse"
)

func TestIsTokenExpired(t *testing.T) {
	env := `{"httpStatus":401,"code":1014,"message":"The access token provided is expired"}`
	for _, tc := range []struct {
		status int
		body   string
		want   bool
	}{
		{401, env, true},
		{403, strings.Replace(env, "401", "403", 1), true},
		{401, `{"code":1018,"message":"IP blocked"}`, false},
		{404, env, false},
		{401, "<html>nope</html>", false},
	} {
		if got := getresponse.IsTokenExpired(tc.status, []byte(tc.body)); got != tc.want {
			t.Errorf("%d %s = %v", tc.status, tc.body, got)
		}
	}
}

func TestForwardStaysOnTheAPIBase(t *testing.T) {
	var seen *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c := getresponse.New(srv.Client())
	app := getresponse.App{APIURL: srv.URL + "/v3", XDomain: "example.com"}
	res, err := c.Forward(context.Background(), app, "tok", getresponse.ForwardRequest{
		Method: http.MethodGet, Path: "/contacts", RawQuery: "a=1",
		Header: http.Header{"X-Domain": {"evil.example"}, "Accept": {"application/json"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if seen.URL.Path != "/v3/contacts" || seen.URL.RawQuery != "a=1" || seen.Header.Get("Authorization") != "Bearer tok" ||
		seen.Header.Values("X-Domain")[0] != "example.com" || len(seen.Header.Values("X-Domain")) != 1 || seen.Header.Get("Accept") != "application/json" {
		t.Fatalf("forwarded %s?%s with %v", seen.URL.Path, seen.URL.RawQuery, seen.Header)
	}
	for _, path := range []string{"contacts", "@evil.example/x", "/../x", "//evil.example/x"} {
		_, err := c.Forward(context.Background(), app, "tok", getresponse.ForwardRequest{Method: http.MethodGet, Path: path})
		if !errors.Is(err, getresponse.ErrOffBase) {
			t.Errorf("path %q: %v, want ErrOffBase", path, err)
		}
	}
}
