package getresponse_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/getresponse"
)

func TestBackoffAfter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		want   time.Duration
	}{
		{"quota spent: until the window resets", 429, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "100 seconds", "Retry-After": "1"}, 100 * time.Second},
		{"quota left: a per-second limit", 429, map[string]string{"X-RateLimit-Remaining": "29000", "X-RateLimit-Reset": "400 seconds", "Retry-After": "1"}, time.Second},
		{"quota left, no Retry-After", 429, map[string]string{"X-RateLimit-Remaining": "5"}, time.Second},
		{"no headers but Retry-After", 429, map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{"bare 429", 429, nil, time.Second},
		{"the window's last call", 200, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "42 seconds"}, 42 * time.Second},
		{"an ordinary answer", 200, map[string]string{"X-RateLimit-Remaining": "29999", "X-RateLimit-Reset": "42 seconds"}, 0},
		{"an error with no limit headers", 500, nil, 0},
	} {
		h := http.Header{}
		for k, v := range tc.header {
			h.Set(k, v)
		}
		if got := getresponse.BackoffAfter(tc.status, h); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

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
