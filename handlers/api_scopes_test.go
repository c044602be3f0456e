package handlers_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// routedAPIRequest is one request per route of the JSON API, as the router has
// them, with the scope the OpenAPI document names for it.
type routedAPIRequest struct {
	method, route, path, body string
	scope                     string // "none" for the OpenAPI document
}

// openAPIScopes reads the x-grconnect-scope of every operation of the OpenAPI
// document: "METHOD /path" → scope.
func openAPIScopes(t *testing.T, f *apiFixture) map[string]string {
	t.Helper()
	r := f.call(http.MethodGet, "/api/v1/openapi.json", nil)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			if method == "parameters" {
				continue
			}
			var op struct {
				Scope     string                     `json:"x-grconnect-scope"`
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			out[strings.ToUpper(method)+" "+path] = op.Scope
			if op.Scope != "none" && op.Responses["403"] == nil {
				t.Errorf("%s %s documents no 403 insufficient_scope", method, path)
			}
		}
	}
	return out
}

// routedAPIRequests walks the router: one request per /api/v1 route (each of the
// proxy's methods), on connection connID and connect session sessionID, with its
// scope from the OpenAPI document.
func routedAPIRequests(t *testing.T, f *apiFixture, connID, sessionID string) []routedAPIRequest {
	t.Helper()
	scopes := openAPIScopes(t, f)
	var out []routedAPIRequest
	for _, rt := range f.srv.Config.Handler.(*echo.Echo).Routes() {
		if !strings.HasPrefix(rt.Path, "/api/v1/") || rt.Method == echo.RouteNotFound {
			continue
		}
		route := strings.TrimPrefix(rt.Path, "/api/v1")
		doc := strings.ReplaceAll(strings.ReplaceAll(route, ":id", "{id}"), "*", "{path}")
		id := connID
		if strings.HasPrefix(route, "/connect-sessions/") {
			id = sessionID
		}
		req := routedAPIRequest{method: rt.Method, route: rt.Method + " " + doc,
			path: "/api/v1" + strings.ReplaceAll(strings.ReplaceAll(route, ":id", id), "*", "from-fields")}
		switch {
		case rt.Method == http.MethodPost && route == "/connect-sessions":
			req.body = `{"app_id":"` + f.appID + `","customer_ref":"scope-test"}`
		case rt.Method != http.MethodGet && rt.Method != http.MethodHead && rt.Method != http.MethodDelete:
			req.body = `{}`
		}
		scope, ok := scopes[req.route]
		if !ok {
			t.Fatalf("the OpenAPI document names no scope for %s", req.route)
		}
		req.scope = scope
		out = append(out, req)
	}
	if len(out) < 14 {
		t.Fatalf("only %d API routes found", len(out))
	}
	return out
}

