package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/config"
)

func TestRefreshNowWithAndWithoutRotation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		rotation    getresponsetest.Rotation
		wantRotated bool
	}{
		{"same refresh token", getresponsetest.RotationNone, false},
		{"rotated", getresponsetest.RotationRotate, true},
		{"rotated, old dies at once", getresponsetest.RotationStrict, true},
		{"no refresh token returned", getresponsetest.RotationOmit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newConnectFixture(t, getresponsetest.Options{Rotation: tc.rotation})
			conn := f.connect("customer-1", "")
			access1, refresh1 := f.plaintextTokens(conn.ID)
			for i := range 2 { // twice: the second refresh must use what the first stored
				r := f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
				if r.status != http.StatusSeeOther {
					t.Fatalf("refresh %d = %d", i, r.status)
				}
				page := f.op.get("/connections/" + conn.ID)
				mustContain(t, page.body, "Refreshed. The new access token is valid until")
			}
			access2, refresh2 := f.plaintextTokens(conn.ID)
			if access2 == access1 {
				t.Error("access token did not change")
			}
			if (refresh2 != refresh1) != tc.wantRotated {
				t.Errorf("refresh token changed = %v, want %v", refresh2 != refresh1, tc.wantRotated)
			}
			if refresh2 == "" {
				t.Error("refresh token lost")
			}
			got, _ := f.store.ConnectionByID(t.Context(), conn.ID)
			if got.Status != models.StatusActive || got.FailureCount != 0 || got.TokenFingerprint == conn.TokenFingerprint {
				t.Errorf("after refresh: %+v", got)
			}
			if n := f.fake.Count(getresponsetest.EndpointTokenRefresh); n != 2 {
				t.Errorf("fake saw %d refreshes, want 2", n)
			}
			mustContain(t, f.op.get("/").body, "2 refreshes in 7 days: 2 succeeded, 0 failed.")
			mustContain(t, f.op.get("/connections/"+conn.ID).body, `data-testid="refresh-history"`, "2 refreshes so far", "2 succeeded, 0 failed")
			for _, p := range f.pages {
				mustNotContain(t, p, access1, access2, refresh1, refresh2)
			}
		})
	}
}

func TestRefreshFailuresAreClassified(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		failure    getresponsetest.TokenFailure
		wantStatus models.Status
		wantFlash  string
	}{
		// The customer's: a red flash; what GetResponse waits out: a yellow one.
		{"invalid_grant RFC body", getresponsetest.TokenInvalidGrantRFC, models.StatusNeedsReconnect, `flash-error" role="status" data-testid="flash">Refresh failed: GetResponse rejected the refresh token.`},
		{"invalid_grant envelope", getresponsetest.TokenInvalidGrantEnvelope, models.StatusNeedsReconnect, `flash-error" role="status" data-testid="flash">Refresh failed: GetResponse rejected the refresh token.`},
		{"server error", getresponsetest.TokenServerError, models.StatusRefreshFailing, `flash-warning" role="status" data-testid="flash">Retried: GetResponse still fails`},
		// GetResponse blocking grconnect's IP is waited out, never the customer's.
		{"IP blocked", getresponsetest.TokenIPBlocked, models.StatusRefreshFailing, `flash-warning" role="status" data-testid="flash">Retried: GetResponse still fails`},
		{"rate limited", getresponsetest.TokenRateLimited, models.StatusRefreshFailing, `flash-warning" role="status" data-testid="flash">Retried: GetResponse still fails`},
		{"malformed JSON", getresponsetest.TokenMalformedJSON, models.StatusRefreshFailing, `flash-warning" role="status" data-testid="flash">Retried: GetResponse still fails`},
		{"hang", getresponsetest.TokenHang, models.StatusRefreshFailing, `flash-warning" role="status" data-testid="flash">Retried: GetResponse still fails`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newConnectFixture(t, getresponsetest.Options{})
			conn := f.connect("customer-1", "")
			access1, _ := f.plaintextTokens(conn.ID)
			f.fake.FailToken(tc.failure, 1)
			r := f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
			if r.status != http.StatusSeeOther {
				t.Fatalf("refresh = %d", r.status)
			}
			page := f.op.get("/connections/" + conn.ID)
			mustContain(t, page.body, tc.wantFlash, "badge-"+string(tc.wantStatus), `data-testid="status-banner"`, `data-testid="banner-cause"`)
			got, _ := f.store.ConnectionByID(t.Context(), conn.ID)
			if got.Status != tc.wantStatus || got.FailureCount != 1 || got.LastError == "" {
				t.Fatalf("status %q failures %d error %q", got.Status, got.FailureCount, got.LastError)
			}
			if access, _ := f.plaintextTokens(conn.ID); access != access1 {
				t.Fatal("a failed refresh replaced the access token")
			}
			if tc.wantStatus == models.StatusRefreshFailing {
				if got.NextAttemptAt == nil || !got.NextAttemptAt.After(time.Now()) {
					t.Fatalf("transient failure without a next attempt: %v", got.NextAttemptAt)
				}
				mustContain(t, page.body, `data-testid="next-attempt"`)
				// The next success recovers, with an event.
				f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
				got, _ = f.store.ConnectionByID(t.Context(), conn.ID)
				if got.Status != models.StatusActive || got.FailureCount != 0 || got.LastError != "" || got.NextAttemptAt != nil {
					t.Fatalf("after recovery: %+v", got)
				}
				mustContain(t, f.op.get("/connections/"+conn.ID).body, "connection.recovered")
			}
		})
	}
}

