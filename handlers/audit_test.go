package handlers_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// auditLog reads every audit entry, oldest first.
func auditLog(t testing.TB, a *testApp) []models.AuditEntry {
	t.Helper()
	var rows []models.AuditEntry
	if err := a.store.DB().Order("id").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

var (
	secretShownRe  = regexp.MustCompile(`id="webhook-secret" type="text" readonly value="(whsec_[A-Za-z0-9+/=]+)"`)
	linkTokenRe    = regexp.MustCompile(`/connect/([a-z0-9]+)`)
	operatorLinkRe = regexp.MustCompile(`href="/operators/(op_[a-z0-9]+)/remove"`)
)

// TestAuditRecordsEveryActionOnce performs every audited action through the
// dashboard and the API and reads the audit table: each action appears exactly
// once per change with the right actor and address, and no password, token, key,
// link token, session cookie or secret appears anywhere in it.
func TestAuditRecordsEveryActionOnce(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	const apiActor = "api:test backend"
	want := map[string]int{} // "action actor" → entries
	expect := func(action models.AuditAction, actor string) { want[string(action)+" "+actor]++ }
	var secretValues []string // what must never be recorded
	keep := func(vs ...string) {
		for _, v := range vs {
			if v != "" {
				secretValues = append(secretValues, v)
			}
		}
	}
	keep(annPass, clientSecret, f.key)
	// The fixture's setup and its app.
	expect(models.AuditOperatorCreated, annEmail)
	expect(models.AuditAppCreated, annEmail)

	// Sign-ins: a failure (never with the typed password), a success.
	if r := f.browser().submit("/login", "/login", url.Values{"email": {annEmail}, "password": {"not the password 1"}}); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong password = %d", r.status)
	}
	keep("not the password 1")
	expect(models.AuditSignInFailed, "anonymous")
	if r := f.browser().submit("/login", "/login", url.Values{"email": {"nobody-typed-this@example.com"}, "password": {"another guess 22"}}); r.status != http.StatusUnauthorized {
		t.Fatalf("unknown e-mail = %d", r.status)
	}
	keep("another guess 22", "nobody-typed-this@example.com")
	expect(models.AuditSignInFailed, "anonymous")
	ann := f.signIn(annEmail, annPass)
	expect(models.AuditSignedIn, annEmail)

	// Operators: Ann invites Carol and revokes it, invites Bob, who joins and signs
	// in; she makes him a viewer and an admin again, changes her password, turns
	// alerts on, removes Bob.
	const bobEmail, bobPass = "bob@example.com", "bobs long password 7"
	keep(bobPass)
	carolPath := f.invite(ann, "carol@example.com", models.RoleViewer)
	keep(strings.TrimPrefix(carolPath, "/invite/"))
	expect(models.AuditReauthenticated, annEmail) // the form asked for her password: good for ten minutes
	expect(models.AuditInvitationCreated, annEmail)
	var carolInv models.Invitation
	if err := f.store.DB().Where("email = ?", "carol@example.com").First(&carolInv).Error; err != nil {
		t.Fatal(err)
	}
	if r := ann.submit("/operators", "/operators/invitations/"+carolInv.ID+"/revoke", nil); r.status != http.StatusSeeOther {
		t.Fatalf("revoke invitation = %d", r.status)
	}
	expect(models.AuditInvitationRevoked, annEmail)
	bobPath := f.invite(ann, bobEmail, models.RoleAdmin)
	keep(strings.TrimPrefix(bobPath, "/invite/"))
	expect(models.AuditInvitationCreated, annEmail)
	f.accept(bobPath, bobPass)
	expect(models.AuditInvitationAccepted, bobEmail)
	f.signIn(bobEmail, bobPass)
	expect(models.AuditSignedIn, bobEmail)
	bobOp, err := f.store.OperatorByEmail(t.Context(), bobEmail)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []models.Role{models.RoleViewer, models.RoleAdmin} {
		if r := ann.submit("/operators/"+bobOp.ID+"/role", "/operators/"+bobOp.ID+"/role", url.Values{"role": {string(role)}}); r.status != http.StatusSeeOther {
			t.Fatalf("make Bob %s = %d\n%s", role, r.status, r.body)
		}
		expect(models.AuditRoleChanged, annEmail)
	}
	const annNewPass = "anns brand new password 3"
	keep(annNewPass)
	if r := ann.submit("/account/password", "/account/password", url.Values{"current": {annPass}, "password": {annNewPass}, "password_confirm": {annNewPass}}); r.status != http.StatusSeeOther {
		t.Fatalf("change password = %d\n%s", r.status, r.body)
	}
	expect(models.AuditPasswordChanged, annEmail)
	if r := ann.submit("/operators", "/account/alerts", url.Values{"alerts": {"on"}}); r.status != http.StatusSeeOther {
		t.Fatalf("alerts = %d", r.status)
	}
	expect(models.AuditAlertsChanged, annEmail)
	m := operatorLinkRe.FindStringSubmatch(ann.get("/operators").body)
	if m == nil {
		t.Fatal("no remove link for Bob")
	}
	// A reset link for Bob, made and used (by whoever holds it: Bob, from his address).
	rl := resetLinkRe.FindStringSubmatch(ann.submit("/operators/"+m[1]+"/reset-password", "/operators/"+m[1]+"/reset-password", nil).body)
	if rl == nil {
		t.Fatal("no reset link")
	}
	keep(rl[1])
	expect(models.AuditResetLinkCreated, annEmail)
	const bobNewPass = "bobs newer password 8"
	keep(bobNewPass)
	if r := f.browser().submit("/reset-password/"+rl[1], "/reset-password/"+rl[1], url.Values{"password": {bobNewPass}, "password_confirm": {bobNewPass}}); r.status != http.StatusSeeOther {
		t.Fatalf("use the reset link = %d", r.status)
	}
	expect(models.AuditResetLinkUsed, bobEmail)
	if r := ann.submit("/operators/"+m[1]+"/remove", "/operators/"+m[1]+"/remove", nil); r.status != http.StatusSeeOther {
		t.Fatalf("remove Bob = %d", r.status)
	}
	expect(models.AuditOperatorRemoved, annEmail)

	// The app: an edit, a new client secret (GetResponse knows it), a webhook.
	edit := appForm("Acme Templates 2")
	edit.Set("client_id", "acme-client")
	edit.Set("client_secret", "")
	edit.Set("return_origins", "https://app.example.com")
	if r := ann.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", edit); r.status != http.StatusSeeOther {
		t.Fatalf("edit app = %d\n%s", r.status, r.body)
	}
	expect(models.AuditAppUpdated, annEmail)
	const newSecret = "n3w-s3cr3t-0a1b2c3d4e5f"
	keep(newSecret)
	f.fake.AddClient("acme-client", newSecret, f.cfg.RedirectURL())
	edit.Set("client_secret", newSecret)
	if r := ann.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", edit); r.status != http.StatusSeeOther {
		t.Fatalf("new secret = %d\n%s", r.status, r.body)
	}
	expect(models.AuditAppSecretChanged, annEmail)
	const hookToken = "receiverstoken123456"
	keep(hookToken)
	r := ann.submit("/apps/"+f.appID, "/apps/"+f.appID+"/webhook", url.Values{"webhook_url": {"https://hooks.example.com/in/" + hookToken + "?sig=" + hookToken}})
	hm := secretShownRe.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || hm == nil {
		t.Fatalf("webhook = %d", r.status)
	}
	keep(hm[1])
	expect(models.AuditWebhookChanged, annEmail)

	// API keys on the dashboard; a wrong password typed is refused even within the
	// ten minutes, and recorded.
	keep("not my password at all")
	if r := ann.submit("/api-keys", "/api-keys", url.Values{"name": {"reporting"}, "current_password": {"not my password at all"}}); r.status != http.StatusForbidden {
		t.Fatalf("create key with a wrong password = %d", r.status)
	}
	expect(models.AuditReauthFailed, annEmail)
	r = ann.submit("/api-keys", "/api-keys", url.Values{"name": {"reporting"}})
	km := shownKeyRe.FindStringSubmatch(r.body)
	if km == nil {
		t.Fatalf("create key = %d", r.status)
	}
	keep(km[1], strings.SplitN(km[1], "_", 3)[2])
	expect(models.AuditAPIKeyCreated, annEmail)
	var key models.APIKey
	if err := f.store.DB().Where("name = ?", "reporting").First(&key).Error; err != nil {
		t.Fatal(err)
	}
	r = ann.submit("/api-keys/"+key.ID+"/roll", "/api-keys/"+key.ID+"/roll", url.Values{"overlap": {"1h"}})
	km = shownKeyRe.FindStringSubmatch(r.body)
	if km == nil {
		t.Fatalf("roll key = %d", r.status)
	}
	keep(km[1], strings.SplitN(km[1], "_", 3)[2])
	expect(models.AuditAPIKeyRolled, annEmail)
	if r := ann.submit("/api-keys/"+key.ID+"/revoke", "/api-keys/"+key.ID+"/revoke", nil); r.status != http.StatusSeeOther {
		t.Fatalf("revoke key = %d", r.status)
	}
	expect(models.AuditAPIKeyRevoked, annEmail)

	// Links on the dashboard: one revoked, one a customer uses (the fixture's operator
	// browser is Ann's first session, still valid: a password change keeps the
	// session that made it only, so sign the fixture's browser in again).
	f.op = ann
	link := f.makeLink("customer-9", "")
	keep(linkTokenRe.FindStringSubmatch(link)[1])
	expect(models.AuditLinkCreated, annEmail)
	var lnk models.ConnectLink
	if err := f.store.DB().Where("customer_ref = ?", "customer-9").First(&lnk).Error; err != nil {
		t.Fatal(err)
	}
	if r := ann.submit("/apps/"+f.appID+"/links/"+lnk.ID, "/apps/"+f.appID+"/links/"+lnk.ID+"/revoke", nil); r.status != http.StatusSeeOther {
		t.Fatalf("revoke link = %d", r.status)
	}
	expect(models.AuditLinkRevoked, annEmail)
	conn := f.connect("customer-1", "")
	expect(models.AuditLinkCreated, annEmail) // the link connect() made
	access, refresh := f.plaintextTokens(conn.ID)
	keep(access, refresh)

	// The connection on the dashboard: refresh, reconnect link, X-Parent-Login.
	f.age(conn.ID, time.Hour)
	if r := ann.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil); r.status != http.StatusSeeOther {
		t.Fatalf("refresh = %d", r.status)
	}
	expect(models.AuditRefreshed, annEmail)
	access, refresh = f.plaintextTokens(conn.ID)
	keep(access, refresh)
	if r := ann.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/reconnect", nil); r.status != http.StatusSeeOther {
		t.Fatalf("reconnect = %d", r.status)
	}
	expect(models.AuditReconnectLinkCreated, annEmail)
	if r := ann.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/parent-login", url.Values{"parent_login": {"parent-acme"}}); r.status != http.StatusSeeOther {
		t.Fatalf("parent login = %d", r.status)
	}
	expect(models.AuditParentLoginChanged, annEmail)

	// Events: the URL replaced on the dashboard and through the API (its tokens are
	// secrets), the app's callbacks, and a delivery replayed from both.
	eventsTokenRe := regexp.MustCompile(`/events/([a-z2-7]{52})`)
	if m := eventsTokenRe.FindStringSubmatch(ann.get("/connections/" + conn.ID).body); m != nil {
		keep(m[1])
	} else {
		t.Fatal("no events URL on the connection's page")
	}
	if r := ann.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/events-url/rotate", nil); r.status != http.StatusSeeOther {
		t.Fatalf("rotate events URL = %d", r.status)
	}
	expect(models.AuditEventsURLRotated, annEmail)
	if r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/events-url/rotate", nil); r.status != http.StatusOK {
		t.Fatalf("API rotate events URL = %d %s", r.status, r.body)
	} else {
		keep(eventsTokenRe.FindStringSubmatch(r.body)[1])
	}
	expect(models.AuditEventsURLRotated, apiActor)
	if r := ann.submit("/apps/"+f.appID, "/apps/"+f.appID+"/callbacks", url.Values{"callbacks": {"on"}, "actions": {"open", "click"}}); r.status != http.StatusSeeOther {
		t.Fatalf("callbacks = %d", r.status)
	}
	expect(models.AuditCallbacksChanged, annEmail)
	var delivery models.WebhookDelivery
	if err := f.store.DB().Where("app_id = ?", f.appID).First(&delivery).Error; err != nil {
		t.Fatal(err)
	}
	f.store.DB().Model(&delivery).Update("status", models.DeliveryFailed) // given up: it may be replayed
	if r := ann.submit("/apps/"+f.appID, fmt.Sprintf("/apps/%s/webhook-deliveries/%d/replay", f.appID, delivery.ID), nil); r.status != http.StatusSeeOther {
		t.Fatalf("replay = %d", r.status)
	}
	expect(models.AuditWebhookReplayed, annEmail)
	if r := f.call(http.MethodPost, fmt.Sprintf("/api/v1/webhook-deliveries/%d/replay", delivery.ID), nil); r.status != http.StatusAccepted {
		t.Fatalf("API replay = %d %s", r.status, r.body)
	}
	expect(models.AuditWebhookReplayed, apiActor)

	// The API: a link (revoked), a reconnect link, a token (not a change), a refresh.
	r = f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": f.appID, "customer_ref": "customer-2"})
	var sess struct{ ID, URL string }
	if err := json.Unmarshal([]byte(r.body), &sess); r.status != http.StatusCreated || err != nil {
		t.Fatalf("API link = %d %s", r.status, r.body)
	}
	keep(linkTokenRe.FindStringSubmatch(sess.URL)[1])
	expect(models.AuditLinkCreated, apiActor)
	if r := f.call(http.MethodDelete, "/api/v1/connect-sessions/"+sess.ID, nil); r.status != http.StatusNoContent {
		t.Fatalf("API revoke = %d", r.status)
	}
	expect(models.AuditLinkRevoked, apiActor)
	if r := f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"connection_id": conn.ID}); r.status != http.StatusCreated {
		t.Fatalf("API reconnect link = %d", r.status)
	} else if m := linkTokenRe.FindStringSubmatch(r.body); m != nil {
		keep(m[1])
	}
	expect(models.AuditReconnectLinkCreated, apiActor)
	if r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", nil); r.status != http.StatusOK {
		t.Fatalf("token = %d", r.status)
	}
	f.age(conn.ID, time.Hour)
	if r := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/refresh", nil); r.status != http.StatusOK {
		t.Fatalf("API refresh = %d %s", r.status, r.body)
	}
	expect(models.AuditRefreshed, apiActor)
	access, refresh = f.plaintextTokens(conn.ID)
	keep(access, refresh)

	// A bulk job (its refreshes are the job's, not separate actions), then disconnects.
	f.age(conn.ID, time.Hour)
	f.expireIn(conn.ID, 30*time.Second) // inside the expiring scope's window (at least a minute)
	if r := ann.submit("/connections", "/connections/bulk-refresh", url.Values{"scope": {"expiring"}}); r.status != http.StatusSeeOther {
		t.Fatalf("bulk = %d %s", r.status, r.body)
	}
	expect(models.AuditBulkStarted, annEmail)
	f.bulk.Wait()
	access, refresh = f.plaintextTokens(conn.ID)
	keep(access, refresh)
	f.fake.AddAccount(getresponsetest.Account{AccountID: "A2", Email: "a2@example.com"})
	other := f.connect("customer-3", "A2")
	expect(models.AuditLinkCreated, annEmail)
	a2, r2 := f.plaintextTokens(other.ID)
	keep(a2, r2)
	if r := ann.submit("/connections/"+conn.ID+"/disconnect", "/connections/"+conn.ID+"/disconnect", nil); r.status != http.StatusSeeOther {
		t.Fatalf("disconnect = %d", r.status)
	}
	expect(models.AuditDisconnected, annEmail)
	if r := f.call(http.MethodDelete, "/api/v1/connections/"+other.ID, nil); r.status != http.StatusOK {
		t.Fatalf("API disconnect = %d", r.status)
	}
	expect(models.AuditDisconnected, apiActor)
	// Disconnecting again changes nothing, and records nothing.
	if r := f.call(http.MethodDelete, "/api/v1/connections/"+other.ID, nil); r.status != http.StatusOK {
		t.Fatalf("API disconnect again = %d", r.status)
	}

	// The app goes; sessions end.
	if r := ann.submit("/apps/"+f.appID+"/delete", "/apps/"+f.appID+"/delete", url.Values{"disconnect": {"yes"}}); r.status != http.StatusSeeOther {
		t.Fatalf("delete app = %d %s", r.status, r.body)
	}
	expect(models.AuditAppDeleted, annEmail)
	second := f.signIn(annEmail, annNewPass)
	expect(models.AuditSignedIn, annEmail)
	if r := ann.submit("/account/sessions", "/account/sessions/end-all", nil); r.status != http.StatusSeeOther {
		t.Fatalf("end all = %d", r.status)
	}
	expect(models.AuditSessionsEnded, annEmail)
	if r := second.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("the other session survived: %d", r.status)
	}
	third := f.signIn(annEmail, annNewPass)
	expect(models.AuditSignedIn, annEmail)
	if r := third.submit("/", "/logout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("logout = %d", r.status)
	}
	expect(models.AuditSignedOut, annEmail)
	for _, b := range []*browser{ann, second, third, f.op} {
		for _, c := range b.client.Jar.Cookies(mustURL(f.srv.URL)) {
			keep(c.Value)
		}
	}

	entries := auditLog(t, f.testApp)
	got := map[string]int{}
	var all strings.Builder
	for _, e := range entries {
		got[string(e.Action)+" "+e.Actor]++
		if e.IP != "127.0.0.1" {
			t.Errorf("%s by %s recorded from %q, want 127.0.0.1", e.Action, e.Actor, e.IP)
		}
		if e.Details == "" || e.CreatedAt.IsZero() {
			t.Errorf("%s has no details or time: %+v", e.Action, e)
		}
		fmt.Fprintf(&all, "%s|%s|%s|%s|%s|%s|%s\n", e.Actor, e.IP, e.Action, e.TargetType, e.TargetID, e.Details, e.CreatedAt)
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok && !yield(k) {
				return
			}
		}
	}) {
		if got[k] != want[k] {
			t.Errorf("%s: %d entries, want %d", k, got[k], want[k])
		}
	}
	// Every action of the vocabulary but the command line's was exercised.
	for _, a := range models.AuditActions {
		if strings.HasPrefix(string(a), "install.") {
			continue
		}
		found := false
		for k := range want {
			found = found || strings.HasPrefix(k, string(a)+" ")
		}
		if !found {
			t.Errorf("the test never performs %s", a)
		}
	}
	for _, s := range secretValues {
		if strings.Contains(all.String(), s) {
			t.Errorf("the audit log contains a secret %q…", s[:min(6, len(s))])
		}
	}
	if t.Failed() {
		t.Logf("audit log:\n%s", all.String())
	}
}