// send makes one routed request with key.
func (f *apiFixture) sendRouted(t *testing.T, req routedAPIRequest, key string) response {
	t.Helper()
	h := http.Header{}
	var body *strings.Reader
	if req.body != "" {
		h.Set("Content-Type", "application/json")
		body = strings.NewReader(req.body)
	}
	var r response
	var err error
	if body != nil {
		r, err = f.send(req.method, req.path, key, body, h)
	} else {
		r, err = f.send(req.method, req.path, key, nil, h)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newKey makes an API key with scopes (none: every scope), limited to app ("" for all).
func (f *apiFixture) newKey(t *testing.T, name, app string, scopes ...models.APIScope) string {
	t.Helper()
	in := services.APIKeyInput{Name: name, AppID: app, CreatedBy: "test"}
	for _, s := range scopes {
		in.Scopes = append(in.Scopes, string(s))
	}
	_, key, err := f.apiKeys.Create(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// wantInsufficientScope checks a 403 insufficient_scope that names scope.
func wantInsufficientScope(t *testing.T, r response, scope, what string) {
	t.Helper()
	if r.status != http.StatusForbidden {
		t.Errorf("%s = %d, want 403 insufficient_scope: %s", what, r.status, r.body)
		return
	}
	if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="`+scope+`"`) {
		t.Errorf("%s: WWW-Authenticate = %q", what, h)
	}
	if strings.HasPrefix(what, "HEAD ") {
		return // no body: the status and header say it
	}
	var e struct {
		Error struct{ Code, Message, Scope string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("%s: %v: %s", what, err, r.body)
	}
	if e.Error.Code != "insufficient_scope" || e.Error.Scope != scope || !strings.Contains(e.Error.Message, scope) {
		t.Errorf("%s answered %s, want insufficient_scope naming %s", what, r.body, scope)
	}
}

// TestEveryAPIRouteNeedsItsOneScope walks every route of the JSON API, as the
// router has them: the OpenAPI document names one of the seven scopes for each
// (only the document itself needs none); a key with every other scope is refused
// with 403 insufficient_scope naming it, and a key with only that scope is let
// through.
func TestEveryAPIRouteNeedsItsOneScope(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	session := decode[struct{ ID string }](t, f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": f.appID, "customer_ref": "c-2"}))
	reqs := routedAPIRequests(t, f, conn.ID, session.ID)
	none := 0
	for _, req := range reqs {
		if req.scope == "none" {
			none++
			continue
		}
		if !models.APIScope(req.scope).Known() {
			t.Errorf("%s: scope %q is not one of the seven", req.route, req.scope)
		}
	}
	if none != 1 {
		t.Errorf("%d operations need no scope, want 1 (the document itself)", none)
	}
	// Refused with every scope but the one needed: nothing reaches GetResponse.
	for _, req := range reqs {
		if req.scope == "none" {
			continue
		}
		var others []models.APIScope
		for _, s := range models.APIScopes {
			if string(s) != req.scope {
				others = append(others, s)
			}
		}
		wantInsufficientScope(t, f.sendRouted(t, req, f.newKey(t, "all but "+req.scope, "", others...)), req.scope, req.route)
	}
	if n := f.fake.Count(getresponsetest.EndpointFromFields) + f.fake.Count(getresponsetest.EndpointOther); n != 0 {
		t.Fatalf("%d refused calls reached GetResponse", n)
	}
	if got, _ := f.store.ConnectionByID(t.Context(), conn.ID); got.Status != models.StatusActive {
		t.Fatalf("a refused call changed the connection: %s", got.Status)
	}
	// Let through with that scope alone (the disconnect last: it ends the connection).
	last := func(r routedAPIRequest) int {
		if r.route == "DELETE /connections/{id}" {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(reqs, func(a, b routedAPIRequest) int { return last(a) - last(b) })
	for _, req := range reqs {
		key := f.newKey(t, "only "+req.scope, "", models.ScopeTokensRead)
		if req.scope != "none" {
			key = f.newKey(t, "only "+req.scope, "", models.APIScope(req.scope))
		}
		if r := f.sendRouted(t, req, key); r.status == http.StatusForbidden || r.status == http.StatusUnauthorized || r.status >= 500 {
			t.Errorf("%s with only %s = %d: %s", req.route, req.scope, r.status, r.body)
		}
	}
}

// TestTokensReadKeyGetsOnlyTokens (issue 22's "done when"): a key with only
// tokens:read gets a connection's access token and 403 insufficient_scope on
// every other route of the API, changing nothing.
func TestTokensReadKeyGetsOnlyTokens(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	session := decode[struct{ ID string }](t, f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": f.appID, "customer_ref": "c-2"}))
	key := f.newKey(t, "token reader", "", models.ScopeTokensRead)
	var links int64
	f.store.DB().Model(&models.ConnectLink{}).Count(&links)
	tokens := 0
	for _, req := range routedAPIRequests(t, f, conn.ID, session.ID) {
		r := f.sendRouted(t, req, key)
		switch req.route {
		case "POST /connections/{id}/token":
			tok := decode[tokenAnswer](t, r)
			if r.status != http.StatusOK || tok.AccessToken == "" {
				t.Fatalf("token = %d %s", r.status, r.body)
			}
			tokens++
		case "GET /openapi.json":
			if r.status != http.StatusOK {
				t.Errorf("the OpenAPI document = %d", r.status)
			}
		default:
			wantInsufficientScope(t, r, req.scope, req.route)
		}
	}
	if tokens != 1 {
		t.Fatal("the token route was not among the router's routes")
	}
	var after int64
	f.store.DB().Model(&models.ConnectLink{}).Count(&after)
	got, _ := f.store.ConnectionByID(t.Context(), conn.ID)
	if after != links || got.Status != models.StatusActive || f.fake.Count(getresponsetest.EndpointFromFields) != 0 {
		t.Fatalf("refused calls changed something: links %d → %d, status %s", links, after, got.Status)
	}
	// The API's own audit log is out of its reach too; a key with every scope reads it.
	wantInsufficientScope(t, mustSend(t, f, http.MethodGet, "/api/v1/audit?format=csv", key), "audit:read", "audit export")
}

func mustSend(t *testing.T, f *apiFixture, method, path, key string) response {
	t.Helper()
	r, err := f.send(method, path, key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAppLimitedKeySeesOnlyItsApp: a key limited to one app lists, reads, gets
// tokens of, refreshes, proxies to, disconnects and makes connect sessions for
// that app's connections only; every other app's connection and session answers
// 404 as if it did not exist, and is left untouched.
func TestAppLimitedKeySeesOnlyItsApp(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	mine := f.connect("customer-1", "")
	f.fake.AddClient("beta-client", clientSecret, f.cfg.RedirectURL())
	form := appForm("Beta Forms")
	form.Set("client_id", "beta-client")
	betaID := createApp(t, f.op, form)
	beta := &connectFixture{testApp: f.testApp, op: f.op, appID: betaID, clientID: "beta-client"}
	f.fake.AddAccount(getresponsetest.Account{AccountID: "B1", Email: "b1@example.com"})
	theirs := beta.connect("beta-customer", "B1")
	theirSession := decode[struct{ ID string }](t, f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"app_id": betaID, "customer_ref": "b-2"}))
	key := f.newKey(t, "acme backend", f.appID)

	// The list holds only its app's connections; asking for the other app is 404.
	list := decode[struct{ Connections []connectionAnswer }](t, mustSend(t, f, http.MethodGet, "/api/v1/connections", key))
	if len(list.Connections) != 1 || list.Connections[0].ID != mine.ID {
		t.Fatalf("the limited key lists %+v", list.Connections)
	}
	wantError(t, mustSend(t, f, http.MethodGet, "/api/v1/connections?app_id="+betaID, key), http.StatusNotFound, "not_found")
	if r := mustSend(t, f, http.MethodGet, "/api/v1/connections?app_id="+f.appID, key); r.status != http.StatusOK {
		t.Fatalf("its own app's list = %d", r.status)
	}

	// Every route on the other app's connection or session is 404.
	f.age(theirs.ID, time.Hour)
	for _, req := range routedAPIRequests(t, f, theirs.ID, theirSession.ID) {
		if !strings.Contains(req.route, "{id}") {
			continue
		}
		if r := f.sendRouted(t, req, key); req.method == http.MethodHead {
			if r.status != http.StatusNotFound {
				t.Errorf("%s on another app's connection = %d", req.route, r.status)
			}
		} else {
			wantError(t, r, http.StatusNotFound, "not_found")
		}
	}
	for _, body := range []map[string]any{
		{"app_id": betaID, "customer_ref": "x"},
		{"connection_id": theirs.ID},
		{"app_id": f.appID, "connection_id": theirs.ID},
	} {
		r, _ := f.send(http.MethodPost, "/api/v1/connect-sessions", key, strings.NewReader(mustJSON(t, body)), http.Header{"Content-Type": {"application/json"}})
		wantError(t, r, http.StatusNotFound, "not_found")
	}
	after, _ := f.store.ConnectionByID(t.Context(), theirs.ID)
	var sess models.ConnectLink
	f.store.DB().Where("id = ?", theirSession.ID).First(&sess)
	if after.Status != models.StatusActive || after.TokenFingerprint != theirs.TokenFingerprint || sess.RevokedAt != nil ||
		f.fake.Count(getresponsetest.EndpointFromFields) != 0 {
		t.Fatalf("the other app's connection or session was touched: %s, revoked %v", after.Status, sess.RevokedAt)
	}

	// The other app's webhook deliveries: neither listed nor readable nor replayable.
	theirDelivery := &models.WebhookDelivery{AppID: betaID, EventType: "connection.created", Payload: "{}", MessageID: "msg_beta",
		Status: "delivered", NextAttemptAt: models.Now(), CreatedAt: models.Now()}
	if err := f.store.DB().Create(theirDelivery).Error; err != nil {
		t.Fatal(err)
	}
	deliveries := decode[struct{ Deliveries []struct{ ID int64 } }](t, mustSend(t, f, http.MethodGet, "/api/v1/webhook-deliveries", key))
	for _, d := range deliveries.Deliveries {
		if d.ID == theirDelivery.ID {
			t.Fatal("the limited key lists another app's delivery")
		}
	}
	wantError(t, mustSend(t, f, http.MethodGet, "/api/v1/webhook-deliveries?app_id="+betaID, key), http.StatusNotFound, "not_found")
	did := strconv.FormatInt(theirDelivery.ID, 10)
	wantError(t, mustSend(t, f, http.MethodGet, "/api/v1/webhook-deliveries/"+did, key), http.StatusNotFound, "not_found")
	wantError(t, mustSend(t, f, http.MethodPost, "/api/v1/webhook-deliveries/"+did+"/replay", key), http.StatusNotFound, "not_found")
	if r := mustSend(t, f, http.MethodGet, "/api/v1/webhook-deliveries/"+did, f.key); r.status != http.StatusOK {
		t.Fatalf("an unlimited key reading the delivery = %d %s", r.status, r.body)
	}

	// Its own app works, and a connect session defaults to it.
	if r := mustSend(t, f, http.MethodPost, "/api/v1/connections/"+mine.ID+"/token", key); r.status != http.StatusOK {
		t.Fatalf("own token = %d %s", r.status, r.body)
	}
	r, _ := f.send(http.MethodPost, "/api/v1/connect-sessions", key, strings.NewReader(`{"customer_ref":"new-one"}`), http.Header{"Content-Type": {"application/json"}})
	if r.status != http.StatusCreated {
		t.Fatalf("a connect session without app_id = %d %s", r.status, r.body)
	}
	var made models.ConnectLink
	f.store.DB().Where("customer_ref = ?", "new-one").First(&made)
	if made.AppID != f.appID {
		t.Fatalf("the session was made for %q", made.AppID)
	}

	// Its audit log holds only entries about its app and that app's connections and links.
	entries := decode[struct {
		Entries []struct {
			Target struct{ Type, ID string } `json:"target"`
		} `json:"entries"`
	}](t, mustSend(t, f, http.MethodGet, "/api/v1/audit?limit=500", key)).Entries
	if len(entries) == 0 {
		t.Fatal("the limited key reads no audit entry")
	}
	for _, e := range entries {
		switch {
		case e.Target.Type == "app" && e.Target.ID == f.appID, e.Target.Type == "connection" && e.Target.ID == mine.ID:
		case e.Target.Type == "link":
			var l models.ConnectLink
			if f.store.DB().Where("id = ?", e.Target.ID).First(&l); l.AppID != f.appID {
				t.Errorf("the limited key reads an entry about another app's link %s", e.Target.ID)
			}
		default:
			t.Errorf("the limited key reads an entry about %s %s", e.Target.Type, e.Target.ID)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRolledKeyOldSecretWorksUntilTheOverlapEnds: rolling a key (on the dashboard,
// with the password) shows a new secret once; the old one keeps working until the
// overlap chosen ends, then answers 401, while the new one goes on. Rolling again
// ends an older secret at once. An expired key answers 401 saying so. (A fake
// clock stands for the hours.)
func TestRolledKeyOldSecretWorksUntilTheOverlapEnds(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	clock := modelstest.NewClock(time.Now().UTC())
	f.apiKeys.Now = clock.Now
	old := f.newKey(t, "billing", "", models.ScopeConnectionsRead)
	var row models.APIKey
	f.store.DB().Where("name = ?", "billing").First(&row)
	works := func(key, what string, want int) {
		t.Helper()
		if r := mustSend(t, f, http.MethodGet, "/api/v1/connections", key); r.status != want {
			t.Fatalf("%s = %d, want %d: %s", what, r.status, want, r.body)
		}
	}
	works(old, "the key before the roll", http.StatusOK)

	// The roll page needs the password and offers 24 hours by default.
	page := f.op.get("/api-keys/" + row.ID + "/roll")
	mustContain(t, page.body, `<option value="24h" selected`, `name="current_password"`)
	r := f.op.submit("/api-keys/"+row.ID+"/roll", "/api-keys/"+row.ID+"/roll", map[string][]string{"overlap": {"1h"}})
	m := shownKeyRe.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("roll = %d\n%s", r.status, r.body)
	}
	rolled := m[1]
	if rolled == old || !strings.HasPrefix(rolled, row.Prefix+"_") {
		t.Fatalf("the rolled key %q… is not a new secret of %s", rolled[:16], row.Prefix)
	}
	mustContain(t, r.body, "The old secret keeps working until")
	works(old, "the old secret right after the roll", http.StatusOK)
	works(rolled, "the new secret", http.StatusOK)
	clock.Advance(59 * time.Minute)
	works(old, "the old secret 59 minutes on", http.StatusOK)
	clock.Advance(2 * time.Minute)
	works(old, "the old secret after the overlap", http.StatusUnauthorized)
	works(rolled, "the new secret after the overlap", http.StatusOK)
	// Scopes survive the roll.
	wantInsufficientScope(t, mustSend(t, f, http.MethodGet, "/api/v1/audit", rolled), "audit:read", "the rolled key on the audit log")

	// Rolled again with an overlap: the secret before ends at once, the last one overlaps.
	r = f.op.submit("/api-keys/"+row.ID+"/roll", "/api-keys/"+row.ID+"/roll", map[string][]string{"overlap": {"24h"}})
	third := shownKeyRe.FindStringSubmatch(r.body)[1]
	works(old, "the first secret after a second roll", http.StatusUnauthorized)
	works(rolled, "the second secret, in its overlap", http.StatusOK)
	works(third, "the third secret", http.StatusOK)
	clock.Advance(25 * time.Hour)
	works(rolled, "the second secret after its overlap", http.StatusUnauthorized)

	// An expired key: 401, saying it expired.
	r = f.op.submit("/api-keys", "/api-keys", map[string][]string{"name": {"short-lived"}, "expires": {"7d"}})
	short := shownKeyRe.FindStringSubmatch(r.body)
	if short == nil {
		t.Fatalf("create a 7-day key = %d\n%s", r.status, r.body)
	}
	works(short[1], "a 7-day key on day one", http.StatusOK)
	clock.Advance(8 * 24 * time.Hour)
	r = mustSend(t, f, http.MethodGet, "/api/v1/connections", short[1])
	if e := wantError(t, r, http.StatusUnauthorized, "unauthorized"); !strings.Contains(e.Error.Message, "expired") {
		t.Fatalf("an expired key's answer: %s", r.body)
	}
	// The roll and the creation are in the audit log, by name.
	var rolls []models.AuditEntry
	f.store.DB().Where("action = ?", models.AuditAPIKeyRolled).Find(&rolls)
	if len(rolls) != 2 || rolls[0].TargetName != "billing" {
		t.Fatalf("roll entries: %+v", rolls)
	}
}

// TestAPIKeyPageShowsScopesAppUseAndExpiry: the API keys page lists each key's
// scopes, app, last use (time and client address) and expiry; the form makes a
// key with the scopes ticked, limited to an app, and refuses an unknown scope.
func TestAPIKeyPageShowsScopesAppUseAndExpiry(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t, getresponsetest.Options{})
	r := f.op.submit("/api-keys", "/api-keys", map[string][]string{"name": {"tokens only"}, "scopes": {"tokens:read", "proxy"},
		"app_id": {f.appID}, "expires": {"90d"}})
	m := shownKeyRe.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("create = %d\n%s", r.status, r.body)
	}
	mustContain(t, r.body, "<code class=\"scope\">tokens:read</code>", "<code class=\"scope\">proxy</code>", "Acme Templates")
	var key models.APIKey
	f.store.DB().Where("name = ?", "tokens only").First(&key)
	if key.Scopes != "tokens:read proxy" || key.AppID != f.appID || key.ExpiresAt == nil ||
		time.Until(*key.ExpiresAt) < 89*24*time.Hour || time.Until(*key.ExpiresAt) > 91*24*time.Hour {
		t.Fatalf("stored key: scopes %q app %q expires %v", key.Scopes, key.AppID, key.ExpiresAt)
	}
	if r := mustSend(t, f, http.MethodGet, "/api/v1/connections", m[1]); r.status != http.StatusForbidden {
		t.Fatalf("the tokens-only key listed connections: %d", r.status)
	}
	f.apiKeys.FlushUses(t.Context())
	page := f.op.get("/api-keys").body
	row := page[strings.Index(page, `data-prefix="`+key.Prefix+`"`):]
	row = row[:strings.Index(row, "</tr>")]
	mustContain(t, row, "tokens:read", "proxy", "Acme Templates", "from 127.0.0.1", key.ExpiresAt.Format("2006-01-02"), `href="/api-keys/`+key.ID+`/roll"`)
	mustContain(t, page, "All scopes", "Every app") // the fixture's key

	r = f.op.submit("/api-keys", "/api-keys", map[string][]string{"name": {"bad"}, "scopes": {"tokens:write"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-scopes"`) {
		t.Fatalf("an unknown scope = %d", r.status)
	}
	r = f.op.submit("/api-keys", "/api-keys", map[string][]string{"name": {"bad"}, "app_id": {"app_nope"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-app_id"`) {
		t.Fatalf("an unknown app = %d", r.status)
	}
}