// TestOperatorFailureIsTheApps: a rejected client secret is the operator's: the
// connection keeps its state and tokens, the app's health says what to do, and
// once GetResponse accepts the app again the refresh works with no reconnect.
func TestOperatorFailureIsTheApps(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	access1, _ := f.plaintextTokens(conn.ID)
	f.fake.FailToken(getresponsetest.TokenInvalidClient, 1)
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
	page := f.op.get("/connections/" + conn.ID)
	// Said once: the flash says what happened, the app's alert why and the fix.
	mustContain(t, page.body, "failed because of its app, not the connection", "client ID or secret", "customers need not reconnect",
		`data-testid="app-health-banner"`, "is the cause — not the connection", "You must act", `data-testid="check-credentials"`,
		`href="/apps/`+f.appID+`/edit#client_secret" data-testid="app-fix">Update client secret`)
	// (The history's hover titles and the timeline keep the record.)
	above := page.body[strings.Index(page.body, "<main"):strings.Index(page.body, `data-testid="refresh-history"`)]
	if n := strings.Count(above, "client ID or secret"); n != 1 {
		t.Errorf("the page says the credentials were rejected %d times above the history, want once", n)
	}
	for _, path := range []string{"/", "/apps", "/apps/" + f.appID} {
		mustContain(t, f.op.get(path).body, `data-testid="app-health-banner"`, "Acme Templates", "You must act", `data-testid="app-fix">Update client secret`)
	}
	got, _ := f.store.ConnectionByID(t.Context(), conn.ID)
	if got.Status != models.StatusActive || got.FailureCount != 0 || got.LastError == "" {
		t.Fatalf("connection after invalid_client: status %q failures %d error %q", got.Status, got.FailureCount, got.LastError)
	}
	if access, _ := f.plaintextTokens(conn.ID); access != access1 {
		t.Fatal("a refused refresh replaced the access token")
	}
	app, _ := f.store.AppByID(t.Context(), f.appID)
	if app.Health != models.AppCredentialsRejected || app.HealthReason != "invalid_client" {
		t.Fatalf("app health = %q (%q)", app.Health, app.HealthReason)
	}
	// The operator's explicit refresh is a probe: GetResponse accepts the app again,
	// the refresh works, the app is healthy, the connection recovered.
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
	got, _ = f.store.ConnectionByID(t.Context(), conn.ID)
	app, _ = f.store.AppByID(t.Context(), f.appID)
	if got.Status != models.StatusActive || got.LastError != "" || app.Health != models.AppHealthy {
		t.Fatalf("after the fix: connection %q (%q), app %q", got.Status, got.LastError, app.Health)
	}
	mustContain(t, f.op.get("/connections/"+conn.ID).body, "connection.recovered")
}

