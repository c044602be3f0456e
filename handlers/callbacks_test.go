package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// turnCallbacksOn sets the app's "Register GetResponse callbacks" on the dashboard.
func (f *eventsFixture) turnCallbacksOn(actions ...string) {
	f.t.Helper()
	r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/callbacks", url.Values{"callbacks": {"on"}, "actions": actions})
	if r.status != http.StatusSeeOther {
		f.t.Fatalf("callbacks = %d\n%s", r.status, r.body)
	}
}

// runCallbacks runs the registration worker until nothing is due.
func (f *eventsFixture) runCallbacks() {
	f.t.Helper()
	for range 10 {
		n, err := f.built.Callbacks.RunOnce(f.t.Context())
		if err != nil {
			f.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// callbacksOf reads a connection's registration.
func (f *eventsFixture) callbacksOf(id string) *models.ConnectionCallback {
	f.t.Helper()
	cb, err := f.store.CallbackOf(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return cb
}

// TestCallbacksRegisteredOnConnectAndRemovedOnDisconnect: with the app's callbacks
// on, a customer's connect registers the connection's events URL at GetResponse
// (the fake) with the chosen actions, using the connection's own token; the fake's
// callbacks then arrive and are relayed; a disconnect removes them at GetResponse
// (with the token kept for that, then erased) and ends the URL.
func TestCallbacksRegisteredOnConnectAndRemovedOnDisconnect(t *testing.T) {
	f := newEventsFixture(t)
	f.turnCallbacksOn("open", "click", "subscribe")
	conn := f.connect("customer-7", "")
	if cb := f.callbacksOf(conn.ID); cb.Want != models.CallbacksRegister || cb.State != models.CallbacksPending {
		t.Fatalf("after the connect: %+v", cb)
	}
	before := f.fake.Count(getresponsetest.EndpointCallbacks)
	f.runCallbacks()
	eventsURL := f.eventsURL(conn.ID)
	got, on := f.fake.Callbacks(conn.AccountID)
	if !on || got.URL != eventsURL {
		t.Fatalf("GetResponse's callback setting = %+v (on %v), want the events URL", got, on)
	}
	for a, want := range map[string]bool{"open": true, "click": true, "subscribe": true, "unsubscribe": false, "survey": false, "goal": false} {
		if got.Actions[a] != want {
			t.Errorf("action %s = %v, want %v", a, got.Actions[a], want)
		}
	}
	if calls := f.fake.Count(getresponsetest.EndpointCallbacks) - before; calls != 2 { // GET the setting, POST it
		t.Errorf("%d calls to /accounts/callbacks, want 2", calls)
	}
	if cb := f.callbacksOf(conn.ID); cb.State != models.CallbacksDone || cb.LastError != "" {
		t.Fatalf("after registering: %+v", cb)
	}
	page := f.op.get("/connections/" + conn.ID)
	mustContain(t, page.body, `data-testid="callbacks-label">Registered<`, "callbacks.registered", eventsURL)
	api := f.call(http.MethodGet, "/api/v1/connections/"+conn.ID, nil)
	var v struct {
		Callbacks struct {
			Want, State string
			Actions     []string
		} `json:"callbacks"`
	}
	json.Unmarshal([]byte(api.body), &v)
	if v.Callbacks.Want != "register" || v.Callbacks.State != "done" || strings.Join(v.Callbacks.Actions, ",") != "open,click,subscribe" {
		t.Fatalf("API callbacks: %s", api.body)
	}

	// GetResponse calls the callback: it arrives, once, and is relayed.
	d, err := f.fake.FireCallback(t.Context(), conn.AccountID, "subscribe", nil)
	if err != nil || !d.Accepted {
		t.Fatalf("FireCallback = %+v, %v", d, err)
	}
	if _, err := f.fake.FireCallback(t.Context(), conn.AccountID, "survey", nil); err == nil {
		t.Fatal("a callback fired for an action not registered")
	}
	f.relay()
	if n := len(f.hook.ofType("getresponse.event")); n != 1 {
		t.Fatalf("%d events relayed, want the subscribe", n)
	}

	// Disconnect: removed at GetResponse, the kept token erased, the URL ended.
	if r := f.call(http.MethodDelete, "/api/v1/connections/"+conn.ID, nil); r.status != http.StatusOK {
		t.Fatalf("disconnect = %d", r.status)
	}
	if enc, _ := f.store.CallbackAccessToken(context.Background(), conn.ID); enc == "" {
		t.Fatal("no access token kept to remove the callbacks with")
	}
	f.runCallbacks()
	if _, on := f.fake.Callbacks(conn.AccountID); on {
		t.Fatal("the callbacks are still on at GetResponse after the disconnect")
	}
	cb := f.callbacksOf(conn.ID)
	if cb.Want != models.CallbacksRemove || cb.State != models.CallbacksDone {
		t.Fatalf("after the disconnect: %+v", cb)
	}
	if enc, _ := f.store.CallbackAccessToken(context.Background(), conn.ID); enc != "" {
		t.Fatal("the disconnected connection's access token is still kept")
	}
	if r := f.post(eventsURL, "", nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("the events URL after the disconnect = %d", r.status)
	}
	mustContain(t, f.op.get("/connections/"+conn.ID).body, `data-testid="callbacks-label">Removed<`, "callbacks.removed")
}

// TestCallbacksReconnectRegistersAgainAndForeignURLsAreLeftAlone: a reconnect
// registers again; callbacks the customer pointed elsewhere meanwhile are noted
// when replaced, and a removal leaves callbacks that no longer go to grconnect.
func TestCallbacksReconnectRegistersAgainAndForeignURLsAreLeftAlone(t *testing.T) {
	f := newEventsFixture(t)
	f.turnCallbacksOn("open")
	conn := f.connect("customer-1", "")
	f.runCallbacks()
	f.fake.SetCallbacks(conn.AccountID, "https://crm.example.net/gr?key=secret", "open")
	// Reconnect (the same account through a reconnect link).
	r := f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]any{"connection_id": conn.ID})
	var sess struct{ URL string }
	json.Unmarshal([]byte(r.body), &sess)
	customer := f.browser()
	state := f.startFlow(customer, sess.URL)
	redirect, err := f.fake.Approve(f.clientID, state, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := f.callback(customer, redirect); r.status != http.StatusOK {
		t.Fatalf("reconnect = %d", r.status)
	}
	f.runCallbacks()
	got, _ := f.fake.Callbacks(conn.AccountID)
	if got.URL != f.eventsURL(conn.ID) {
		t.Fatalf("after the reconnect the callbacks go to %q", got.URL)
	}
	cb := f.callbacksOf(conn.ID)
	if !strings.Contains(cb.Note, "crm.example.net") || strings.Contains(cb.Note, "secret") {
		t.Fatalf("the note on the replaced callbacks: %q", cb.Note)
	}
	// The customer points them elsewhere again; a disconnect leaves them be.
	f.fake.SetCallbacks(conn.AccountID, "https://crm.example.net/gr", "open")
	f.call(http.MethodDelete, "/api/v1/connections/"+conn.ID, nil)
	f.runCallbacks()
	if got, on := f.fake.Callbacks(conn.AccountID); !on || got.URL != "https://crm.example.net/gr" {
		t.Fatalf("a removal touched callbacks that go elsewhere: %+v", got)
	}
	if cb := f.callbacksOf(conn.ID); cb.State != models.CallbacksDone || !strings.Contains(cb.Note, "left as they are") {
		t.Fatalf("after the disconnect: %+v", cb)
	}
}

// TestCallbacksFailuresSayWhoMustAct: GetResponse down is retried (nobody acts)
// and registers once it answers; a refusal only the customer can fix fails at
// once and the connection's page says so; the registration is kept across a
// restart of the worker (it is a row, not memory).
func TestCallbacksFailuresSayWhoMustAct(t *testing.T) {
	f := newEventsFixture(t)
	f.turnCallbacksOn("open", "click")
	conn := f.connect("customer-1", "")

	f.fake.FailAPI(getresponsetest.APIUnavailable, -1)
	f.runCallbacks()
	cb := f.callbacksOf(conn.ID)
	if cb.State != models.CallbacksPending || cb.Actor != "wait" || cb.LastError == "" || cb.Attempts != 1 || !cb.NextAttemptAt.After(time.Now()) {
		t.Fatalf("while GetResponse is down: %+v", cb)
	}
	page := f.op.get("/connections/" + conn.ID)
	mustContain(t, page.body, `data-testid="callbacks-label">Registering<`, `data-testid="callbacks-actor">Nobody`)
	f.fake.FailAPI(getresponsetest.APIOK, 0)
	// Time passes (the next attempt is due); a new worker, as after a restart, sends it.
	f.store.DB().Model(&models.ConnectionCallback{}).Where("connection_id = ?", conn.ID).Update("next_attempt_at", time.Now().UTC().Add(-time.Second))
	f.runCallbacks()
	if cb := f.callbacksOf(conn.ID); cb.State != models.CallbacksDone {
		t.Fatalf("after GetResponse came back: %+v", cb)
	}

	// A GetResponse user without the rights: the customer's to fix; no retries.
	f.fake.AddAccount(getresponsetest.Account{AccountID: "R1", Email: "restricted@example.com"})
	other := f.connect("customer-2", "R1")
	f.fake.FailAPIFor("R1", getresponsetest.APIMissingPermissions, -1)
	f.runCallbacks()
	cb = f.callbacksOf(other.ID)
	if cb.State != models.CallbacksFailed || cb.Actor != "customer" || !strings.Contains(cb.LastError, "1023") {
		t.Fatalf("missing permissions: %+v", cb)
	}
	page = f.op.get("/connections/" + other.ID)
	mustContain(t, page.body, `data-testid="callbacks-label">Registration failed<`, `data-testid="callbacks-actor">The customer`, "callbacks.failed")
}

// TestCallbacksSettingAppliesToExistingConnections: turning the app's callbacks
// on queues every live connection; turning them off removes them again.
func TestCallbacksSettingAppliesToExistingConnections(t *testing.T) {
	f := newEventsFixture(t)
	a := f.connect("customer-1", "")
	f.fake.AddAccount(getresponsetest.Account{AccountID: "B2", Email: "b2@example.com"})
	b := f.connect("customer-2", "B2")
	r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/callbacks", url.Values{"callbacks": {"on"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-actions"`) {
		t.Fatalf("callbacks on without actions = %d", r.status)
	}
	f.turnCallbacksOn("unsubscribe")
	f.runCallbacks()
	for _, c := range []*models.Connection{a, b} {
		if got, on := f.fake.Callbacks(c.AccountID); !on || !got.Actions["unsubscribe"] || got.Actions["open"] {
			t.Fatalf("%s: %+v", c.AccountID, got)
		}
	}
	if r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/callbacks", url.Values{}); r.status != http.StatusSeeOther {
		t.Fatalf("callbacks off = %d", r.status)
	}
	f.runCallbacks()
	for _, c := range []*models.Connection{a, b} {
		if _, on := f.fake.Callbacks(c.AccountID); on {
			t.Fatalf("%s still has callbacks", c.AccountID)
		}
	}
	// The accounts' events URLs still take webhooks from GetResponse's panel.
	if r := f.post(f.eventsURL(a.ID), "application/json", []byte(`{"type":"contact_subscribed"}`), http.Header{"X-Webhook-Id": {"z"}}); r.status != http.StatusOK {
		t.Fatalf("events URL with callbacks off = %d", r.status)
	}
}
