package getresponse_test

import (
	"context"
	"errors"
	"maps"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

func TestCheckCredentials(t *testing.T) {
	f := getresponsetest.New(getresponsetest.Options{})
	f.AddClient(testClientID, testClientSecret, testRedirect)
	rec := &recorder{next: f}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	t.Cleanup(f.Close)
	app := getresponse.App{ClientID: testClientID, ClientSecret: testClientSecret, APIURL: srv.URL + "/v3"}
	c := getresponse.New(srv.Client())

	if err := c.CheckCredentials(context.Background(), app); err != nil {
		t.Fatalf("CheckCredentials with the right secret: %v", err)
	}
	reqs := rec.all()
	if len(reqs) != 1 || f.Count(getresponsetest.EndpointTokenClientCredentials) != 1 {
		t.Fatalf("%d requests, %d client_credentials calls; want 1 and 1", len(reqs), f.Count(getresponsetest.EndpointTokenClientCredentials))
	}
	r := reqs[0]
	form, err := url.ParseQuery(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if r.path != "/v3/token" || form.Get("grant_type") != "client_credentials" || len(form) != 1 {
		t.Errorf("request %s %q, want only grant_type=client_credentials", r.path, r.body)
	}
	if !strings.HasPrefix(r.header.Get("Authorization"), "Basic ") || strings.Contains(r.body, url.QueryEscape(testClientSecret)) {
		t.Errorf("credentials not (only) in Basic auth: %q, body %q", r.header.Get("Authorization"), r.body)
	}
	// The token went to the first account, with no refresh token.
	if got := f.DomainCalls(); got[getresponsetest.DomainCall{ClientID: testClientID, AccountID: getresponsetest.DefaultAccountID}] != 1 {
		t.Errorf("DomainCalls = %v", got)
	}

	const wrong = "wrong-secret-value-42"
	bad := app
	bad.ClientSecret = wrong
	err = c.CheckCredentials(context.Background(), bad)
	var te *getresponse.TokenError
	if !errors.As(err, &te) || te.Op != "check" || te.Kind != getresponse.KindInvalidClient || te.HTTPStatus != 401 {
		t.Errorf("wrong secret: %#v", err)
	}
	checkActorSentinels(t, err, getresponse.ActorOperator)
	assertNoSecrets(t, err, wrong, url.QueryEscape(wrong), testClientSecret, url.QueryEscape(testClientSecret))

	unknown := app
	unknown.ClientID = "someone else"
	if err := c.CheckCredentials(context.Background(), unknown); !errors.Is(err, getresponse.ErrClientRejected) {
		t.Errorf("unknown client: %v, want ErrClientRejected", err)
	}

	f.FailToken(getresponsetest.TokenUnauthorizedClient, 1)
	if err := c.CheckCredentials(context.Background(), app); !errors.As(err, &te) || te.Kind != getresponse.KindUnauthorizedClient {
		t.Errorf("unauthorized_client: %v", err)
	}
	f.FailToken(getresponsetest.TokenUnavailable, 1)
	err = c.CheckCredentials(context.Background(), app)
	checkActorSentinels(t, err, getresponse.ActorWait)

	closed := httptest.NewServer(nil)
	closed.Close()
	down := app
	down.APIURL = closed.URL + "/v3"
	err = c.CheckCredentials(context.Background(), down)
	if !errors.As(err, &te) || te.Kind != getresponse.KindTransient {
		t.Errorf("unreachable: %#v", err)
	}
	checkActorSentinels(t, err, getresponse.ActorWait)
	assertNoSecrets(t, err, testClientSecret, url.QueryEscape(testClientSecret))
}

// TestCheckCredentialsPerClientAndMax: one app's broken credentials do not
// break another's, and a MAX app's check carries its X-Domain and is
// answered for the account that owns the app.
func TestCheckCredentialsPerClientAndMax(t *testing.T) {
	s, app := newFake(t, getresponsetest.Options{})
	owner := s.AddAccount(getresponsetest.Account{AccountID: "MaxOwner", Domain: "Shop.Example.com", Email: "owner@shop.example.com"})
	s.AddClient("max-app", "max-secret", testRedirect)
	if err := s.SetClientOwner("max-app", owner); err != nil {
		t.Fatal(err)
	}
	maxApp := getresponse.App{ClientID: "max-app", ClientSecret: "max-secret", APIURL: s.APIURL(), XDomain: "shop.example.com"}
	c := getresponse.New(s.Client())

	s.FailTokenFor(testClientID, getresponsetest.TokenInvalidClient, -1)
	if err := c.CheckCredentials(context.Background(), app); !errors.Is(err, getresponse.ErrClientRejected) {
		t.Errorf("the broken app: %v, want ErrClientRejected", err)
	}
	if err := c.CheckCredentials(context.Background(), maxApp); err != nil {
		t.Errorf("the other app: %v", err)
	}
	noDomain := maxApp
	noDomain.XDomain = ""
	err := c.CheckCredentials(context.Background(), noDomain)
	var te *getresponse.TokenError
	if !errors.As(err, &te) || te.Kind != getresponse.KindMisconfigured || te.Code != "1014" {
		t.Errorf("MAX app without X-Domain: %#v", err)
	}
	s.FailTokenFor(testClientID, getresponsetest.TokenOK, 0)
	if err := c.CheckCredentials(context.Background(), app); err != nil {
		t.Errorf("the repaired app: %v", err)
	}
	want := map[getresponsetest.DomainCall]int{
		{ClientID: testClientID, AccountID: getresponsetest.DefaultAccountID}: 2,
		{ClientID: "max-app", AccountID: owner, XDomain: "shop.example.com"}:  1,
		{ClientID: "max-app", AccountID: owner}:                               1,
	}
	if got := s.DomainCalls(); !maps.Equal(got, want) {
		t.Errorf("DomainCalls = %v, want %v", got, want)
	}
	if got := s.Stat(getresponsetest.StatRefusedDomain); got != 1 {
		t.Errorf("StatRefusedDomain = %d, want 1", got)
	}
}