func TestTestCallRefreshesOnceOnExpiredToken(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	r := f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/test", url.Values{"endpoint": {"/from-fields"}})
	if r.status != http.StatusOK {
		t.Fatalf("test call = %d", r.status)
	}
	mustContain(t, r.body, `data-testid="test-status">HTTP 200`, `data-testid="from-fields"`, "John Smith", "calls left", `data-testid="test-json"`)
	mustNotContain(t, r.body, `data-testid="test-note"`)
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh); n != 0 {
		t.Fatalf("a fresh token was refreshed %d times", n)
	}

	f.fake.ExpireAccessTokens()
	r = f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/test", url.Values{"endpoint": {"/from-fields"}})
	mustContain(t, r.body, `data-testid="test-status">HTTP 200`, "code 1014", "refreshed once")
	if n := f.fake.Count(getresponsetest.EndpointTokenRefresh); n != 1 {
		t.Fatalf("refreshes after 1014 = %d, want 1", n)
	}
	if n := f.fake.Count(getresponsetest.EndpointFromFields); n != 3 {
		t.Fatalf("from-fields calls = %d, want 3 (ok, 1014, retry)", n)
	}

	for _, ep := range []string{"/accounts", "/campaigns"} {
		r = f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/test", url.Values{"endpoint": {ep}})
		mustContain(t, r.body, `data-testid="test-status">HTTP 200`)
	}
	if r := f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/test", url.Values{"endpoint": {"/../../admin"}}); r.status != http.StatusBadRequest {
		t.Fatalf("unknown endpoint = %d", r.status)
	}
	// A failing API call shows its error and the (redacted) body.
	f.fake.FailAPI(getresponsetest.APIServerError, 1)
	r = f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/test", url.Values{"endpoint": {"/from-fields"}})
	mustContain(t, r.body, `data-testid="test-status">HTTP 500`, `data-testid="test-error"`)
	var events int64
	f.store.DB().Model(&models.Event{}).Where("connection_id = ? AND type = ?", conn.ID, "test_call").Count(&events)
	if events != 5 {
		t.Fatalf("test_call events = %d, want 5", events)
	}
	access, refresh := f.plaintextTokens(conn.ID)
	for _, p := range f.pages {
		mustNotContain(t, p, access, refresh)
	}
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	mustContain(t, f.op.get("/connections/"+conn.ID+"/disconnect").body, "Disconnect "+conn.AccountEmail+"?")
	if r := f.op.submit("/connections/"+conn.ID+"/disconnect", "/connections/"+conn.ID+"/disconnect", nil); r.status != http.StatusSeeOther {
		t.Fatalf("disconnect = %d", r.status)
	}
	got, _ := f.store.ConnectionByID(t.Context(), conn.ID)
	if got.Status != models.StatusDisconnected || got.AccessTokenEnc != "" || got.RefreshTokenEnc != "" || got.TokenFingerprint != "" {
		t.Fatalf("after disconnect: %+v", got)
	}
	page := f.op.get("/connections/" + conn.ID)
	mustContain(t, page.body, "badge-disconnected", "connection.disconnected", "connection.created")
	mustNotContain(t, page.body, `data-testid="refresh-now"`)
	// Refresh and test calls say it is disconnected instead of failing.
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil)
	mustContain(t, f.op.get("/connections/"+conn.ID).body, "is disconnected")
	r := f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/test", url.Values{"endpoint": {"/from-fields"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("a test call on a disconnected connection = %d, want 303 back to its page", r.status)
	}
	page = f.op.get("/connections/" + conn.ID)
	mustContain(t, page.body, "is disconnected", `data-testid="status-banner"`)
	// A disconnected connection offers no test call and no disconnect.
	mustNotContain(t, page.body, `data-testid="run-test"`, `data-testid="disconnect"`)
	// Hidden from the default list, shown under its status.
	mustNotContain(t, f.op.get("/connections").body, conn.AccountEmail)
	mustContain(t, f.op.get("/connections?status=disconnected").body, conn.AccountEmail)
	if r := f.op.get("/connections/con_nope"); r.status != http.StatusNotFound {
		t.Fatalf("unknown connection = %d", r.status)
	}
}

func TestXSSPayloadsAreEscaped(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	payload := `<script>alert("x")</script><img src=x onerror=alert(1)>`
	id := f.fake.AddAccount(getresponsetest.Account{
		AccountID: "Xss1", Email: "xss@example.com", FirstName: payload, LastName: "L", CompanyName: payload,
		FromFields: []getresponsetest.FromField{{FromFieldID: "f1", Email: "ff@example.com", Name: payload, IsActive: true, IsDefault: true}},
	})
	conn := f.connect(payload, id)
	pages := []response{
		f.op.get("/connections/" + conn.ID),
		f.op.get("/connections"),
		f.op.get("/"),
		f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/test", url.Values{"endpoint": {"/from-fields"}}),
		f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/test", url.Values{"endpoint": {"/accounts"}}),
	}
	for i, p := range pages {
		if strings.Contains(p.body, "<script>alert") || strings.Contains(p.body, "<img src=x") {
			t.Errorf("page %d renders the payload unescaped", i)
		}
		if !strings.Contains(p.body, "&lt;script&gt;alert(") {
			t.Errorf("page %d does not show the escaped payload", i)
		}
		if strings.Count(p.body, "<script") != 1 { // only our own deferred app.js
			t.Errorf("page %d has %d script tags", i, strings.Count(p.body, "<script"))
		}
	}
}

