package handlers_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// publicRoutes are the routes outside the operator's dashboard: probes, assets,
// the customer's pages, signing in, the links a person opens without a session,
// GetResponse's events in, the JSON API (keys, not sessions) and the demo's simulated GetResponse.
var publicRoutes = []string{
	"/healthz", "/readyz", "/metrics", "/favicon.ico", "/static/*", "/static/connect/v1.js",
	"/connect/:token", "/oauth/callback", "/setup", "/login", "/logout",
	"/reset-password/:token", "/invite/:token", "/events/:token",
}

func isPublicRoute(path string) bool {
	return slices.Contains(publicRoutes, path) || strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/demo-getresponse/")
}

// selfService are the operator routes that change only the signed-in operator's
// own account, which a viewer may use.
var selfService = []string{"/account/password", "/account/time-zone", "/account/alerts", "/account/sessions/end-all", "/account/sessions/:id/end"}

// roleFixture is an install with an app, a connection, a connect link, a bulk
// refresh, a second admin (Bob), an open invitation, an API key and a viewer
// (Vera), each a real target for the dashboard's routes.
type roleFixture struct {
	*apiFixture
	vera                                        *browser
	connID, linkID, bobID, invID, keyID, bulkID string
	deliveryID                                  string
}

const veraEmail, veraPass = "vera@example.com", "vera's password 1"

func newRoleFixture(t *testing.T) *roleFixture {
	t.Helper()
	f := &roleFixture{apiFixture: newAPIFixture(t, getresponsetest.Options{})}
	conn := f.connect("customer-1", "")
	f.connID = conn.ID
	f.makeLink("customer-2", "")
	var link models.ConnectLink
	f.store.DB().Where("customer_ref = ?", "customer-2").First(&link)
	f.linkID = link.ID
	f.setupSecondOperator(f.op, "bob@example.com", "bob password 1")
	bob, _ := f.store.OperatorByEmail(t.Context(), "bob@example.com")
	f.bobID = bob.ID
	f.invite(f.op, "carol@example.com", models.RoleViewer)
	var inv models.Invitation
	f.store.DB().Where("email = ?", "carol@example.com").First(&inv)
	f.invID = inv.ID
	var key models.APIKey
	f.store.DB().Where("name = ?", "test backend").First(&key)
	f.keyID = key.ID
	f.expireIn(conn.ID, 30*time.Second)
	f.age(conn.ID, time.Hour)
	r := f.op.submit("/connections", "/connections/bulk-refresh", url.Values{"scope": {"expiring"}})
	if !strings.HasPrefix(r.location(), "/connections/bulk/") {
		t.Fatalf("bulk refresh = %d %s", r.status, r.location())
	}
	f.bulkID = strings.TrimPrefix(r.location(), "/connections/bulk/")
	f.bulk.Wait()
	// A finished webhook delivery of the app, which an admin could replay.
	d := &models.WebhookDelivery{AppID: f.appID, EventType: "connection.created", Payload: "{}", MessageID: "msg_roles",
		Status: "delivered", NextAttemptAt: models.Now(), CreatedAt: models.Now()}
	if err := f.store.DB().Create(d).Error; err != nil {
		t.Fatal(err)
	}
	f.deliveryID = strconv.FormatInt(d.ID, 10)
	f.vera = f.addOperator(f.op, veraEmail, veraPass, models.RoleViewer)
	return f
}

// path fills a route's parameters with the fixture's targets.
func (f *roleFixture) path(t *testing.T, route string) string {
	t.Helper()
	id := ""
	switch {
	case strings.HasPrefix(route, "/apps/:id"):
		id = f.appID
	case strings.HasPrefix(route, "/connections/bulk/:id"):
		id = f.bulkID
	case strings.HasPrefix(route, "/connections/:id"):
		id = f.connID
	case strings.HasPrefix(route, "/operators/invitations/:id"):
		id = f.invID
	case strings.HasPrefix(route, "/operators/:id"):
		id = f.bobID
	case strings.HasPrefix(route, "/api-keys/:id"):
		id = f.keyID
	case strings.Contains(route, ":"):
		t.Fatalf("route %s has a parameter this test does not fill: add it", route)
	}
	p := strings.Replace(route, ":id", id, 1)
	p = strings.Replace(p, ":link", f.linkID, 1)
	p = strings.Replace(p, ":delivery", f.deliveryID, 1)
	if strings.Contains(p, ":") || strings.Contains(p, "*") {
		t.Fatalf("route %s: parameters left in %s", route, p)
	}
	return p
}

