package handlers_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
)

// deliveryAnswer is a delivery as the API shows it.
type deliveryAnswer struct {
	ID             int64           `json:"id"`
	WebhookID      string          `json:"webhook_id"`
	ConnectionID   *string         `json:"connection_id"`
	EventType      string          `json:"event_type"`
	Status         string          `json:"status"`
	Attempts       int             `json:"attempts"`
	LastStatusCode *int            `json:"last_status_code"`
	LastDurationMS *int            `json:"last_duration_ms"`
	ReplayOf       *int64          `json:"replay_of"`
	Payload        json.RawMessage `json:"payload"`
}

type deliveryPage struct {
	Deliveries []deliveryAnswer `json:"deliveries"`
	NextCursor *string          `json:"next_cursor"`
}

// TestWebhookDeliveryLogAndReplay: the API lists the delivery log with filters
// and cursors, shows one delivery with its body, and a replay re-sends exactly
// that one delivery — the same webhook-id and body, signed afresh; a pending
// delivery cannot be replayed. The app page shows the log with Replay.
func TestWebhookDeliveryLogAndReplay(t *testing.T) {
	f := newEventsFixture(t)
	conn := f.connect("customer-1", "")
	eventsURL := f.eventsURL(conn.ID)
	for i := range 5 {
		if r := f.post(eventsURL, "application/json", []byte(`{"type":"contact_opened_message"}`), http.Header{"X-Webhook-Id": {fmt.Sprint("id-", i)}}); r.status != http.StatusOK {
			t.Fatalf("event %d = %d", i, r.status)
		}
	}
	if n, err := f.built.Events.RelayOnce(t.Context()); n != 5 || err != nil {
		t.Fatalf("relayed %d, %v", n, err)
	}
	// Pending: listed as such, not replayable.
	page := decode[deliveryPage](t, f.call(http.MethodGet, "/api/v1/webhook-deliveries?status=pending&event_type=getresponse.event", nil))
	if len(page.Deliveries) != 5 || page.NextCursor != nil {
		t.Fatalf("pending: %+v", page)
	}
	wantError(t, f.call(http.MethodPost, fmt.Sprintf("/api/v1/webhook-deliveries/%d/replay", page.Deliveries[0].ID), nil), http.StatusConflict, "delivery_pending")
	f.relay()

	// Paging: two at a time, newest first, every delivery once.
	seen := map[int64]bool{}
	cursor := ""
	var last int64 = 1 << 62
	for pages := 0; ; pages++ {
		q := "/api/v1/webhook-deliveries?limit=2&app_id=" + f.appID
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		p := decode[deliveryPage](t, f.call(http.MethodGet, q, nil))
		for _, d := range p.Deliveries {
			if seen[d.ID] || d.ID >= last {
				t.Fatalf("delivery %d out of order or twice", d.ID)
			}
			seen[d.ID], last = true, d.ID
			if d.Status != "delivered" || d.Attempts != 1 || d.LastStatusCode == nil || *d.LastStatusCode != http.StatusNoContent || d.LastDurationMS == nil {
				t.Fatalf("delivery %+v", d)
			}
		}
		if p.NextCursor == nil {
			break
		}
		cursor = *p.NextCursor
		if pages > 5 {
			t.Fatal("too many pages")
		}
	}
	if len(seen) != 6 { // five events and connection.created
		t.Fatalf("%d deliveries paged, want 6", len(seen))
	}
	filtered := decode[deliveryPage](t, f.call(http.MethodGet, "/api/v1/webhook-deliveries?event_type=connection.created&connection_id="+conn.ID, nil))
	if len(filtered.Deliveries) != 1 || filtered.Deliveries[0].EventType != "connection.created" {
		t.Fatalf("filtered: %+v", filtered)
	}
	wantError(t, f.call(http.MethodGet, "/api/v1/webhook-deliveries?status=lost", nil), http.StatusBadRequest, "invalid_input")
	wantError(t, f.call(http.MethodGet, "/api/v1/webhook-deliveries?cursor=abc", nil), http.StatusBadRequest, "invalid_cursor")

	// One delivery with its body; then replay it.
	target := page.Deliveries[2]
	one := decode[deliveryAnswer](t, f.call(http.MethodGet, fmt.Sprintf("/api/v1/webhook-deliveries/%d", target.ID), nil))
	if one.WebhookID != target.WebhookID || !strings.Contains(string(one.Payload), `"getresponse.event"`) {
		t.Fatalf("one delivery: %+v", one)
	}
	wantError(t, f.call(http.MethodGet, "/api/v1/webhook-deliveries/999999", nil), http.StatusNotFound, "not_found")
	before := len(f.hook.ofType("getresponse.event"))
	var original hookRequest
	for _, r := range f.hook.ofType("getresponse.event") {
		if r.header.Get("webhook-id") == target.WebhookID {
			original = r
		}
	}
	r := f.call(http.MethodPost, fmt.Sprintf("/api/v1/webhook-deliveries/%d/replay", target.ID), nil)
	replay := decode[deliveryAnswer](t, r)
	if r.status != http.StatusAccepted || replay.ReplayOf == nil || *replay.ReplayOf != target.ID || replay.WebhookID != target.WebhookID || replay.Status != "pending" {
		t.Fatalf("replay = %d %s", r.status, r.body)
	}
	time.Sleep(1100 * time.Millisecond) // a new second: the replay's timestamp differs
	f.relay()
	after := f.hook.ofType("getresponse.event")
	if len(after) != before+1 {
		t.Fatalf("%d deliveries after one replay, want %d", len(after), before+1)
	}
	again := after[len(after)-1]
	if again.header.Get("webhook-id") != target.WebhookID || string(again.body) != string(original.body) {
		t.Fatalf("the replay is not the same message: %s %s", again.header.Get("webhook-id"), again.body)
	}
	if again.header.Get("webhook-timestamp") == original.header.Get("webhook-timestamp") {
		t.Fatal("the replay was not signed afresh")
	}
	if err := verifyStandardWebhook(f.secret, again.header, again.body, time.Now()); err != nil {
		t.Fatalf("the replay does not verify: %v", err)
	}

	// The app page: the log's columns, Replay, the filter, the delivery's own page.
	app := f.op.get("/apps/" + f.appID + "?delivery_event=getresponse.event")
	mustContain(t, app.body, `data-testid="deliveries"`, `data-label="Duration"`, `data-label="Next attempt"`, `data-testid="replay"`, "replay of #")
	if n := strings.Count(app.body, `data-testid="delivery-row"`); n != 6 {
		t.Fatalf("%d rows in the filtered log, want 6 (five events and the replay)", n)
	}
	detail := f.op.get(fmt.Sprintf("/apps/%s/webhook-deliveries/%d", f.appID, target.ID))
	mustContain(t, detail.body, target.WebhookID, "getresponse.event", `data-testid="delivery-payload"`)
	if r := f.op.get(fmt.Sprintf("/apps/%s/webhook-deliveries/%d", "app_other", target.ID)); r.status != http.StatusNotFound {
		t.Fatalf("a delivery under another app's path = %d", r.status)
	}
	rr := f.op.submit(fmt.Sprintf("/apps/%s/webhook-deliveries/%d", f.appID, target.ID), fmt.Sprintf("/apps/%s/webhook-deliveries/%d/replay", f.appID, target.ID), nil)
	if rr.status != http.StatusSeeOther {
		t.Fatalf("dashboard replay = %d", rr.status)
	}
	var n int64
	f.store.DB().Model(&models.WebhookDelivery{}).Where("replay_of = ?", target.ID).Count(&n)
	if n != 2 {
		t.Fatalf("%d replays of the delivery, want 2", n)
	}
}

