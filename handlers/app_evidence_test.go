package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// countEvents counts events of a type for a connection ("" for the app's own).
func countEvents(t testing.TB, store *models.Store, appID, connID string, typ models.EventType) int64 {
	t.Helper()
	q := store.DB().Model(&models.Event{}).Where("type = ?", typ)
	if connID != "" {
		q = q.Where("connection_id = ?", connID)
	} else {
		q = q.Where("app_id = ? AND connection_id IS NULL", appID)
	}
	var n int64
	if err := q.Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestForcedRefreshIsThePausedAppsProbe: after GetResponse answered invalid_client
// once and then works again, one POST …/refresh heals the app. While it still
// refuses, a forced refresh of any of the app's connections is the app's probe:
// concurrent ones share one call and all answer 409 naming the cause. Once it
// works, concurrent forced refreshes heal the app with one app.recovered, and each
// connection whose refresh was paused gets one refresh.resumed.
func TestForcedRefreshIsThePausedAppsProbe(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	var ids []string
	for i := range 3 {
		account := f.fake.AddAccount(getresponsetest.Account{AccountID: fmt.Sprintf("P%d", i), Email: fmt.Sprintf("p%d@example.com", i)})
		ids = append(ids, f.connect(fmt.Sprintf("customer-%d", i), account).ID)
		f.age(ids[i], time.Hour) // no cooldown could explain a refresh held back
	}
	refresh := func(id string) response {
		r, err := f.send(http.MethodPost, "/api/v1/connections/"+id+"/refresh", f.key, nil, nil)
		if err != nil {
			t.Error(err)
		}
		return r
	}
	appHealth := func() models.AppHealth {
		app, _ := f.store.AppByID(t.Context(), f.appID)
		return app.Health
	}

	// An incident at GetResponse: one invalid_client, then it works again.
	f.fake.FailToken(getresponsetest.TokenInvalidClient, 1)
	wantError(t, refresh(ids[0]), http.StatusConflict, "app_credentials_rejected")
	if h := appHealth(); h != models.AppCredentialsRejected {
		t.Fatalf("after invalid_client the app is %q", h)
	}
	calls := f.fake.Count(getresponsetest.EndpointTokenRefresh)
	if r := refresh(ids[0]); r.status != http.StatusOK {
		t.Fatalf("the forced refresh after invalid_client cleared = %d %s", r.status, r.body)
	}
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh) - calls; n != 1 || appHealth() != models.AppHealthy ||
		countEvents(t, f.store, f.appID, "", models.EventAppRecovered) != 1 {
		t.Fatalf("one forced refresh: %d calls, app %q, %d app.recovered; want 1, ok, 1", n, appHealth(), countEvents(t, f.store, f.appID, "", models.EventAppRecovered))
	}
	if n := countEvents(t, f.store, "", ids[0], models.EventRefreshResumed); n != 1 {
		t.Fatalf("the paused connection has %d refresh.resumed events, want 1", n)
	}
	resumed := map[string]int64{}
	for _, id := range ids {
		resumed[id] = countEvents(t, f.store, "", id, models.EventRefreshResumed)
	}
	var lastEvent int64
	f.store.DB().Model(&models.Event{}).Select("COALESCE(MAX(id), 0)").Scan(&lastEvent)

	// Now GetResponse keeps refusing. The first refusal marks the app; the second
	// connection's forced refresh probes it (one call) and names the cause.
	f.fake.FailToken(getresponsetest.TokenInvalidClient, -1)
	wantError(t, refresh(ids[0]), http.StatusConflict, "app_credentials_rejected")
	calls = f.fake.Count(getresponsetest.EndpointTokenRefresh)
	e := wantError(t, refresh(ids[1]), http.StatusConflict, "app_credentials_rejected")
	if e.Error.App == nil || e.Error.App.ID != f.appID || f.fake.Count(getresponsetest.EndpointTokenRefresh)-calls != 1 {
		t.Fatalf("the probe: app %+v, %d calls; want the app named and 1 call", e.Error.App, f.fake.Count(getresponsetest.EndpointTokenRefresh)-calls)
	}
	// Twelve at once over the three connections: one probe, its answer for all.
	f.fake.SetTokenLatency(500 * time.Millisecond)
	fire := func() []response {
		var wg sync.WaitGroup
		start := make(chan struct{})
		out := make([]response, 12)
		for i := range out {
			wg.Go(func() {
				<-start
				out[i] = refresh(ids[i%3])
			})
		}
		close(start)
		wg.Wait()
		return out
	}
	calls = f.fake.Count(getresponsetest.EndpointTokenRefresh)
	for _, r := range fire() {
		wantError(t, r, http.StatusConflict, "app_credentials_rejected")
	}
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh) - calls; n != 1 {
		t.Fatalf("12 concurrent forced refreshes of a paused app made %d token calls, want 1 probe", n)
	}
	paused := map[string]bool{} // paused in this episode
	for _, id := range ids {
		var n int64
		f.store.DB().Model(&models.Event{}).Where("connection_id = ? AND type = ? AND id > ?", id, models.EventRefreshPaused, lastEvent).Count(&n)
		paused[id] = n > 0
	}
	if !paused[ids[0]] || !paused[ids[1]] {
		t.Fatalf("refresh.paused on the timelines: %v", paused)
	}

	// GetResponse accepts the app again: the concurrent forced refreshes heal it.
	f.fake.FailToken(getresponsetest.TokenOK, 0)
	for i, r := range fire() {
		if r.status != http.StatusOK {
			t.Fatalf("forced refresh %d after the fix = %d %s", i, r.status, r.body)
		}
	}
	if h := appHealth(); h != models.AppHealthy {
		t.Fatalf("after the fix the app is %q", h)
	}
	if n := countEvents(t, f.store, f.appID, "", models.EventAppRecovered); n != 2 {
		t.Fatalf("%d app.recovered events in all, want 2 (one per episode)", n)
	}
	for _, id := range ids {
		want := int64(0)
		if paused[id] {
			want = 1
		}
		// One per connection the episode paused.
		if n := countEvents(t, f.store, "", id, models.EventRefreshResumed) - resumed[id]; n != want {
			t.Errorf("%s: %d refresh.resumed events from the second episode, want %d", id, n, want)
		}
		if c, _ := f.store.ConnectionByID(t.Context(), id); c.Status != models.StatusActive || c.LastError != "" {
			t.Errorf("%s after the fix: %s %q", id, c.Status, c.LastError)
		}
	}
}