// TestAuditTargetsAndDetails: entries name their target and say what changed.
func TestAuditTargetsAndDetails(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	edit := appForm("Renamed")
	edit.Set("client_id", "acme-client")
	edit.Set("client_secret", "")
	edit.Set("return_origins", "https://app.example.com")
	if r := f.op.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", edit); r.status != http.StatusSeeOther {
		t.Fatalf("edit = %d", r.status)
	}
	entries := auditLog(t, f.testApp)
	last := entries[len(entries)-1]
	if last.Action != models.AuditAppUpdated || last.TargetType != "app" || last.TargetID != f.appID ||
		!strings.Contains(last.Details, `name "Acme Templates" → "Renamed"`) {
		t.Fatalf("edit recorded as %+v", last)
	}
	// A refused change records nothing.
	n := len(entries)
	edit.Set("name", "")
	if r := f.op.submit("/apps/"+f.appID+"/edit", "/apps/"+f.appID+"/edit", edit); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("invalid edit = %d", r.status)
	}
	if got := auditLog(t, f.testApp); len(got) != n {
		t.Fatalf("a refused edit added %d entries: %+v", len(got)-n, got[n:])
	}
}

// TestAuditPage filters by who, action, target and day, and pages backwards
// through the entries with keyset links.
func TestAuditPage(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	// 60 link creations: more than one page of 50.
	for i := range 60 {
		f.makeLink(fmt.Sprintf("customer-%02d", i), "")
	}
	page := f.op.get("/audit")
	if page.status != http.StatusOK {
		t.Fatalf("/audit = %d", page.status)
	}
	mustContain(t, page.body, `<h1>Audit log</h1>`, `aria-current="page">Audit log`, "Kept for ever")
	if n := strings.Count(page.body, `data-testid="audit-entry"`); n != 50 {
		t.Fatalf("first page has %d entries, want 50", n)
	}
	older := regexp.MustCompile(`href="(/audit\?before=[^"]+)">Older`).FindStringSubmatch(page.body)
	if older == nil {
		t.Fatal("no link to older entries")
	}
	second := f.op.get(strings.ReplaceAll(older[1], "&amp;", "&"))
	// 60 links + the operator's creation + the app's: 12 on the second page, the oldest last.
	if n := strings.Count(second.body, `data-testid="audit-entry"`); n != 12 || !strings.Contains(second.body, `data-action="operator.created"`) {
		t.Fatalf("second page has %d entries", n)
	}
	if strings.Contains(second.body, `href="/audit?before=`) {
		t.Error("the last page links to older entries")
	}
	mustContain(t, second.body, `href="/audit">Newest`)

	for _, tc := range []struct {
		query string
		want  int
	}{
		{"?action=app.created", 1},
		{"?action=app.", 1},
		{"?action=link.created&actor=" + url.QueryEscape(annEmail), 50},
		{"?actor=someone%40else.example", 0},
		{"?target=" + f.appID, 1},
		{"?from=" + time.Now().UTC().Format(time.DateOnly) + "&till=" + time.Now().UTC().Format(time.DateOnly) + "&action=operator.", 1},
		{"?till=2001-01-01", 0},
	} {
		r := f.op.get("/audit" + tc.query)
		if n := strings.Count(r.body, `data-testid="audit-entry"`); r.status != http.StatusOK || n != tc.want {
			t.Errorf("/audit%s: %d, %d entries, want %d", tc.query, r.status, n, tc.want)
		}
	}
	if r := f.op.get("/audit?action=everything"); r.status != http.StatusBadRequest || !strings.Contains(r.body, `data-testid="audit-error"`) {
		t.Errorf("unknown action = %d", r.status)
	}
	if r := f.op.get("/audit?target_type=planet"); r.status != http.StatusBadRequest || !strings.Contains(r.body, `data-testid="audit-error"`) {
		t.Errorf("unknown target type = %d", r.status)
	}
	if r := f.op.get("/audit?from=yesterday"); r.status != http.StatusBadRequest {
		t.Errorf("bad date = %d", r.status)
	}
	if r := f.op.get("/audit?before=nonsense"); r.status != http.StatusBadRequest {
		t.Errorf("bad cursor = %d", r.status)
	}
	if r := f.browser().get("/audit"); r.status != http.StatusSeeOther {
		t.Errorf("/audit without a session = %d", r.status)
	}
}