// operatorRoutes walks the router: every route of the operator's dashboard with
// one of the methods.
func (f *roleFixture) operatorRoutes(methods ...string) []string {
	var out []string
	for _, rt := range f.srv.Config.Handler.(*echo.Echo).Routes() {
		if slices.Contains(methods, rt.Method) && !isPublicRoute(rt.Path) && !slices.Contains(out, rt.Path) {
			out = append(out, rt.Path)
		}
	}
	slices.Sort(out)
	return out
}

// everything is a form that would do what any route asks, were it allowed.
func everything(password string) url.Values {
	return url.Values{
		"name": {"Changed"}, "client_id": {"acme-client"}, "client_secret": {clientSecret}, "edition": {"standard"},
		"return_origins": {"https://app.example.com"}, "email": {"dave@example.com"}, "role": {"viewer"},
		"customer_ref": {"viewer-was-here"}, "webhook_url": {"https://hooks.example.com/in"}, "scope": {"failing"},
		"endpoint": {"/from-fields"}, "disconnect": {"yes"}, "parent_login": {"someone"}, "overlap": {"0"},
		"expires": {"never"}, "current_password": {password},
	}
}

// dbFingerprint hashes every row of every table but the sessions (each request
// touches its own) and the sign-in throttles.
func dbFingerprint(t *testing.T, a *testApp) map[string]string {
	t.Helper()
	var tables []string
	q := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
	if a.store.DB().Dialector.Name() == "postgres" {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
	}
	if err := a.store.DB().Raw(q).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, table := range tables {
		if table == "operator_sessions" || table == "login_throttles" {
			continue
		}
		rows, err := a.store.DB().Raw("SELECT * FROM " + table + " ORDER BY 1").Rows()
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		h := sha256.New()
		n := 0
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(h, vals)
			n++
		}
		rows.Close()
		out[table] = fmt.Sprintf("%d rows %s", n, hex.EncodeToString(h.Sum(nil))[:16])
	}
	return out
}

var postFormRe = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