// TestWebhookEventSubscriptions: an app's webhook gets only the chosen event
// types; without getresponse.event its connections' events stay on their
// timelines and are not delivered; choosing none is refused.
func TestWebhookEventSubscriptions(t *testing.T) {
	f := newEventsFixture(t)
	r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/webhook", url.Values{"webhook_url": {f.hook.srv.URL + "/hooks"}, "events_shown": {"1"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-events"`) {
		t.Fatalf("no event chosen = %d", r.status)
	}
	r = f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/webhook", url.Values{"webhook_url": {f.hook.srv.URL + "/hooks"}, "events_shown": {"1"},
		"events": {"connection.disconnected", "nonsense.event"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("an unknown event type = %d", r.status)
	}
	r = f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/webhook", url.Values{"webhook_url": {f.hook.srv.URL + "/hooks"}, "events_shown": {"1"},
		"events": {"connection.disconnected"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("one event type = %d %s", r.status, r.body)
	}
	page := f.op.get("/apps/" + f.appID)
	if !regexp.MustCompile(`name="events" value="connection.disconnected" checked`).MatchString(page.body) ||
		regexp.MustCompile(`name="events" value="connection.created" checked`).MatchString(page.body) {
		t.Fatal("the page does not show the chosen event types")
	}
	conn := f.connect("customer-1", "")
	if r := f.post(f.eventsURL(conn.ID), "application/json", []byte(`{"type":"contact_subscribed"}`), http.Header{"X-Webhook-Id": {"s1"}}); r.status != http.StatusOK {
		t.Fatalf("event = %d", r.status)
	}
	f.relay()
	f.call(http.MethodDelete, "/api/v1/connections/"+conn.ID, nil)
	f.relay()
	if n := len(f.hook.ofType("connection.created")) + len(f.hook.ofType("getresponse.event")); n != 0 {
		t.Fatalf("%d deliveries of event types not chosen", n)
	}
	if n := len(f.hook.ofType("connection.disconnected")); n != 1 {
		t.Fatalf("%d connection.disconnected deliveries, want 1", n)
	}
	mustContain(t, f.op.get("/connections/"+conn.ID).body, "GetResponse webhook contact_subscribed")
}