var rowLinkRe = regexp.MustCompile(`href="/connections/(con_[a-z0-9]+)"`)
var pagerRe = regexp.MustCompile(`<a class="button" href="([^"]+)">([^<]+)</a>`)

func TestConnectionsListPagesFiltersAndSearch(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	ctx := t.Context()
	app, _ := f.store.AppByID(ctx, f.appID)
	otherApp := &models.App{ID: models.NewID("app"), Name: "Other", ClientID: "o", ClientSecretEnc: "x", Edition: "standard", AuthURL: app.AuthURL, APIURL: app.APIURL}
	f.store.CreateApp(ctx, otherApp)
	base := time.Now().UTC().Truncate(time.Second)
	for i := range 120 {
		exp := base.Add(time.Duration(i%60) * time.Minute) // duplicate expiries exercise the ID tie-break
		st := models.StatusActive
		appID := f.appID
		switch {
		case i%10 == 3:
			st = models.StatusNeedsReconnect
		case i%10 == 7:
			appID = otherApp.ID
		case i%10 == 9:
			st = models.StatusDisconnected
		}
		c := &models.Connection{ID: fmt.Sprintf("con_%03d", i), AppID: appID, AccountID: fmt.Sprintf("Acc%03d", i), Status: st,
			AccountEmail: fmt.Sprintf("user%03d@example.com", i), AccountName: fmt.Sprintf("User %03d", i),
			CustomerRef: fmt.Sprintf("customer-%03d", i), ExpiresAt: &exp, ConnectedAt: base}
		if err := f.store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
	}
	// Walk forward through every page, in expiry order.
	var seen []string
	path := "/connections?status=all&sort=expires"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		r := f.op.get(path)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s = %d", path, r.status)
		}
		for _, m := range rowLinkRe.FindAllStringSubmatch(r.body, -1) {
			seen = append(seen, m[1])
		}
		path = ""
		for _, m := range pagerRe.FindAllStringSubmatch(r.body, -1) {
			if strings.HasPrefix(m[2], "Next") {
				path = strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
	}
	if len(seen) != 120 {
		t.Fatalf("walked %d rows, want 120", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		a, b := expiryOf(t, f, seen[i-1]), expiryOf(t, f, seen[i])
		if b.Before(a) || (b.Equal(a) && seen[i] < seen[i-1]) {
			t.Fatalf("rows out of order at %d: %s then %s", i, seen[i-1], seen[i])
		}
	}
	// The last page, then Previous, gives the rows just before it.
	last := f.op.get("/connections?status=all&sort=expires&last=1")
	lastRows := rowLinkRe.FindAllStringSubmatch(last.body, -1)
	if len(lastRows) != 50 || lastRows[49][1] != seen[119] {
		t.Fatalf("last page has %d rows ending %v", len(lastRows), lastRows[len(lastRows)-1])
	}
	var prev string
	for _, m := range pagerRe.FindAllStringSubmatch(last.body, -1) {
		if strings.HasPrefix(m[2], "‹") {
			prev = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	prevRows := rowLinkRe.FindAllStringSubmatch(f.op.get(prev).body, -1)
	if len(prevRows) != 50 || prevRows[49][1] != seen[69] {
		t.Fatalf("previous of last ends with %v, want %s", prevRows[len(prevRows)-1], seen[69])
	}

	for _, tc := range []struct {
		query string
		want  int
	}{
		{"status=needs_reconnect", 12},
		{"app=" + otherApp.ID + "&status=all", 12},
		{"q=user00&status=all", 10},
		{"q=User%2011&status=all", 10},
		{"q=customer-01&status=all", 10},
		{"q=Acc042&status=all", 1},
		{"q=USER042%40example.com&status=all", 1},
		{"q=nobody&status=all", 0},
		{"", 108}, // all but disconnected
		{"status=disconnected", 12},
	} {
		r := f.op.get("/connections?" + tc.query)
		if r.status != http.StatusOK {
			t.Fatalf("%s = %d", tc.query, r.status)
		}
		// A search or an app filter says how many match; a state alone, its tab.
		total := regexp.MustCompile(`data-testid="total">\s*(\d+)\s+matching`).FindStringSubmatch(r.body)
		if !strings.Contains(tc.query, "q=") && !strings.Contains(tc.query, "app=") {
			total = regexp.MustCompile(`aria-current="page">[^<]+<span class="tab-count">(\d+)</span>`).FindStringSubmatch(r.body)
		}
		if total == nil || total[1] != fmt.Sprint(tc.want) {
			t.Errorf("%s: total %v, want %d", tc.query, total, tc.want)
		}
	}
	for _, bad := range []string{"status=bogus", "after=!!!", "before=bm90LWEtY3Vyc29y"} {
		if r := f.op.get("/connections?" + bad); r.status != http.StatusBadRequest {
			t.Errorf("%s = %d, want 400", bad, r.status)
		}
	}
}

func expiryOf(t *testing.T, f *connectFixture, id string) time.Time {
	t.Helper()
	c, err := f.store.ConnectionByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return *c.ExpiresAt
}

// TestTimelineIsNewestFirstAndPaginated: pages of 25, newest first; the last one
// says how long events are kept.
func TestTimelineIsNewestFirstAndPaginated(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{}, func(c *config.Config) { c.TimelineRetention = 90 * 24 * time.Hour })
	conn := f.connect("customer-1", "")
	for i := range 60 {
		f.store.AddEvent(t.Context(), &models.Event{ConnectionID: &conn.ID, AppID: &conn.AppID, Type: "test_call", Message: fmt.Sprintf("call number %02d", i), Actor: "x"})
	}
	// Pages of 25, newest first, each linking to the older ones; the last ends
	// with the connection's creation and links no further.
	olderRe := regexp.MustCompile(`href="(/connections/con_[a-z0-9]+\?before=\d+#timeline)"`)
	path := "/connections/" + conn.ID
	for _, want := range []struct {
		n           int
		first, last string
		older       bool
	}{{25, "59", "35", true}, {25, "34", "10", true}, {10, "09", "00", false}} {
		page := f.op.get(path)
		msgs := regexp.MustCompile(`call number (\d\d)`).FindAllStringSubmatch(page.body, -1)
		if len(msgs) != want.n || msgs[0][1] != want.first || msgs[len(msgs)-1][1] != want.last {
			t.Fatalf("%s: %d events, from %v to %v; want %d from %s to %s", path, len(msgs), msgs[0][1], msgs[len(msgs)-1][1], want.n, want.first, want.last)
		}
		older := olderRe.FindStringSubmatch(page.body)
		if (older != nil) != want.older {
			t.Fatalf("%s: link to older events %v, want %v", path, older, want.older)
		}
		// The last page says how long events are kept (the sweep's retention).
		if kept := strings.Contains(page.body, "Events are kept 90 days; the newest stays however old."); kept == want.older {
			t.Fatalf("%s: the retention said %v on a page with older events %v", path, kept, want.older)
		}
		if !want.older {
			if !strings.Contains(page.body, "connection.created") {
				t.Fatalf("the last timeline page lacks the connection's creation")
			}
			break
		}
		path = older[1]
	}
	if r := f.op.get("/connections/" + conn.ID + "?before=abc"); r.status != http.StatusBadRequest {
		t.Fatalf("bad timeline cursor = %d", r.status)
	}
}

// TestCustomerConsentHealsTheApp: a customer's completed code exchange proves that
// GetResponse accepts the app's credentials again: the app is healthy, with one
// app.recovered event, and its paused refreshes resume. (The customer started
// before the app was marked: a connect page opened after it says the integration
// is unavailable instead.)
func TestCustomerConsentHealsTheApp(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	first := f.connect("customer-1", "")
	account := f.fake.AddAccount(getresponsetest.Account{AccountID: "A2", Email: "a2@example.com"})
	customer := f.browser()
	state := f.startFlow(customer, f.makeLink("customer-2", ""))
	f.fake.FailToken(getresponsetest.TokenInvalidClient, 1)
	f.op.submit("/connections/"+first.ID, "/connections/"+first.ID+"/refresh", nil)
	if app, _ := f.store.AppByID(t.Context(), f.appID); app.Health != models.AppCredentialsRejected {
		t.Fatalf("app health after invalid_client = %q", app.Health)
	}
	redirect, err := f.fake.Approve(f.clientID, state, account)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.callback(customer, redirect); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="connect-success"`) {
		t.Fatalf("callback = %d\n%s", r.status, r.body)
	}
	app, _ := f.store.AppByID(t.Context(), f.appID)
	var recovered int64
	f.store.DB().Model(&models.Event{}).Where("app_id = ? AND type = ?", f.appID, models.EventAppRecovered).Count(&recovered)
	if app.Health != models.AppHealthy || recovered != 1 {
		t.Fatalf("after a customer's consent: app %q, %d app.recovered events; want ok and 1", app.Health, recovered)
	}
}
