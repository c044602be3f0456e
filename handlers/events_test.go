package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/config"
)

// relayedEvent is the body of a getresponse.event webhook, as a receiver reads it.
type relayedEvent struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	ConnectionID string `json:"connection_id"`
	CustomerRef  string `json:"customer_ref"`
	AccountID    string `json:"account_id"`
	Connection   struct {
		ID          string `json:"id"`
		CustomerRef string `json:"customer_ref"`
	} `json:"connection"`
	Event struct {
		Source    string          `json:"source"`
		Type      string          `json:"type"`
		WebhookID string          `json:"webhook_id"`
		AccountID string          `json:"account_id"`
		Payload   json.RawMessage `json:"payload"`
	} `json:"event"`
}

// TestEventsRelayedOnceSignedAsStandardWebhooks is the main path: the
// fake GetResponse posts a webhook event to a connection's events URL, twice with
// one X-Webhook-ID (a retry); grconnect answers {"status":"OK"} both times, keeps
// it once, shows it on the timeline, and delivers it to the app's webhook once as
// getresponse.event — naming the connection, the customer and the account, with
// the original payload — signed so that a verifier written from the Standard
// Webhooks specification accepts it. The old signature header still comes along.
func TestEventsRelayedOnceSignedAsStandardWebhooks(t *testing.T) {
	f := newEventsFixture(t)
	conn := f.connect("customer-42", "")
	eventsURL := f.eventsURL(conn.ID)
	if !strings.HasPrefix(eventsURL, f.cfg.BaseURL+"/events/") {
		t.Fatalf("events_url = %q", eventsURL)
	}
	ev := getresponsetest.WebhookEvent{ID: "9b287712-80b9-4aba-ad5e-df31929dad75", Type: "contact_opened_message",
		AccountID: conn.AccountID, ContactEmail: "reader@example.com"}
	body := getresponsetest.WebhookBody(ev, time.Now())
	ev.Body = body
	for i := range 2 {
		d := f.fake.FireWebhook(t.Context(), eventsURL, ev)
		if !d.Accepted || d.Attempts != 1 || d.Status != http.StatusOK || strings.TrimSpace(d.Body) != `{"status":"OK"}` {
			t.Fatalf("delivery %d: %+v", i+1, d)
		}
	}
	f.relay()

	got := f.hook.ofType("getresponse.event")
	if len(got) != 1 {
		t.Fatalf("%d getresponse.event deliveries for one X-Webhook-ID, want 1", len(got))
	}
	if err := verifyStandardWebhook(f.secret, got[0].header, got[0].body, time.Now()); err != nil {
		t.Fatalf("the delivery does not verify as Standard Webhooks: %v\n%v", err, got[0].header)
	}
	if err := verifyStandardWebhook(f.secret, got[0].header, append(bytes.Clone(got[0].body), ' '), time.Now()); err == nil {
		t.Fatal("a changed body verified: the check proves nothing")
	}
	if got[0].header.Get("X-Grconnect-Signature") == "" {
		t.Error("the deprecated X-Grconnect-Signature header is no longer sent")
	}
	var p relayedEvent
	if err := json.Unmarshal(got[0].body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "getresponse.event" || p.ConnectionID != conn.ID || p.CustomerRef != "customer-42" || p.AccountID != conn.AccountID ||
		p.Connection.ID != conn.ID || p.ID != got[0].header.Get("webhook-id") {
		t.Fatalf("relayed body: %s", got[0].body)
	}
	if p.Event.Source != "webhook" || p.Event.Type != "contact_opened_message" || p.Event.WebhookID != ev.ID || p.Event.AccountID != conn.AccountID {
		t.Fatalf("relayed event: %+v", p.Event)
	}
	var sent, relayed any
	json.Unmarshal(body, &sent)
	json.Unmarshal(p.Event.Payload, &relayed)
	if fmt.Sprint(sent) != fmt.Sprint(relayed) {
		t.Fatalf("the original payload changed:\n sent %s\n got  %s", body, p.Event.Payload)
	}
	// The connection's own event went too, and verifies the same way.
	if created := f.hook.ofType("connection.created"); len(created) != 1 || verifyStandardWebhook(f.secret, created[0].header, created[0].body, time.Now()) != nil {
		t.Fatalf("connection.created: %d deliveries", len(created))
	}

	// On the timeline, once.
	page := f.op.get("/connections/" + conn.ID)
	if n := strings.Count(page.body, "GetResponse webhook contact_opened_message for reader@example.com"); n != 1 {
		t.Fatalf("the event is on the timeline %d times", n)
	}
	// Another event (a new X-Webhook-ID) is relayed too.
	ev2 := getresponsetest.WebhookEvent{Type: "contact_subscribed", AccountID: conn.AccountID, ContactEmail: "new@example.com"}
	if d := f.fake.FireWebhook(t.Context(), eventsURL, ev2); !d.Accepted {
		t.Fatalf("second event: %+v", d)
	}
	f.relay()
	if n := len(f.hook.ofType("getresponse.event")); n != 2 {
		t.Fatalf("%d getresponse.event deliveries after a second event, want 2", n)
	}
	// The request log names the route, never the token.
	token := eventsURL[strings.LastIndex(eventsURL, "/")+1:]
	logs := f.logs.String()
	if strings.Contains(logs, token) {
		t.Fatal("the events URL's token reached the log")
	}
	if !strings.Contains(logs, "route=/events/:token") {
		t.Fatal("the request log has no line for the events route")
	}
	shown := 0
	for _, a := range f.pages {
		if strings.Contains(a, f.secret) {
			shown++
		}
	}
	if shown != 1 {
		t.Fatalf("the signing secret was on %d pages, want the one that made it", shown)
	}
}

// countingHooks names each counting callback apart.
var countingHooks atomic.Int64

// countStatements counts the SQL statements store runs while fn runs, and keeps
// their text (through GORM's callbacks, which every store method goes through).
func countStatements(t *testing.T, db *gorm.DB, fn func()) (n int, sqls []string) {
	t.Helper()
	var mu sync.Mutex
	on := false
	count := func(tx *gorm.DB) {
		mu.Lock()
		defer mu.Unlock()
		if on {
			n++
			sqls = append(sqls, tx.Dialector.Explain(tx.Statement.SQL.String(), tx.Statement.Vars...))
		}
	}
	name := fmt.Sprintf("test:count-%d", countingHooks.Add(1))
	cb := db.Callback()
	for _, err := range []error{
		cb.Query().After("gorm:query").Register(name, count), cb.Row().After("gorm:row").Register(name, count),
		cb.Raw().After("gorm:raw").Register(name, count), cb.Create().After("gorm:create").Register(name, count),
		cb.Update().After("gorm:update").Register(name, count), cb.Delete().After("gorm:delete").Register(name, count),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	on = true
	mu.Unlock()
	fn()
	mu.Lock()
	on = false
	mu.Unlock()
	return n, sqls
}

// TestEventsURLWrongTokenIs404WithOneIndexedRead: a token of no connection is a
// 404 after one read through the unique index — the store's prepared lookup
// (models.EventsTargetQuery, whose plan is checked here), and not one statement
// more through the store (counted) — and a token of the wrong shape after none;
// it is answered exactly as the URL of a disconnected connection and a rotated-
// away URL are: nothing tells whether a token ever existed.
func TestEventsURLWrongTokenIs404WithOneIndexedRead(t *testing.T) {
	f := newEventsFixture(t)
	conn := f.connect("customer-1", "")
	eventsURL := f.eventsURL(conn.ID)
	event := []byte(`{"type":"contact_subscribed","account":{"accountId":"VfEy1"}}`)
	hdr := http.Header{"X-Webhook-Id": {"w-1"}}

	var r response
	n, sqls := countStatements(t, f.store.DB(), func() {
		r = f.post("/events/"+strings.Repeat("a", 52), "application/json", event, hdr)
	})
	if r.status != http.StatusNotFound || n != 0 {
		t.Fatalf("unknown token = %d after %d statements besides the lookup: %v", r.status, n, sqls)
	}
	notFound := r.body
	if !f.store.IsPostgres() {
		var plan []struct {
			ID, Parent, Notused int
			Detail              string
		}
		f.store.DB().Raw("EXPLAIN QUERY PLAN "+models.EventsTargetQuery, strings.Repeat("0", 64)).Scan(&plan)
		if len(plan) != 1 || !strings.Contains(plan[0].Detail, "INDEX connections_events_token") {
			t.Fatalf("the lookup does not read through the unique index: %+v", plan)
		}
	}
	for _, bad := range []string{"short", strings.Repeat("A", 52), strings.Repeat("a", 51) + "!", strings.Repeat("a", 53)} {
		n, _ := countStatements(t, f.store.DB(), func() { r = f.post("/events/"+url.PathEscape(bad), "application/json", event, hdr) })
		if r.status != http.StatusNotFound || n != 0 {
			t.Fatalf("malformed token %q = %d after %d statements", bad, r.status, n)
		}
	}

	// The real URL works; rotated away or disconnected, it is the same 404.
	// (The counter sees the store's statements: storing the event is one.)
	if n, _ := countStatements(t, f.store.DB(), func() { r = f.post(eventsURL, "application/json", event, hdr) }); r.status != http.StatusOK || n != 1 {
		t.Fatalf("the events URL = %d %s after %d statements besides the lookup", r.status, r.body, n)
	}
	rr := f.call(http.MethodPost, "/api/v1/connections/"+conn.ID+"/events-url/rotate", nil)
	var rotated struct {
		EventsURL string `json:"events_url"`
	}
	if err := json.Unmarshal([]byte(rr.body), &rotated); rr.status != http.StatusOK || err != nil || rotated.EventsURL == eventsURL || rotated.EventsURL == "" {
		t.Fatalf("rotate = %d %s", rr.status, rr.body)
	}
	for _, u := range []string{eventsURL} {
		if r = f.post(u, "application/json", event, hdr); r.status != http.StatusNotFound || sameExceptID(r.body) != sameExceptID(notFound) {
			t.Fatalf("rotated-away URL = %d %s", r.status, r.body)
		}
	}
	if r = f.post(rotated.EventsURL, "application/json", event, http.Header{"X-Webhook-Id": {"w-2"}}); r.status != http.StatusOK {
		t.Fatalf("the new URL = %d", r.status)
	}
	if r := f.call(http.MethodDelete, "/api/v1/connections/"+conn.ID, nil); r.status != http.StatusOK {
		t.Fatalf("disconnect = %d", r.status)
	}
	if r = f.post(rotated.EventsURL, "application/json", event, http.Header{"X-Webhook-Id": {"w-3"}}); r.status != http.StatusNotFound || sameExceptID(r.body) != sameExceptID(notFound) {
		t.Fatalf("a disconnected connection's URL = %d %s", r.status, r.body)
	}
	if v := f.call(http.MethodGet, "/api/v1/connections/"+conn.ID, nil); !strings.Contains(v.body, `"events_url":null`) {
		t.Fatalf("a disconnected connection still shows an events URL: %s", v.body)
	}
	page := f.op.get("/connections/" + conn.ID)
	mustContain(t, page.body, `data-testid="events-ended"`)
	mustNotContain(t, page.body, rotated.EventsURL)
}

// sameExceptID drops the request ID, which differs on every answer.
func sameExceptID(body string) string {
	var v struct {
		Status string `json:"status"`
		Error  struct{ Code, Message string }
	}
	json.Unmarshal([]byte(body), &v)
	return v.Status + "|" + v.Error.Code + "|" + v.Error.Message
}

// TestEventsBodiesAreCappedAndChecked: an event body is at most 256 KiB (413 by
// its Content-Length or while it is read), and a request that is no GetResponse
// event is a 400, stored nowhere.
func TestEventsBodiesAreCappedAndChecked(t *testing.T) {
	f := newEventsFixture(t)
	conn := f.connect("customer-1", "")
	eventsURL := f.eventsURL(conn.ID)
	big := append([]byte(`{"type":"contact_subscribed","pad":"`), bytes.Repeat([]byte("x"), 256<<10)...)
	big = append(big, `"}`...)
	if r := f.post(eventsURL, "application/json", big, nil); r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 256 KiB + body = %d", r.status)
	}
	// Without a Content-Length (chunked), the cap holds while reading.
	req, _ := http.NewRequest(http.MethodPost, eventsURL, struct{ *bytes.Reader }{bytes.NewReader(big)})
	req.Header.Set("Content-Type", "application/json")
	if r, err := f.roundTrip(req); err != nil || r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a chunked 256 KiB + body = %v %v", r.status, err)
	}
	fits := append([]byte(`{"type":"contact_subscribed","pad":"`), bytes.Repeat([]byte("x"), 200<<10)...)
	fits = append(fits, `"}`...)
	if r := f.post(eventsURL, "application/json", fits, http.Header{"X-Webhook-Id": {"big-but-fits"}}); r.status != http.StatusOK {
		t.Fatalf("a 200 KiB body = %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		name, ct, body string
	}{
		{"not JSON", "application/json", `{"type":`},
		{"plain text", "text/plain", "hello"},
		{"no action", "application/x-www-form-urlencoded", "CONTACT_ID=1"},
		{"empty", "", ""},
	} {
		if r := f.post(eventsURL, c.ct, []byte(c.body), nil); r.status != http.StatusBadRequest || !strings.Contains(r.body, "invalid_event") {
			t.Errorf("%s = %d %s", c.name, r.status, r.body)
		}
	}
	var n int64
	f.store.DB().Model(&models.InboundEvent{}).Count(&n)
	if n != 1 {
		t.Fatalf("%d events stored, want only the one that fits", n)
	}
}

// TestEventsRateLimitHoldsUnderParallelRequests sends many events for one
// connection at once: exactly its burst is taken, the rest are 429 with
// Retry-After (GetResponse sends those again), and another connection is not
// affected.
func TestEventsRateLimitHoldsUnderParallelRequests(t *testing.T) {
	const rate = 2 // per second: bursts of 20
	f := newEventsFixture(t, func(c *config.Config) { c.EventsRate = rate })
	conn := f.connect("customer-1", "")
	f.fake.AddAccount(getresponsetest.Account{AccountID: "B2", Email: "b2@example.com"})
	other := f.connect("customer-2", "B2")
	eventsURL, otherURL := f.eventsURL(conn.ID), f.eventsURL(other.ID)

	const parallel = 60
	statuses := make(chan response, parallel)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range parallel {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodPost, eventsURL, strings.NewReader(`{"type":"contact_opened_message"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Webhook-ID", fmt.Sprintf("p-%d", i))
			r, err := f.roundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			statuses <- r
		})
	}
	close(start)
	wg.Wait()
	close(statuses)
	ok, limited := 0, 0
	for r := range statuses {
		switch r.status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			if r.header.Get("Retry-After") == "" {
				t.Error("a 429 without Retry-After")
			}
		default:
			t.Errorf("status %d: %s", r.status, r.body)
		}
	}
	// The bucket refills by 2 a second while the requests run: allow that much.
	if ok < 10*rate || ok > 10*rate+2 || ok+limited != parallel {
		t.Fatalf("%d taken, %d refused of %d at once; want a burst of %d", ok, limited, parallel, 10*rate)
	}
	var stored int64
	f.store.DB().Model(&models.InboundEvent{}).Where("connection_id = ?", conn.ID).Count(&stored)
	if int(stored) != ok {
		t.Fatalf("%d events stored for %d answered OK", stored, ok)
	}
	if r := f.post(otherURL, "application/json", []byte(`{"type":"contact_subscribed"}`), http.Header{"X-Webhook-Id": {"x"}}); r.status != http.StatusOK {
		t.Fatalf("another connection's URL = %d", r.status)
	}
}

// TestCallbackEventsAreKeptOncePerContentInAWindow: GetResponse's callbacks (a
// GET with parameters, or a form POST) carry no ID; the same content twice within
// a minute is kept once, and relayed with the parameters as its payload.
func TestCallbackEventsAreKeptOncePerContentInAWindow(t *testing.T) {
	f := newEventsFixture(t)
	conn := f.connect("customer-1", "")
	eventsURL := f.eventsURL(conn.ID)
	params := getresponsetest.CallbackParams("open", conn.AccountID, "friend@example.com")
	for range 2 {
		resp, err := http.Get(eventsURL + "?" + params.Encode())
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("callback GET = %v %v", resp, err)
		}
		resp.Body.Close()
	}
	// The same as a form POST is the same event; a click is another.
	if r := f.post(eventsURL, "application/x-www-form-urlencoded", []byte(params.Encode()), nil); r.status != http.StatusOK {
		t.Fatalf("callback POST = %d", r.status)
	}
	click := getresponsetest.CallbackParams("click", conn.AccountID, "friend@example.com")
	if r := f.post(eventsURL, "application/x-www-form-urlencoded", []byte(click.Encode()), nil); r.status != http.StatusOK {
		t.Fatalf("click = %d", r.status)
	}
	f.relay()
	got := f.hook.ofType("getresponse.event")
	if len(got) != 2 {
		t.Fatalf("%d events relayed, want open and click once each", len(got))
	}
	var p relayedEvent
	for _, g := range got { // relayed events are not ordered: find the open
		if json.Unmarshal(g.body, &p); p.Event.Type == "open" {
			break
		}
	}
	var payload map[string]string
	json.Unmarshal(p.Event.Payload, &payload)
	if p.Event.Source != "callback" || p.Event.Type != "open" || payload["contact_email"] != "friend@example.com" || payload["MESSAGE_ID"] != "M1" ||
		p.CustomerRef != "customer-1" || p.AccountID != conn.AccountID {
		t.Fatalf("relayed callback: %+v", p)
	}
	// A minute later the same content is a new event.
	f.built.Events.Now = func() time.Time { return time.Now().UTC().Add(2 * time.Minute) }
	if r := f.post(eventsURL, "application/x-www-form-urlencoded", []byte(params.Encode()), nil); r.status != http.StatusOK {
		t.Fatalf("later callback = %d", r.status)
	}
	var n int64
	f.store.DB().Model(&models.InboundEvent{}).Count(&n)
	if n != 3 {
		t.Fatalf("%d events kept, want 3", n)
	}
}

// TestEventsStoredBeforeAnsweredSurviveARelayCrash: an event answered OK is in
// the database before the answer; a relay that died holding its lease leaves it
// to the next one, which relays it once.
func TestEventsStoredBeforeAnsweredSurviveARelayCrash(t *testing.T) {
	f := newEventsFixture(t)
	conn := f.connect("customer-1", "")
	if r := f.post(f.eventsURL(conn.ID), "application/json", []byte(`{"type":"contact_subscribed"}`), http.Header{"X-Webhook-Id": {"k1"}}); r.status != http.StatusOK {
		t.Fatalf("event = %d", r.status)
	}
	// A relay that claimed the event and died before recording anything.
	claimed, err := f.store.ClaimInbound(context.Background(), "dead-relay", time.Now().UTC(), time.Minute, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %d, %v", len(claimed), err)
	}
	if n, _ := f.built.Events.RelayOnce(t.Context()); n != 0 {
		t.Fatal("a leased event was relayed twice")
	}
	if _, _, err := f.store.ExpireOrphanLeases(context.Background(), time.Now().UTC()); err != nil { // the next start finds no other server
		t.Fatal(err)
	}
	f.relay()
	if n := len(f.hook.ofType("getresponse.event")); n != 1 {
		t.Fatalf("%d deliveries after the crash, want 1", n)
	}
}