// TestViewerChangesNothing walks every state-changing route of the operator's
// dashboard, as the router has them, with real targets, a valid CSRF token and
// the viewer's own password: each answers a viewer 403 with the reason, and the
// database is unchanged afterwards — test calls and bulk refreshes included.
// The self-service routes (their own password, time zone, alert e-mails,
// sessions) still work for them. The viewer sees every page an admin sees, with
// no form that would change anything else, and the reason where the actions are.
func TestViewerChangesNothing(t *testing.T) {
	t.Parallel()
	f := newRoleFixture(t)
	before := dbFingerprint(t, f.testApp)
	callsBefore := f.fake.Count(getresponsetest.EndpointToken) + f.fake.Count(getresponsetest.EndpointFromFields)
	changing := f.operatorRoutes(http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete)
	if len(changing) < 25 {
		t.Fatalf("only %d state-changing operator routes found: %v", len(changing), changing)
	}
	refused := 0
	for _, route := range changing {
		if slices.Contains(selfService, route) {
			continue
		}
		r := f.vera.submit("/", f.path(t, route), everything(veraPass))
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "Viewers cannot change anything here") {
			t.Errorf("a viewer's POST %s = %d, want 403 with the reason", route, r.status)
		}
		refused++
	}
	if after := dbFingerprint(t, f.testApp); !mapsEqual(before, after) {
		for table, fp := range after {
			if before[table] != fp {
				t.Errorf("table %s changed: %s → %s", table, before[table], fp)
			}
		}
	}
	if calls := f.fake.Count(getresponsetest.EndpointToken) + f.fake.Count(getresponsetest.EndpointFromFields); calls != callsBefore {
		t.Errorf("a viewer's request reached GetResponse (%d calls, were %d)", calls, callsBefore)
	}
	for _, route := range selfService {
		if !slices.Contains(changing, route) {
			t.Errorf("self-service route %s is not a route", route)
		}
	}
	if refused != len(changing)-len(selfService) {
		t.Fatalf("%d refused of %d", refused, len(changing))
	}

	// Every page an admin sees, the viewer sees: same status, no form that
	// changes anything but their own account, and the reason instead.
	ann := f.op
	notes := 0
	for _, route := range f.operatorRoutes(http.MethodGet) {
		path := f.path(t, route)
		switch route {
		case "/api-keys/openapi.json":
			continue
		case "/audit/export":
			path += "?format=csv"
		}
		want, got := ann.get(path), f.vera.get(path)
		if got.status != want.status || got.status >= 400 {
			t.Errorf("GET %s: viewer %d, admin %d", path, got.status, want.status)
			continue
		}
		for _, m := range postFormRe.FindAllStringSubmatch(got.body, -1) {
			if action := m[1]; action != "/logout" && !isSelfService(action) {
				t.Errorf("the viewer's %s offers a form to %s", path, action)
			}
		}
		notes += strings.Count(got.body, `data-testid="viewer-note"`)
	}
	if notes < 15 {
		t.Errorf("the viewer's pages explain only %d hidden actions", notes)
	}
	mustContain(t, f.vera.get("/operators").body, "Viewers cannot invite operators.")
	mustContain(t, f.vera.get("/connections/"+f.connID).body, "Viewers cannot refresh connections.", "Viewers cannot run test calls")

	// Their own account stays theirs.
	for _, tc := range []struct {
		action string
		form   url.Values
	}{
		{"/account/time-zone", url.Values{"time_zone": {"Europe/Warsaw"}}},
		{"/account/alerts", url.Values{"alerts": {"on"}}},
		{"/account/password", url.Values{"current": {veraPass}, "password": {"vera's new password"}, "password_confirm": {"vera's new password"}}},
		{"/account/sessions/end-all", nil},
	} {
		if r := f.vera.submit("/account", tc.action, tc.form); r.status != http.StatusSeeOther {
			t.Errorf("the viewer's own %s = %d", tc.action, r.status)
		}
	}
	vera, _ := f.store.OperatorByEmail(t.Context(), veraEmail)
	if vera.TimeZone != "Europe/Warsaw" || !vera.AlertEmail || vera.Role != models.RoleViewer {
		t.Errorf("the viewer's own changes: zone %q alerts %v role %s", vera.TimeZone, vera.AlertEmail, vera.Role)
	}
}

