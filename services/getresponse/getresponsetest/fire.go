package getresponsetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// GetResponse's documented delivery rules (apidocs.getresponse.com/v3/webhooks
// and the callbacks page).
const (
	// WebhookTimeout is how long GetResponse waits for a webhook's answer.
	WebhookTimeout = 5 * time.Second
	// WebhookRetries is how many more times a webhook is sent when the answer is
	// not a 2xx with {"status":"OK"} (429, 5xx, a timeout, a 2xx without the body).
	WebhookRetries = 3
	// CallbackTimeout is how long GetResponse waits for a callback's answer; a
	// callback is never sent again.
	CallbackTimeout = 4 * time.Second
	// DefaultWebhookRetryDelay is the wait before the first retry (then doubling).
	DefaultWebhookRetryDelay = time.Second
)

// SetEventClient sets the HTTP client FireWebhook and FireCallback send with
// (nil: a plain client). Demo mode gives one that reaches grconnect in-process.
func (f *Fake) SetEventClient(hc *http.Client) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eventClient = hc
}

func (f *Fake) client() *http.Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.eventClient != nil {
		return f.eventClient
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// WebhookEvent is an event FireWebhook sends as GetResponse's webhooks do.
type WebhookEvent struct {
	Type      string // contact_opened_message, contact_subscribed, …
	AccountID string
	// ID is the X-Webhook-ID, the same for every attempt; "" makes a new UUID.
	ID string
	// ContactEmail, ContactID and CampaignID fill the default body.
	ContactEmail, ContactID, CampaignID string
	// Body, when set, is sent instead of the default body.
	Body []byte
}

// WebhookBody returns the body GetResponse sends for an event: type, contact
// (with its campaign), account and event (occurredAt), as in its payload examples.
func WebhookBody(ev WebhookEvent, occurred time.Time) []byte {
	contactID, campaignID := ev.ContactID, ev.CampaignID
	if contactID == "" {
		contactID = "c" + randomHex(3)
	}
	if campaignID == "" {
		campaignID = "V3J"
	}
	body, _ := json.Marshal(map[string]any{
		"type": ev.Type,
		"contact": map[string]any{
			"contactId": contactID, "email": ev.ContactEmail, "name": "Friend",
			"campaign": map[string]any{"campaignId": campaignID, "name": "my_first_campaign", "href": "https://api.getresponse.com/v3/campaigns/" + campaignID},
			"href":     "https://api.getresponse.com/v3/contacts/" + contactID,
		},
		"account": map[string]any{"accountId": ev.AccountID},
		"event":   map[string]any{"occurredAt": occurred.UTC().Format("2006-01-02T15:04:05-07:00")},
	})
	return body
}

// Delivery is what came of firing an event.
type Delivery struct {
	WebhookID string // the X-Webhook-ID sent (webhooks)
	Attempts  int
	Status    int    // the last answer's HTTP status (0: none came)
	Body      string // the last answer's body (up to 4 KiB)
	// Accepted says the receiver took it: a 2xx whose body is {"status":"OK"}
	// (webhooks), any 2xx (callbacks).
	Accepted bool
}

// FireWebhook POSTs ev to target as GetResponse's webhooks do: JSON with
// X-Webhook-ID (the same on every attempt), X-Webhook-Type and a new
// X-Request-ID per attempt, waiting WebhookTimeout for each answer, and sending
// again up to WebhookRetries times (after Options.WebhookRetryDelay, doubling)
// while the answer is a 429, a 5xx, a timeout or a 2xx without {"status":"OK"}.
// Other answers (3xx, 4xx) end it.
func (f *Fake) FireWebhook(ctx context.Context, target string, ev WebhookEvent) Delivery {
	if ev.ID == "" {
		ev.ID = newUUID()
	}
	body := ev.Body
	if body == nil {
		body = WebhookBody(ev, f.now())
	}
	d := Delivery{WebhookID: ev.ID}
	delay := f.opts.WebhookRetryDelay
	for attempt := 0; attempt <= WebhookRetries; attempt++ {
		if attempt > 0 {
			if !f.wait(ctx, delay) {
				return d
			}
			delay *= 2
		}
		d.Attempts++
		retry := f.sendWebhook(ctx, target, ev, body, &d)
		if !retry {
			return d
		}
	}
	return d
}

// sendWebhook makes one attempt and says whether GetResponse would try again.
func (f *Fake) sendWebhook(ctx context.Context, target string, ev WebhookEvent, body []byte, d *Delivery) bool {
	ctx, cancel := context.WithTimeout(ctx, WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Webhook-Type", ev.Type)
	req.Header.Set("X-Webhook-ID", ev.ID)
	req.Header.Set("X-Request-ID", newUUID())
	req.Header.Set("User-Agent", "GetResponse-Webhooks (getresponsetest)")
	d.Status, d.Body = 0, ""
	resp, err := f.client().Do(req)
	if err != nil {
		return true // a network error or a timeout
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	d.Status, d.Body = resp.StatusCode, string(raw)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		var answer struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(raw, &answer) == nil && answer.Status == "OK" {
			d.Accepted = true
			return false
		}
		return true
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return true
	}
	return false
}

// ErrNoCallbacks is returned by FireCallback for an account whose callbacks are
// off, or do not include the action.
var ErrNoCallbacks = errors.New("getresponsetest: the account's callbacks are off for this action")

// CallbackParams returns the parameters GetResponse's callbacks carry for an
// action on an account (see its callbacks page): action, ACCOUNT_ID,
// account_login, CAMPAIGN_ID, campaign_name, CONTACT_ID, contact_name,
// contact_email, and for open and click the message (MESSAGE_ID, message_name,
// message_subject), for click the link (LINK_ID, link_url).
func CallbackParams(action, accountID, contactEmail string) url.Values {
	q := url.Values{
		"action": {action}, "ACCOUNT_ID": {accountID}, "account_login": {"myaccount"},
		"CAMPAIGN_ID": {"V3J"}, "campaign_name": {"my_first_campaign"},
		"CONTACT_ID": {"pV3r"}, "contact_name": {"Friend"}, "contact_email": {contactEmail},
	}
	if action == "open" || action == "click" {
		q.Set("MESSAGE_ID", "M1")
		q.Set("message_name", "My message")
		q.Set("message_subject", "Some subject")
	}
	if action == "click" {
		q.Set("LINK_ID", "L1")
		q.Set("link_url", "https://example.com/offer")
	}
	return q
}

// FireCallback calls accountID's registered callback URL for action, as
// GetResponse does: one GET with the parameters in the query string (params, or
// CallbackParams when nil), a 4 s timeout, never again. An account without
// callbacks for the action gives ErrNoCallbacks.
func (f *Fake) FireCallback(ctx context.Context, accountID, action string, params url.Values) (Delivery, error) {
	f.mu.Lock()
	c := f.callbacks[accountID]
	target, on := "", false
	if c != nil {
		target, on = c.URL, c.Actions[action]
	}
	f.mu.Unlock()
	if !on {
		return Delivery{}, ErrNoCallbacks
	}
	if params == nil {
		params = CallbackParams(action, accountID, "friend@example.com")
	}
	u, err := url.Parse(target)
	if err != nil {
		return Delivery{}, fmt.Errorf("getresponsetest: the callback URL: %w", err)
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, CallbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Delivery{}, err
	}
	req.Header.Set("User-Agent", "GetResponse-Callbacks (getresponsetest)")
	d := Delivery{Attempts: 1}
	resp, err := f.client().Do(req)
	if err != nil {
		return d, nil // lost: callbacks are not sent again
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	d.Status, d.Body, d.Accepted = resp.StatusCode, string(raw), resp.StatusCode >= 200 && resp.StatusCode <= 299
	return d, nil
}
