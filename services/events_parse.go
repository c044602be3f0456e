package services

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/grconnect/grconnect/models"
)

// InboundRequest is what an events URL received, as the handler read it.
type InboundRequest struct {
	Method      string
	ContentType string
	// WebhookID and WebhookType are GetResponse's X-Webhook-ID and X-Webhook-Type.
	WebhookID, WebhookType string
	Query                  url.Values
	Body                   []byte // at most EventsMaxBody
}

// BadEventError says why a request to an events URL is no GetResponse event.
type BadEventError struct{ Reason string }

func (e *BadEventError) Error() string { return e.Reason }

// parsedEvent is an inbound request understood.
type parsedEvent struct {
	source, typ, webhookID, accountID string
	payload                           string // JSON
	contentHash                       string // of the event's content, for events without an ID
}

// maxWebhookID bounds a stored X-Webhook-ID (GetResponse's are UUIDs).
const maxWebhookID = 200

// parseInbound reads a GetResponse webhook (a JSON object POSTed with
// X-Webhook-ID and X-Webhook-Type, see apidocs.getresponse.com/v3/webhooks) or a
// callback (parameters: action, ACCOUNT_ID, CONTACT_ID, contact_email, …, in the
// query string as GetResponse documents them, or form-encoded in a POST's body).
func parseInbound(in InboundRequest) (*parsedEvent, error) {
	body := bytes.TrimSpace(in.Body)
	media, _, _ := mime.ParseMediaType(in.ContentType)
	switch {
	case len(body) > 0 && media != "application/x-www-form-urlencoded" && (media == "application/json" || strings.HasSuffix(media, "+json") || body[0] == '{'):
		return parseWebhook(in, body)
	case len(body) > 0 && media == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, &BadEventError{Reason: "The body is not form-encoded parameters."}
		}
		for k, vs := range in.Query { // parameters of the URL itself count too
			if _, ok := form[k]; !ok {
				form[k] = vs
			}
		}
		return parseCallback(form)
	case len(body) > 0:
		return nil, &BadEventError{Reason: "Send a GetResponse webhook (JSON) or callback (parameters)."}
	}
	return parseCallback(in.Query)
}

// parseWebhook reads a webhook's JSON body.
func parseWebhook(in InboundRequest, body []byte) (*parsedEvent, error) {
	var fields struct {
		Type    any `json:"type"`
		Account struct {
			AccountID any `json:"accountId"`
		} `json:"account"`
	}
	if json.Unmarshal(body, &fields) != nil { // checks the whole body
		return nil, &BadEventError{Reason: "The body is not a JSON object."}
	}
	p := &parsedEvent{source: models.InboundWebhook, payload: string(body)}
	p.typ = strings.TrimSpace(in.WebhookType)
	if s, ok := fields.Type.(string); ok && s != "" {
		p.typ = s
	}
	if p.typ == "" {
		p.typ = "webhook"
	}
	p.typ = clip(p.typ, 100)
	p.accountID = clip(scalar(fields.Account.AccountID), 100)
	p.webhookID = strings.TrimSpace(in.WebhookID)
	if len(p.webhookID) > maxWebhookID || !utf8.ValidString(p.webhookID) {
		sum := sha256.Sum256([]byte(p.webhookID))
		p.webhookID = "sha256:" + hex.EncodeToString(sum[:])
	}
	sum := sha256.Sum256(body)
	p.contentHash = hex.EncodeToString(sum[:])
	return p, nil
}

// parseCallback reads a callback's parameters.
func parseCallback(params url.Values) (*parsedEvent, error) {
	action := strings.TrimSpace(params.Get("action"))
	if action == "" {
		return nil, &BadEventError{Reason: "No event here: a GetResponse webhook is a JSON body, a callback has an action parameter."}
	}
	obj := make(map[string]any, len(params))
	for k, vs := range params {
		if len(vs) == 1 {
			obj[k] = vs[0]
		} else {
			obj[k] = vs
		}
	}
	payload, err := json.Marshal(obj) // keys sorted: one content, one hash
	if err != nil {
		return nil, &BadEventError{Reason: "The parameters cannot be read."}
	}
	account := params.Get("ACCOUNT_ID")
	if account == "" {
		account = params.Get("account_id")
	}
	sum := sha256.Sum256(payload)
	return &parsedEvent{source: models.InboundCallback, typ: clip(action, 100), accountID: clip(account, 100),
		payload: string(payload), contentHash: hex.EncodeToString(sum[:])}, nil
}

// scalar returns a JSON string or number as text ("" for anything else).
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

// describeInbound is an inbound event's timeline entry, in words.
func describeInbound(e *models.InboundEvent) string {
	var contact string
	switch e.Source {
	case models.InboundWebhook:
		var p struct {
			Contact struct {
				Email string `json:"email"`
			} `json:"contact"`
		}
		_ = json.Unmarshal([]byte(e.Payload), &p)
		contact = p.Contact.Email
	default:
		var p map[string]any
		_ = json.Unmarshal([]byte(e.Payload), &p)
		contact, _ = p["contact_email"].(string)
	}
	msg := "GetResponse " + e.Source + " " + e.Type
	if contact != "" {
		msg += " for " + clip(contact, 200)
	}
	if e.WebhookID != "" {
		msg += " (X-Webhook-ID " + clip(e.WebhookID, 64) + ")"
	}
	return msg
}