func isSelfService(action string) bool {
	if slices.Contains(selfService, action) {
		return true
	}
	return strings.HasPrefix(action, "/account/sessions/") && strings.HasSuffix(action, "/end")
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRolesChangeWithThePasswordAndKeepAnAdmin: an admin changes another
// operator's role (with their password; audited; the operator's reset links
// die), never their own, and never the last admin's: neither demoted nor removed.
func TestRolesChangeWithThePasswordAndKeepAnAdmin(t *testing.T) {
	t.Parallel()
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	bob := app.addOperator(ann, "bob@example.com", "bob password 1", models.RoleViewer)
	bobOp, _ := app.store.OperatorByEmail(t.Context(), "bob@example.com")
	annOp, _ := app.store.OperatorByEmail(t.Context(), annEmail)
	if bobOp.Role != models.RoleViewer {
		t.Fatalf("the invitation's role: %s", bobOp.Role)
	}
	page := ann.get("/operators").body
	mustContain(t, page, `href="/operators/`+bobOp.ID+`/role"`)
	mustNotContain(t, page, `href="/operators/`+annOp.ID+`/remove"`) // the last admin

	// Bob's reset link dies with his new role; the change asks for the password.
	resetPath := makeResetLink(t, ann, bobOp.ID)
	expireReauth(t, app)
	r := ann.submit("/operators/"+bobOp.ID+"/role", "/operators/"+bobOp.ID+"/role", url.Values{"role": {"admin"}, "current_password": {""}})
	if r.status != http.StatusForbidden {
		t.Fatalf("a role change without the password = %d", r.status)
	}
	r = ann.submit("/operators/"+bobOp.ID+"/role", "/operators/"+bobOp.ID+"/role", url.Values{"role": {"admin"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("make Bob an admin = %d\n%s", r.status, r.body)
	}
	if r := app.browser().get(resetPath); r.status != http.StatusGone {
		t.Errorf("Bob's reset link after his role changed = %d, want 410", r.status)
	}
	var changed models.AuditEntry
	if err := app.store.DB().Where("action = ?", models.AuditRoleChanged).Last(&changed).Error; err != nil ||
		changed.Actor != annEmail || changed.TargetName != "bob@example.com" || !strings.Contains(changed.Details, "from Viewer to Admin") {
		t.Fatalf("the role change's audit entry: %+v %v", changed, err)
	}
	// Bob, now an admin, may change things at once (his session reads his role).
	if r := bob.submit("/account", "/operators/"+annOp.ID+"/role", url.Values{"role": {"viewer"}, "current_password": {"bob password 1"}}); r.status != http.StatusSeeOther {
		t.Fatalf("Bob demotes Ann = %d", r.status)
	}
	// Ann is a viewer now: refused. Bob is the last admin: neither he nor anyone demotes or removes him.
	if r := ann.submit("/account", "/operators/"+bobOp.ID+"/role", url.Values{"role": {"viewer"}}); r.status != http.StatusForbidden {
		t.Fatalf("a viewer's role change = %d", r.status)
	}
	if r := bob.submit("/account", "/operators/"+bobOp.ID+"/role", url.Values{"role": {"viewer"}}); r.status != http.StatusSeeOther ||
		!strings.Contains(bob.get("/operators").body, "cannot change your own role") {
		t.Fatalf("Bob's own role = %d", r.status)
	}
	if err := app.built.Operators.Remove(t.Context(), annOp.ID, bobOp.ID); err == nil {
		t.Fatal("the last admin was removed")
	}
	if _, err := app.built.Operators.SetRole(t.Context(), annOp.ID, bobOp.ID, models.RoleViewer); err == nil {
		t.Fatal("the last admin was demoted")
	}
	if n, _ := app.store.CountAdmins(t.Context()); n != 1 {
		t.Fatalf("%d admins", n)
	}
}

// TestTwoAdminsDemotingEachOtherAtOnceLeaveOne fires the two admins' demotions of
// each other (and removals, in a second round) in parallel, through the
// dashboard: exactly one wins and one admin remains, on SQLite and on PostgreSQL.
func TestTwoAdminsDemotingEachOtherAtOnceLeaveOne(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"role", "remove"} {
		app := newTestApp(t)
		ann := app.setup(annEmail, annPass)
		bob := app.addOperator(ann, "bob@example.com", "bob password 1", models.RoleAdmin)
		annOp, _ := app.store.OperatorByEmail(t.Context(), annEmail)
		bobOp, _ := app.store.OperatorByEmail(t.Context(), "bob@example.com")
		// Both confirm their password first, so the race is the change itself.
		for _, b := range []*browser{ann, bob} {
			if r := b.submit("/api-keys", "/api-keys", url.Values{"name": {"warm-up " + b.password}}); r.status != http.StatusOK {
				t.Fatalf("confirm the password = %d", r.status)
			}
		}
		type attempt struct {
			by     *browser
			target string
		}
		var wg sync.WaitGroup
		for _, a := range []attempt{{ann, bobOp.ID}, {bob, annOp.ID}} {
			page := "/operators/" + a.target + "/" + action
			form := url.Values{"role": {"viewer"}}
			// Load the page (and its CSRF token) first, then fire together.
			token := csrfRe.FindStringSubmatch(a.by.get(page).body)[1]
			form.Set("_csrf", token)
			wg.Go(func() { a.by.post(page, form) })
		}
		wg.Wait()
		if n, _ := app.store.CountAdmins(t.Context()); n != 1 {
			t.Fatalf("%s at once: %d admins remain", action, n)
		}
		var changes int64
		audit := map[string]models.AuditAction{"role": models.AuditRoleChanged, "remove": models.AuditOperatorRemoved}[action]
		app.store.DB().Model(&models.AuditEntry{}).Where("action = ?", audit).Count(&changes)
		if changes != 1 {
			t.Fatalf("%s at once: %d audited changes, want 1", action, changes)
		}
	}
}
