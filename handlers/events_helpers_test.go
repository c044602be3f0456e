package handlers_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// verifyStandardWebhook checks a request as the Standard Webhooks specification
// (standardwebhooks.com, "Verifying webhook authenticity") says a receiver must,
// written from the specification alone — not with grconnect's signing code: the
// key is the base64 after "whsec_"; the signed content is webhook-id, ".",
// webhook-timestamp, ".", the raw body; webhook-signature is a space-separated
// list of "v1,<base64 HMAC-SHA256>", one of which must match (constant time);
// the timestamp must be within five minutes of now.
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sent, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not Unix seconds", ts)
	}
	if d := now.Unix() - sent; d > 300 || d < -300 {
		return fmt.Errorf("webhook-timestamp is %d s away from now", d)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("the secret is not whsec_<base64>: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Split(sigs, " ") {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(sig); err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

// TestSpecVerifierAcceptsTheSpecificationsVector holds the test's own verifier to
// the Standard Webhooks test vector (the reference libraries' signing test), so
// the verifier that judges grconnect's deliveries is itself right.
func TestSpecVerifierAcceptsTheSpecificationsVector(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	body := []byte(`{"test": 2432232314}`)
	if err := verifyStandardWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, body, time.Unix(1614265330, 0)); err != nil {
		t.Fatalf("the specification's vector does not verify: %v", err)
	}
	if err := verifyStandardWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, []byte(`{"test": 2432232315}`), time.Unix(1614265330, 0)); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := verifyStandardWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, body, time.Unix(1614265330+301, 0)); err == nil {
		t.Fatal("a stale timestamp verified")
	}
}

// hookRequest is one request a webhook receiver got.
type hookRequest struct {
	header http.Header
	body   []byte
}

// hookReceiver is an app's webhook endpoint that records every request.
type hookReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []hookRequest
}

func newHookReceiver(t testing.TB) *hookReceiver {
	t.Helper()
	rc := &hookReceiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, hookRequest{header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// ofType returns the requests whose X-Grconnect-Event is typ.
func (rc *hookReceiver) ofType(typ string) []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []hookRequest
	for _, r := range rc.got {
		if r.header.Get("X-Grconnect-Event") == typ {
			out = append(out, r)
		}
	}
	return out
}

var webhookSecretRe = regexp.MustCompile(`id="webhook-secret" type="text" readonly value="(whsec_[A-Za-z0-9+/=]+)"`)

// eventsFixture is an API fixture whose app has a webhook at a receiver.
type eventsFixture struct {
	*apiFixture
	hook   *hookReceiver
	secret string
}

func newEventsFixture(t testing.TB, opts ...option) *eventsFixture {
	t.Helper()
	cf := newConnectFixtureOn(t, newTestAppWith(t, getresponsetest.Options{WebhookRetryDelay: 10 * time.Millisecond}, opts...))
	f := &eventsFixture{apiFixture: withAPIKey(cf), hook: newHookReceiver(t)}
	f.built.Webhooks.AllowPrivate = true // the receiver listens on loopback
	r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/webhook", url.Values{"webhook_url": {f.hook.srv.URL + "/hooks"}})
	m := webhookSecretRe.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("webhook = %d", r.status)
	}
	f.secret = m[1]
	return f
}

// eventsURL returns a connection's events URL as the API gives it.
func (f *eventsFixture) eventsURL(connID string) string {
	f.t.Helper()
	r := f.call(http.MethodGet, "/api/v1/connections/"+connID, nil)
	var v struct {
		EventsURL *string `json:"events_url"`
	}
	if err := json.Unmarshal([]byte(r.body), &v); r.status != http.StatusOK || err != nil || v.EventsURL == nil {
		f.t.Fatalf("GET connection = %d %s", r.status, r.body)
	}
	return *v.EventsURL
}

// relay runs the relay and the webhook sender until nothing is left to do.
func (f *eventsFixture) relay() {
	f.t.Helper()
	for range 20 {
		n, err := f.built.Events.RelayOnce(f.t.Context())
		if err != nil {
			f.t.Fatal(err)
		}
		m, err := f.built.Webhooks.RunOnce(f.t.Context())
		if err != nil {
			f.t.Fatal(err)
		}
		if n == 0 && m == 0 {
			return
		}
	}
	f.t.Fatal("the relay never ran out of work")
}

// post sends raw to an events URL (a path or a full URL) and reads the answer.
func (f *eventsFixture) post(target, contentType string, body []byte, header http.Header) response {
	f.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = f.srv.URL + target
	}
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	r, err := f.roundTrip(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}
