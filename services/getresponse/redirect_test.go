package getresponse_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/getresponse"
)

// TestNoRedirectIsFollowed: whatever the caller's *http.Client does, a token
// call, an API call or a forwarded call that is answered 3xx stops there, so
// the refresh token, the code, the Basic credentials and the access token
// never reach the redirect's target.
func TestNoRedirectIsFollowed(t *testing.T) {
	const (
		refresh = "refresh-token-0123456789"
		code    = "code-0123456789abcdef"
		access  = "access-token-0123456789"
	)
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			target := &recorder{next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"access_token":"stolen","token_type":"Bearer","expires_in":3600}`)
			})}
			targetSrv := httptest.NewServer(target)
			t.Cleanup(targetSrv.Close)
			origin := &recorder{next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, targetSrv.URL+r.URL.Path, status)
			})}
			originSrv := httptest.NewServer(origin)
			t.Cleanup(originSrv.Close)

			// The redirect is real: a client that follows it leaks the request.
			res, err := http.Post(originSrv.URL+"/v3/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if len(target.all()) != 1 {
				t.Fatalf("a plain client reached the target %d times, want 1", len(target.all()))
			}
			target.reset()
			origin.reset()

			// A caller's client that follows everything: New's copy must not.
			follow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
			c := getresponse.New(follow)
			app := getresponse.App{ClientID: testClientID, ClientSecret: testClientSecret, APIURL: originSrv.URL + "/v3", XDomain: "example.com"}
			ctx := context.Background()
			wantDesc := fmt.Sprintf("the token endpoint answered a redirect (HTTP %d) to another address; check the app's API URL", status)
			token := map[string]func() error{
				"exchange": func() error { _, err := c.Exchange(ctx, app, code); return err },
				"refresh":  func() error { _, err := c.Refresh(ctx, app, refresh); return err },
				"check":    func() error { return c.CheckCredentials(ctx, app) },
			}
			for op, call := range token {
				err := call()
				var te *getresponse.TokenError
				if !errors.As(err, &te) || te.Op != op || te.Kind != getresponse.KindRedirected || te.HTTPStatus != status || te.Description != wantDesc {
					t.Errorf("%s: %#v", op, err)
				}
				checkActorSentinels(t, err, getresponse.ActorWait)
				assertNoSecrets(t, err, refresh, code, testClientSecret, targetSrv.URL)
			}

			resp, err := c.Do(ctx, app, access, http.MethodGet, "/accounts", nil, nil)
			var apiErr *getresponse.APIError
			if !errors.As(err, &apiErr) || apiErr.HTTPStatus != status || resp == nil || resp.StatusCode != status {
				t.Errorf("Do: %v, %+v", err, resp)
			}
			if getresponse.ActorOf(err) != getresponse.ActorWait {
				t.Errorf("Do: actor %q", getresponse.ActorOf(err))
			}

			// With GetBody, net/http could re-send even a 307's body: it must not.
			body := `{"email":"a@example.com"}`
			fres, err := c.Forward(ctx, app, access, getresponse.ForwardRequest{Method: http.MethodPost, Path: "/contacts",
				Body: strings.NewReader(body), ContentLength: int64(len(body)),
				GetBody: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }})
			if err != nil {
				t.Fatalf("Forward: %v", err)
			}
			fres.Body.Close()
			if fres.StatusCode != status || !strings.HasPrefix(fres.Header.Get("Location"), targetSrv.URL) {
				t.Errorf("Forward answered %d, Location %q; want the redirect as it is", fres.StatusCode, fres.Header.Get("Location"))
			}

			if got := len(origin.all()); got != 5 {
				t.Errorf("the origin saw %d requests, want 5", got)
			}
			for _, r := range target.all() {
				t.Errorf("the redirect target received %s with Authorization %q, X-Domain %q and body %q",
					r.path, r.header.Get("Authorization"), r.header.Get("X-Domain"), r.body)
			}
		})
	}
}

// TestNewLeavesTheCallersClientAlone: New copies the client it is given.
func TestNewLeavesTheCallersClientAlone(t *testing.T) {
	hc := &http.Client{}
	getresponse.New(hc)
	if hc.CheckRedirect != nil {
		t.Error("New changed the caller's CheckRedirect")
	}
}
