package handlers_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestBrowserEventsPagesAt1280And390: the app page's webhook card and delivery log
// (with delivered, failed-and-retrying and replayed deliveries of long names and
// errors), a delivery's own page, the callbacks card, and a connection's events
// card (its URL, the steps for GetResponse's panel, a failed callback
// registration with who must act) fit a 1280 px screen and a 390 px phone, in
// light and dark mode, and pass the accessibility check; Replay and the log's
// filter work from the browser.
func TestBrowserEventsPagesAt1280And390(t *testing.T) {
	ctx := browserTest(t)
	f := newEventsFixture(t)
	// A receiver down for maintenance, so the log shows a failing delivery.
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(refuse.Close)
	f.turnCallbacksOn("open", "click", "subscribe", "unsubscribe")
	f.fake.AddAccount(longAccount)
	conn := f.connect(longRef, longAccount.AccountID)
	f.fake.AddAccount(getresponsetest.Account{AccountID: "R9", Email: "restricted." + strings.Repeat("r", 40) + "@example.com"})
	restricted := f.connect("customer-restricted-"+strings.Repeat("9", 40), "R9")
	f.fake.FailAPIFor("R9", getresponsetest.APIMissingPermissions, -1)
	f.runCallbacks()
	eventsURL := f.eventsURL(conn.ID)
	for i := range 3 {
		ev := getresponsetest.WebhookEvent{Type: "contact_clicked_message_link", AccountID: conn.AccountID,
			ContactEmail: fmt.Sprintf("reader-%d-%s@long-customer-domain-name-example.com", i, strings.Repeat("q", 30))}
		if d := f.fake.FireWebhook(t.Context(), eventsURL, ev); !d.Accepted {
			t.Fatalf("event %d: %+v", i, d)
		}
	}
	if _, err := f.fake.FireCallback(t.Context(), conn.AccountID, "open", nil); err != nil {
		t.Fatal(err)
	}
	f.relay()
	// One more event to a receiver that answers 503: pending, with an error and a next attempt.
	f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Update("webhook_url", refuse.URL+"/hooks/"+strings.Repeat("h", 60))
	f.fake.FireWebhook(t.Context(), eventsURL, getresponsetest.WebhookEvent{Type: "contact_subscribed", AccountID: conn.AccountID})
	f.relay()
	var first models.WebhookDelivery
	f.store.DB().Where("event_type = ?", "getresponse.event").Order("id").First(&first)

	shots := newScreenshots(t, "events")
	op := newSession(t, ctx, f.srv.URL, "operator", shots)
	op.open("/login")
	op.fill("#email", annEmail)
	op.fill("#password", annPass)
	op.click(`[data-testid="login-submit"]`)

	for _, phone := range []bool{false, true} {
		op.phone(phone)
		width := map[bool]string{false: "1280", true: "390"}[phone]
		// The app page: webhook card, delivery log, callbacks card.
		op.open("/apps/" + f.appID)
		if n := op.count(`[data-testid="delivery-row"]`); n != 7 {
			op.fatalf("%d deliveries in the log, want 7", n)
		}
		op.wantText(`[data-testid="deliveries"]`, "HTTP 503", "getresponse.event", "connection.created")
		op.fits("app-" + width)
		op.page("app-a11y-" + width)
		// The filter, without JavaScript's help.
		op.do("filter on failing ones", chromedp.SetValue(chromedp.CSS(`#delivery_status`), "pending"))
		op.click(`[data-testid="delivery-filter"]`)
		if n := op.count(`[data-testid="delivery-row"]`); n != 1 {
			op.fatalf("%d pending deliveries shown, want 1", n)
		}
		op.wantText(`[data-testid="delivery-status"]`, "pending")
		op.fits("app-filtered-" + width)
		// A delivery's page, with its body.
		op.open(fmt.Sprintf("/apps/%s/webhook-deliveries/%d", f.appID, first.ID))
		op.wantText(`[data-testid="delivery-webhook-id"]`, first.WebhookID())
		op.wantText(`[data-testid="delivery-payload"]`, `"getresponse.event"`)
		op.fits("delivery-" + width)
		op.page("delivery-a11y-" + width)
		// The connection's events card: the URL, the steps, the callbacks.
		op.open("/connections/" + conn.ID)
		if got := op.value("#events-url"); got != eventsURL {
			op.fatalf("the events card shows %q, want %q", got, eventsURL)
		}
		op.wantText(`[data-testid="callbacks-label"]`, "Registered")
		op.wantText(`[data-testid="timeline"]`, "GetResponse callback open", "GetResponse webhook contact_clicked_message_link")
		op.do("open the steps", chromedp.Click(chromedp.CSS(`[data-testid="events-steps"] summary`), chromedp.NodeVisible))
		if steps := op.value("#events-instructions"); !strings.Contains(steps, eventsURL) || !strings.Contains(steps, "Create webhook") {
			op.fatalf("the steps to send: %q", steps)
		}
		op.fits("connection-events-" + width)
		op.page("connection-events-a11y-" + width)
		op.open("/connections/" + restricted.ID)
		op.wantText(`[data-testid="callbacks-label"]`, "Registration failed")
		op.wantText(`[data-testid="callbacks-actor"]`, "The customer")
		op.fits("connection-callbacks-failed-" + width)
	}

	// Replay from the browser: the log gets the replay.
	op.phone(false)
	op.open(fmt.Sprintf("/apps/%s/webhook-deliveries/%d", f.appID, first.ID))
	op.click(`[data-testid="replay"]`)
	op.wantText(`[data-testid="flash"]`, "queued again")
	if n := op.count(`[data-testid="delivery-row"]`); n != 8 {
		op.fatalf("%d deliveries after a replay, want 8", n)
	}
	op.wantText(`[data-testid="deliveries"]`, fmt.Sprintf("replay of #%d", first.ID))
}