// TestRefusedClientCredentialsGrantChangesNoHealth: when GetResponse refuses the
// client_credentials grant itself (unsupported_grant_type, unauthorized_client),
// Check credentials and saving the app form say the credentials cannot be checked
// with this grant, and nothing changes: the working app keeps refreshing, on
// request and in the background.
func TestRefusedClientCredentialsGrantChangesNoHealth(t *testing.T) {
	for _, tc := range []struct {
		refusal getresponsetest.GrantRefusal
		code    string
	}{{getresponsetest.GrantUnsupported, "unsupported_grant_type"}, {getresponsetest.GrantUnauthorized, "unauthorized_client"}} {
		t.Run(tc.code, func(t *testing.T) {
			f := newAPIFixture(t, getresponsetest.Options{})
			conn := f.connect("customer-1", "")
			f.fake.RefuseClientCredentials(tc.refusal)
			healthy := func(what string) {
				t.Helper()
				if app, _ := f.store.AppByID(t.Context(), f.appID); app.Health != models.AppHealthy {
					t.Fatalf("%s: app health %q (%s)", what, app.Health, app.HealthReason)
				}
			}

			r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/check", url.Values{})
			page := f.op.get(r.location())
			mustContain(t, page.body, "Cannot check with this grant", tc.code, `flash-warning`)
			mustNotContain(t, page.body, `data-testid="app-health-banner"`)
			healthy("after Check credentials")

			// A new secret, registered at GetResponse, saved through the form.
			f.fake.AddClient(f.clientID, "a-rotated-secret-0123456789", f.cfg.RedirectURL())
			edit := appForm("Acme Templates")
			edit.Set("client_id", f.clientID)
			edit.Set("client_secret", "a-rotated-secret-0123456789")
			r = f.op.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", edit)
			if r.status != http.StatusSeeOther {
				t.Fatalf("saving the form = %d\n%s", r.status, r.body)
			}
			mustContain(t, f.op.get(r.location()).body, "Changes saved", "Cannot check with this grant")
			healthy("after saving the form")

			// The app works: a forced refresh, then the refresher's.
			if r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/refresh", nil); r.status != http.StatusOK {
				t.Fatalf("forced refresh = %d %s", r.status, r.body)
			}
			calls := f.fake.Count(getresponsetest.EndpointTokenRefresh)
			f.age(conn.ID, time.Hour)
			f.expireIn(conn.ID, 5*time.Minute)
			if n, err := f.built.Refresher.RunOnce(t.Context()); err != nil || n != 1 || f.fake.Count(getresponsetest.EndpointTokenRefresh) != calls+1 {
				t.Fatalf("the refresher: %d refreshed (%v), %d calls", n, err, f.fake.Count(getresponsetest.EndpointTokenRefresh)-calls)
			}
			healthy("after the refreshes")
		})
	}
}
