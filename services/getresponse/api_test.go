package getresponse_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

func TestTypedCallsAgainstFake(t *testing.T) {
	s, app := newFake(t, getresponsetest.Options{})
	c := getresponse.New(s.Client())
	tok := connect(t, c, s, app)
	ctx := context.Background()

	a, resp, err := c.Account(ctx, app, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	checkExampleAccount(t, a)
	if !resp.RateLimit.Known || resp.RateLimit.Limit != 30000 || resp.RateLimit.Remaining != 29999 ||
		resp.RateLimit.Reset <= 0 || resp.RateLimit.Reset > 10*time.Minute {
		t.Errorf("RateLimit = %+v", resp.RateLimit)
	}

	ff, resp, err := c.FromFields(ctx, app, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	checkExampleFromField(t, ff)
	if resp.RateLimit.Remaining != 29998 {
		t.Errorf("Remaining = %d, want 29998", resp.RateLimit.Remaining)
	}

	cs, _, err := c.Campaigns(ctx, app, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	checkExampleCampaign(t, cs)

	for e, want := range map[getresponsetest.Endpoint]int{
		getresponsetest.EndpointAccounts: 1, getresponsetest.EndpointFromFields: 1, getresponsetest.EndpointCampaigns: 1,
		getresponsetest.EndpointTokenCode: 1, getresponsetest.EndpointTokenRefresh: 0,
	} {
		if got := s.Count(e); got != want {
			t.Errorf("Count(%d) = %d, want %d", e, got, want)
		}
	}
}

func TestListsFollowPages(t *testing.T) {
	s, app := newFake(t, getresponsetest.Options{})
	acct := getresponsetest.DefaultAccount()
	acct.FromFields = nil
	for i := range 1500 {
		acct.FromFields = append(acct.FromFields, getresponsetest.FromField{FromFieldID: fmt.Sprintf("F%d", i), Email: "a@example.com", Name: "A"})
	}
	acct.Campaigns = nil
	s.AddAccount(acct)
	c := getresponse.New(s.Client())
	tok := connect(t, c, s, app)

	ff, _, err := c.FromFields(context.Background(), app, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if len(ff) != 1500 || ff[0].FromFieldID != "F0" || ff[1499].FromFieldID != "F1499" {
		t.Errorf("got %d from-fields", len(ff))
	}
	if got := s.Count(getresponsetest.EndpointFromFields); got != 2 {
		t.Errorf("from-field calls = %d, want 2 pages", got)
	}
	cs, _, err := c.Campaigns(context.Background(), app, tok.AccessToken)
	if err != nil || cs == nil || len(cs) != 0 {
		t.Errorf("Campaigns = %v, %v; want an empty, non-nil list", cs, err)
	}
}

func TestTypedCallErrors(t *testing.T) {
	var (
		customer = getresponse.ActorCustomer
		operator = getresponse.ActorOperator
		wait     = getresponse.ActorWait
		caller   = getresponse.ActorCaller
	)
	tests := []struct {
		name       string
		failure    getresponsetest.APIFailure
		setup      func(s *getresponsetest.Server, tok *string)
		timeout    time.Duration
		wantStatus int
		wantCode   int
		wantActor  getresponse.Actor
		is, isNot  []error
	}{
		{name: "expired (switch)", failure: getresponsetest.APIExpiredToken, wantStatus: 401, wantCode: 1014, wantActor: customer,
			is: []error{getresponse.ErrTokenExpired}, isNot: []error{getresponse.ErrTransient, getresponse.ErrGrantRejected}},
		{name: "expired (all tokens)", setup: func(s *getresponsetest.Server, _ *string) { s.ExpireAccessTokens() },
			wantStatus: 401, wantCode: 1014, wantActor: customer, is: []error{getresponse.ErrTokenExpired}},
		{name: "unknown token", setup: func(_ *getresponsetest.Server, tok *string) { *tok = "not-a-token" },
			wantStatus: 401, wantCode: 1014, wantActor: customer, is: []error{getresponse.ErrTokenExpired}},
		{name: "1014 about X-Domain", failure: getresponsetest.APIXDomain, wantStatus: 401, wantCode: 1014, wantActor: operator,
			is: []error{getresponse.ErrTokenExpired, getresponse.ErrClientRejected}, isNot: []error{getresponse.ErrTransient}},
		{name: "rate limited", failure: getresponsetest.APIRateLimited, wantStatus: 429, wantCode: 1015, wantActor: wait,
			is: []error{getresponse.ErrRateLimited, getresponse.ErrTransient}},
		{name: "rate limited per second", failure: getresponsetest.APIRateLimitedPerSecond, wantStatus: 429, wantCode: 1015, wantActor: wait,
			is: []error{getresponse.ErrRateLimited, getresponse.ErrTransient}},
		{name: "rate limited window", failure: getresponsetest.APIRateLimitedWindow, wantStatus: 429, wantCode: 1015, wantActor: wait,
			is: []error{getresponse.ErrRateLimited, getresponse.ErrTransient}},
		{name: "server error", failure: getresponsetest.APIServerError, wantStatus: 500, wantCode: 1, wantActor: wait,
			is: []error{getresponse.ErrTransient}},
		{name: "unavailable", failure: getresponsetest.APIUnavailable, wantStatus: 503, wantCode: 1, wantActor: wait,
			is: []error{getresponse.ErrTransient}},
		{name: "bad gateway", failure: getresponsetest.APIBadGateway, wantStatus: 502, wantActor: wait, is: []error{getresponse.ErrTransient}},
		{name: "temporarily blocked", failure: getresponsetest.APITemporarilyBlocked, wantStatus: 403, wantCode: 1016, wantActor: wait,
			is: []error{getresponse.ErrTransient}, isNot: []error{getresponse.ErrClientRejected}},
		{name: "blocked", failure: getresponsetest.APIBlocked, wantStatus: 403, wantCode: 1017, wantActor: operator,
			is: []error{getresponse.ErrClientRejected}, isNot: []error{getresponse.ErrTransient}},
		{name: "IP blocked", failure: getresponsetest.APIIPBlocked, wantStatus: 403, wantCode: 1018, wantActor: wait,
			is: []error{getresponse.ErrTransient}, isNot: []error{getresponse.ErrClientRejected}},
		{name: "maintenance", failure: getresponsetest.APIMaintenance, wantStatus: 403, wantCode: 1019, wantActor: wait,
			is: []error{getresponse.ErrTransient}},
		{name: "invalid headers", failure: getresponsetest.APIInvalidHeaders, wantStatus: 400, wantCode: 1021, wantActor: operator,
			is: []error{getresponse.ErrClientRejected}},
		{name: "missing permissions", failure: getresponsetest.APIMissingPermissions, wantStatus: 403, wantCode: 1023, wantActor: customer,
			isNot: []error{getresponse.ErrTransient, getresponse.ErrClientRejected, getresponse.ErrGrantRejected}},
		{name: "domain not found", failure: getresponsetest.APIDomainNotFound, wantStatus: 404, wantCode: 1024, wantActor: operator,
			is: []error{getresponse.ErrClientRejected}},
		{name: "redirect, not followed", failure: getresponsetest.APIRedirect, wantStatus: 307, wantActor: wait,
			is: []error{getresponse.ErrTransient}},
		{name: "context []", failure: getresponsetest.APIContextArray, wantStatus: 400, wantCode: 1000, wantActor: caller,
			isNot: []error{getresponse.ErrTransient, getresponse.ErrTokenExpired, getresponse.ErrClientRejected}},
		{name: "context strings", failure: getresponsetest.APIContextStrings, wantStatus: 400, wantCode: 1000, wantActor: caller},
		{name: "malformed JSON", failure: getresponsetest.APIMalformedJSON, wantActor: wait, is: []error{getresponse.ErrTransient}},
		{name: "hang", failure: getresponsetest.APIHang, timeout: 200 * time.Millisecond, wantActor: wait,
			is: []error{getresponse.ErrTransient, context.DeadlineExceeded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, app := newFake(t, getresponsetest.Options{})
			c := getresponse.New(s.Client())
			tok := connect(t, c, s, app)
			access := tok.AccessToken
			if tt.setup != nil {
				tt.setup(s, &access)
			}
			s.FailAPI(tt.failure, 1)
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			ff, resp, err := c.FromFields(ctx, app, access)
			if err == nil || ff != nil {
				t.Fatalf("FromFields = %v, %v; want an error", ff, err)
			}
			var apiErr *getresponse.APIError
			if tt.wantStatus != 0 {
				if !errors.As(err, &apiErr) || apiErr.HTTPStatus != tt.wantStatus || apiErr.Code != tt.wantCode {
					t.Fatalf("error = %#v, want HTTP %d code %d", err, tt.wantStatus, tt.wantCode)
				}
				if resp == nil || resp.StatusCode != tt.wantStatus {
					t.Errorf("response = %+v", resp)
				}
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false, want true", err, target)
				}
			}
			for _, target := range tt.isNot {
				if errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = true, want false", err, target)
				}
			}
			if got := getresponse.ActorOf(err); got != tt.wantActor {
				t.Errorf("ActorOf(%v) = %q, want %q", err, got, tt.wantActor)
			}
			if n := s.Count(getresponsetest.EndpointRedirectTarget); n != 0 {
				t.Errorf("%d requests followed the redirect", n)
			}
			assertNoSecrets(t, err, tok.AccessToken, tok.RefreshToken, testClientSecret)
		})
	}
}

// TestExpiredTokenRefreshRetry is the engine's path: 401/1014, one refresh,
// the retry succeeds.
func TestExpiredTokenRefreshRetry(t *testing.T) {
	s, app := newFake(t, getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
	c := getresponse.New(s.Client())
	tok := connect(t, c, s, app)
	s.ExpireAccessTokens()

	_, resp, err := c.Account(context.Background(), app, tok.AccessToken)
	var apiErr *getresponse.APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, getresponse.ErrTokenExpired) {
		t.Fatalf("error = %v, want ErrTokenExpired", err)
	}
	if apiErr.Message != "The access token provided is expired" || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("APIError = %+v", apiErr)
	}
	next, err := c.Refresh(context.Background(), app, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Account(context.Background(), app, next.AccessToken); err != nil {
		t.Errorf("retry: %v", err)
	}
	if got := s.Count(getresponsetest.EndpointTokenRefresh); got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
}
