package handlers_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestAPIErrorsNameTheCausingApp: when the app, not the customer, is why a token
// cannot be refreshed, the API's refresh and token answers say so with a code of
// their own and the app — from the failing refresh itself; afterwards a token
// request answers from the app's health without another call to GetResponse,
// while an explicit refresh is the app's probe: one call, and its failure names
// the app again.
func TestAPIErrorsNameTheCausingApp(t *testing.T) {
	for _, tc := range []struct {
		failure getresponsetest.TokenFailure
		status  int
		code    string
		health  models.AppHealth
		conns   int // connections that must fail before the app is the cause
	}{
		{getresponsetest.TokenInvalidClient, http.StatusConflict, "app_credentials_rejected", models.AppCredentialsRejected, 1},
		{getresponsetest.TokenDomainNotFound, http.StatusConflict, "app_misconfigured", models.AppMisconfigured, 1},
		{getresponsetest.TokenIPBlocked, http.StatusServiceUnavailable, "getresponse_refusing", models.AppRefused, 3},
	} {
		t.Run(tc.code, func(t *testing.T) {
			f := newAPIFixture(t, getresponsetest.Options{})
			var ids []string
			for i := range tc.conns {
				account := f.fake.AddAccount(getresponsetest.Account{AccountID: fmt.Sprintf("acct%d", i), Email: fmt.Sprintf("c%d@example.com", i)})
				c := f.connect(fmt.Sprintf("customer-%d", i), account)
				f.age(c.ID, time.Hour)
				ids = append(ids, c.ID)
			}
			f.fake.FailToken(tc.failure, -1)
			var last response
			for _, id := range ids {
				last = f.call(http.MethodPost, "/api/v1/connections/"+id+"/refresh", nil)
			}
			check := func(what string, r response) {
				t.Helper()
				e := wantError(t, r, tc.status, tc.code)
				if e.Error.App == nil || e.Error.App.ID != f.appID || e.Error.App.Health != string(tc.health) {
					t.Fatalf("%s: the error's app = %+v, want %s in %s", what, e.Error.App, f.appID, tc.health)
				}
			}
			if tc.conns == 1 {
				check("the failing refresh", last)
			}
			calls := f.fake.Count(getresponsetest.EndpointTokenRefresh)
			f.expireIn(ids[0], -time.Minute) // expired: a token request cannot hand out the old one
			check("a token request afterwards", f.call(http.MethodPost, "/api/v1/connections/"+ids[0]+"/token", nil))
			if n := f.fake.Count(getresponsetest.EndpointTokenRefresh) - calls; n != 0 {
				t.Fatalf("%d refresh calls for a token request while the app is known to be the cause", n)
			}
			check("a refresh afterwards (the app's probe)", f.call(http.MethodPost, "/api/v1/connections/"+ids[0]+"/refresh", nil))
			if n := f.fake.Count(getresponsetest.EndpointTokenRefresh) - calls; n != 1 {
				t.Fatalf("an explicit refresh of a paused app's connection made %d refresh calls, want 1 (the probe)", n)
			}
		})
	}
}

// TestThirtyDisconnectsAtOnceRecordOnce: the same DELETE thirty times at once all
// succeed, and the timeline, the webhook outbox and the audit log hold one
// disconnect.
func TestThirtyDisconnectsAtOnceRecordOnce(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 30 {
		wg.Go(func() {
			<-start
			if r := f.call(http.MethodDelete, "/api/v1/connections/"+conn.ID, nil); r.status != http.StatusOK {
				t.Errorf("DELETE = %d %s", r.status, r.body)
			}
		})
	}
	close(start)
	wg.Wait()
	var events, audits int64
	f.store.DB().Model(&models.Event{}).Where("connection_id = ? AND type = ?", conn.ID, models.EventDisconnected).Count(&events)
	f.store.DB().Table("audit_log").Where("target_id = ? AND action = ?", conn.ID, models.AuditDisconnected).Count(&audits)
	if events != 1 || audits != 1 {
		t.Fatalf("30 disconnects at once: %d events, %d audit entries; want 1 and 1", events, audits)
	}
}
