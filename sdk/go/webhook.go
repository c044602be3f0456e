package grconnect

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WebhookTolerance is how far a delivery's webhook-timestamp may be from the
// receiver's clock, either way (the Standard Webhooks specification's five minutes).
const WebhookTolerance = 5 * time.Minute

// The reasons a webhook fails verification.
const (
	WebhookMissingHeader    = "missing_header"    // webhook-id, webhook-timestamp or webhook-signature absent
	WebhookInvalidTimestamp = "invalid_timestamp" // webhook-timestamp is not Unix seconds
	WebhookTooOld           = "timestamp_too_old" // more than WebhookTolerance in the past
	WebhookTooNew           = "timestamp_too_new" // more than WebhookTolerance in the future
	WebhookInvalidSecret    = "invalid_secret"    // the secret is not whsec_<base64>
	WebhookNoMatch          = "no_matching_signature"
)

// WebhookError says why a webhook failed verification. Answer such a request
// with 400 or 401 and do not act on it.
type WebhookError struct {
	Reason string // one of the Webhook… reasons
	Detail string
}

func (e *WebhookError) Error() string { return "grconnect: webhook verification failed: " + e.Detail }

// VerifyWebhook checks a webhook grconnect sent, as the Standard Webhooks
// specification (standardwebhooks.com) defines it: the HMAC-SHA256 of
// "<webhook-id>.<webhook-timestamp>.<body>" keyed with the secret
// ("whsec_<base64 key>", shown once when the app's webhook was set) must match
// one of the "v1,<base64>" signatures in webhook-signature (compared in constant
// time), and webhook-timestamp must be within five minutes of now. body is the
// raw request body, exactly as received. It returns nil or a *WebhookError.
//
// Use webhook-id (the same for every attempt of one delivery) to act on each
// delivery once.
func VerifyWebhook(secret string, header http.Header, body []byte) error {
	return verifyWebhook(secret, header, body, time.Now())
}

func verifyWebhook(secret string, header http.Header, body []byte, now time.Time) error {
	key, err := webhookKey(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := headerValue(header, "webhook-id"), headerValue(header, "webhook-timestamp"), headerValue(header, "webhook-signature")
	for _, h := range [...]struct{ name, value string }{{"webhook-id", id}, {"webhook-timestamp", ts}, {"webhook-signature", sigs}} {
		if h.value == "" {
			return &WebhookError{Reason: WebhookMissingHeader, Detail: "the " + h.name + " header is missing"}
		}
	}
	sent, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strings.HasPrefix(ts, "+") {
		return &WebhookError{Reason: WebhookInvalidTimestamp, Detail: "webhook-timestamp " + strconv.Quote(ts) + " is not Unix seconds"}
	}
	tolerance := int64(WebhookTolerance / time.Second)
	switch nowSec := now.Unix(); {
	case nowSec-sent > tolerance:
		return &WebhookError{Reason: WebhookTooOld, Detail: "webhook-timestamp is more than 5 minutes in the past"}
	case sent-nowSec > tolerance:
		return &WebhookError{Reason: WebhookTooNew, Detail: "webhook-timestamp is more than 5 minutes in the future"}
	}
	want := webhookSignature(key, id, ts, body)
	for _, entry := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue // another scheme (v1a) or a malformed entry
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return &WebhookError{Reason: WebhookNoMatch, Detail: "no v1 signature in webhook-signature matches the body and the secret"}
}

// webhookKey decodes a "whsec_<base64>" secret (the prefix may be left out).
func webhookKey(secret string) ([]byte, error) {
	enc := strings.TrimPrefix(strings.TrimSpace(secret), "whsec_")
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(enc)
	}
	if err != nil || len(key) == 0 {
		return nil, &WebhookError{Reason: WebhookInvalidSecret, Detail: "the secret is not whsec_ followed by base64"}
	}
	return key, nil
}

// webhookSignature is the raw HMAC-SHA256 of "id.timestamp.body".
func webhookSignature(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return m.Sum(nil)
}

// headerValue reads a header whatever the case of its name in h.
func headerValue(h http.Header, name string) string {
	if v := strings.TrimSpace(h.Get(name)); v != "" {
		return v
	}
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return strings.TrimSpace(vs[0])
		}
	}
	return ""
}
