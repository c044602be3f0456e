package grconnect

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// The Standard Webhooks specification's published test vector (the reference
// libraries' signing test).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = "1614265330"
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vectorHeader() http.Header {
	h := http.Header{}
	h.Set("webhook-id", vectorID)
	h.Set("webhook-timestamp", vectorTimestamp)
	h.Set("webhook-signature", vectorSignature)
	return h
}

var vectorTime = time.Unix(1614265330, 0)

// sign signs body as a Standard Webhooks sender does.
func sign(t *testing.T, secret, id string, ts time.Time, body string) http.Header {
	t.Helper()
	key, err := webhookKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	stamp := strconv.FormatInt(ts.Unix(), 10)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", stamp)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(webhookSignature(key, id, stamp, []byte(body))))
	return h
}

func reason(err error) string {
	var we *WebhookError
	if errors.As(err, &we) {
		return we.Reason
	}
	if err != nil {
		return "not a *WebhookError: " + err.Error()
	}
	return ""
}

func TestVerifyWebhookSpecificationVector(t *testing.T) {
	t.Parallel()
	key, err := webhookKey(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := "v1," + base64.StdEncoding.EncodeToString(webhookSignature(key, vectorID, vectorTimestamp, []byte(vectorBody))); got != vectorSignature {
		t.Fatalf("signature %s; the specification's is %s", got, vectorSignature)
	}
	if err := verifyWebhook(vectorSecret, vectorHeader(), []byte(vectorBody), vectorTime); err != nil {
		t.Errorf("the specification's delivery: %v", err)
	}
	// The reference libraries also take the secret without its prefix.
	if err := verifyWebhook("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", vectorHeader(), []byte(vectorBody), vectorTime); err != nil {
		t.Errorf("without whsec_: %v", err)
	}
	// Today the vector's timestamp is years old.
	if got := reason(VerifyWebhook(vectorSecret, vectorHeader(), []byte(vectorBody))); got != WebhookTooOld {
		t.Errorf("the vector verified now: %q; want %q", got, WebhookTooOld)
	}
}

func TestVerifyWebhookRefusals(t *testing.T) {
	t.Parallel()
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another secret of thirty-two b!!"))
	multi := vectorHeader()
	multi.Set("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+vectorSignature+" v1,bm90IGJhc2U2NA")
	onlyOthers := vectorHeader()
	onlyOthers.Set("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,"+vectorSignature[3:])
	lower := http.Header{"webhook-id": {vectorID}, "WEBHOOK-TIMESTAMP": {vectorTimestamp}, "Webhook-Signature": {vectorSignature}}
	without := func(name string) http.Header { h := vectorHeader(); h.Del(name); return h }
	withTS := func(ts string) http.Header { h := vectorHeader(); h.Set("webhook-timestamp", ts); return h }
	cases := []struct {
		name   string
		secret string
		header http.Header
		body   string
		now    time.Time
		want   string
	}{
		{"valid", vectorSecret, vectorHeader(), vectorBody, vectorTime, ""},
		{"several signatures, one matches", vectorSecret, multi, vectorBody, vectorTime, ""},
		{"header names in any case", vectorSecret, lower, vectorBody, vectorTime, ""},
		{"tampered body", vectorSecret, vectorHeader(), `{"test": 2432232315}`, vectorTime, WebhookNoMatch},
		{"body with a trailing newline", vectorSecret, vectorHeader(), vectorBody + "\n", vectorTime, WebhookNoMatch},
		{"wrong secret", other, vectorHeader(), vectorBody, vectorTime, WebhookNoMatch},
		{"only other schemes and wrong v1", vectorSecret, onlyOthers, vectorBody, vectorTime, WebhookNoMatch},
		{"tampered id", vectorSecret, func() http.Header { h := vectorHeader(); h.Set("webhook-id", "msg_other"); return h }(), vectorBody, vectorTime, WebhookNoMatch},
		{"five minutes old passes", vectorSecret, vectorHeader(), vectorBody, vectorTime.Add(5 * time.Minute), ""},
		{"five minutes ahead passes", vectorSecret, vectorHeader(), vectorBody, vectorTime.Add(-5 * time.Minute), ""},
		{"stale timestamp", vectorSecret, vectorHeader(), vectorBody, vectorTime.Add(5*time.Minute + time.Second), WebhookTooOld},
		{"future timestamp", vectorSecret, vectorHeader(), vectorBody, vectorTime.Add(-5*time.Minute - time.Second), WebhookTooNew},
		{"timestamp not a number", vectorSecret, withTS("2021-02-25T15:02:10Z"), vectorBody, vectorTime, WebhookInvalidTimestamp},
		{"timestamp with a sign", vectorSecret, withTS("+1614265330"), vectorBody, vectorTime, WebhookInvalidTimestamp},
		{"missing id", vectorSecret, without("webhook-id"), vectorBody, vectorTime, WebhookMissingHeader},
		{"missing timestamp", vectorSecret, without("webhook-timestamp"), vectorBody, vectorTime, WebhookMissingHeader},
		{"missing signature", vectorSecret, without("webhook-signature"), vectorBody, vectorTime, WebhookMissingHeader},
		{"secret not base64", "whsec_not*base64", vectorHeader(), vectorBody, vectorTime, WebhookInvalidSecret},
		{"empty secret", "", vectorHeader(), vectorBody, vectorTime, WebhookInvalidSecret},
	}
	for _, tc := range cases {
		got := reason(verifyWebhook(tc.secret, tc.header, []byte(tc.body), tc.now))
		if got != tc.want {
			t.Errorf("%s: %q; want %q", tc.name, got, tc.want)
		}
	}
}

func TestVerifyWebhookNow(t *testing.T) {
	t.Parallel()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	body := `{"type":"connection.created","connection":{"id":"con_1"}}`
	if err := VerifyWebhook(secret, sign(t, secret, "whd_1", time.Now(), body), []byte(body)); err != nil {
		t.Errorf("a fresh delivery: %v", err)
	}
	if got := reason(VerifyWebhook(secret, sign(t, secret, "whd_1", time.Now().Add(-10*time.Minute), body), []byte(body))); got != WebhookTooOld {
		t.Errorf("a delivery signed 10 minutes ago: %q", got)
	}
	err := VerifyWebhook(secret, sign(t, secret, "whd_1", time.Now(), body), []byte(body+" "))
	if reason(err) != WebhookNoMatch || err.Error() == "" {
		t.Errorf("tampered: %v", err)
	}
}