// TestAuditAPI pages through GET /api/v1/audit with its cursor and filters.
func TestAuditAPI(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	for i := range 7 {
		if r := f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": f.appID, "customer_ref": fmt.Sprintf("c-%d", i)}); r.status != http.StatusCreated {
			t.Fatalf("link = %d", r.status)
		}
	}
	type entry struct {
		ID        int64     `json:"id"`
		CreatedAt time.Time `json:"created_at"`
		Actor     string    `json:"actor"`
		IP        string    `json:"ip"`
		Action    string    `json:"action"`
		Target    struct{ Type, ID string }
		Details   string `json:"details"`
	}
	var seen []entry
	cursor := ""
	for pages := 0; ; pages++ {
		q := "?actor=" + url.QueryEscape("api:test backend") + "&limit=3"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		r := f.call(http.MethodGet, "/api/v1/audit"+q, nil)
		var page struct {
			Entries    []entry `json:"entries"`
			NextCursor *string `json:"next_cursor"`
		}
		if err := json.Unmarshal([]byte(r.body), &page); r.status != http.StatusOK || err != nil {
			t.Fatalf("audit page = %d %s", r.status, r.body)
		}
		seen = append(seen, page.Entries...)
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
		if pages > 5 {
			t.Fatal("the cursor never ends")
		}
	}
	if len(seen) != 7 {
		t.Fatalf("%d entries by the API key, want 7", len(seen))
	}
	for i, e := range seen {
		if e.Action != "link.created" || e.Actor != "api:test backend" || e.IP != "127.0.0.1" || e.Target.Type != "link" || !strings.HasPrefix(e.Target.ID, "lnk_") {
			t.Errorf("entry %d = %+v", i, e)
		}
		if i > 0 && e.ID >= seen[i-1].ID {
			t.Errorf("entries not newest first: %d after %d", e.ID, seen[i-1].ID)
		}
	}
	for _, bad := range []string{"?limit=0", "?action=nope", "?since=tuesday", "?target_type=planet", "?cursor=bad"} {
		if r := f.call(http.MethodGet, "/api/v1/audit"+bad, nil); r.status != http.StatusBadRequest {
			t.Errorf("%s = %d, want 400", bad, r.status)
		}
	}
	r := f.call(http.MethodGet, "/api/v1/audit?action=app.&target_type=app&target_id="+f.appID+"&since="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), nil)
	if r.status != http.StatusOK || strings.Count(r.body, `"action":"app.created"`) != 1 {
		t.Errorf("app's entries = %d %s", r.status, r.body)
	}
}

// TestOpenAPIAuditActionsMatchTheModel keeps the documented action list equal to
// the code's.
func TestOpenAPIAuditActionsMatchTheModel(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal([]byte(f.call(http.MethodGet, "/api/v1/openapi.json", nil).body), &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range models.AuditActions {
		names = append(names, string(a))
	}
	if got := doc.Components.Schemas["AuditEntry"].Properties["action"].Enum; !slices.Equal(got, names) {
		t.Errorf("openapi.json lists actions %v, the code %v", got, names)
	}
}
