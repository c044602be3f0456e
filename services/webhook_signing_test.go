package services_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// specVerify checks a delivery as the Standard Webhooks specification describes
// it, with the receiver's secret as the receiver holds it (written here from the
// specification, not with grconnect's signing code).
func specVerify(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	m.Write(body)
	for _, s := range strings.Fields(h.Get("webhook-signature")) {
		if v, sig, _ := strings.Cut(s, ","); v == "v1" {
			if got, err := base64.StdEncoding.DecodeString(sig); err == nil && hmac.Equal(got, m.Sum(nil)) {
				return true
			}
		}
	}
	return false
}

// capture is a webhook endpoint that keeps what it was sent.
type capture struct {
	mu  sync.Mutex
	got []struct {
		h    http.Header
		body []byte
	}
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.got = append(c.got, struct {
		h    http.Header
		body []byte
	}{r.Header.Clone(), body})
	c.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (c *capture) last(t *testing.T) (http.Header, []byte) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		t.Fatal("nothing delivered")
	}
	g := c.got[len(c.got)-1]
	return g.h, g.body
}

// TestLegacySecretsSignTheStandardWay: an app whose secret was made before
// Standard Webhooks signing (whsec_ and 39 base32 characters) keeps it: its
// deliveries verify with that secret plus "=" in a Standard Webhooks verifier,
// and X-Grconnect-Signature still verifies with the secret as it was.
func TestLegacySecretsSignTheStandardWay(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	rc := &capture{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	wh := services.NewWebhooks(e.store, e.box, nil, discard())
	wh.AllowPrivate = true
	legacy := "whsec_" + models.RandomToken(24) // as grconnect made them before
	sealed, err := e.box.Seal(legacy, secrets.AAD("app", e.app.ID, "webhook_secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetWebhook(context.Background(), e.app.ID, models.WebhookSetting{URL: srv.URL, SecretEnc: sealed}); err != nil {
		t.Fatal(err)
	}
	app, _ := e.store.AppByID(context.Background(), e.app.ID)
	if !wh.LegacySecret(app) {
		t.Fatal("the legacy secret is not recognised as one")
	}
	c := e.seed(models.StatusActive, time.Now().Add(time.Hour), nil)
	e.store.Disconnect(context.Background(), c.ID, "x")
	if n, err := wh.RunOnce(context.Background()); n != 1 || err != nil {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	h, body := rc.last(t)
	if specVerify(legacy, h, body) {
		t.Fatal("the legacy secret verified as it is: the test proves nothing about the padding")
	}
	if !specVerify(legacy+"=", h, body) {
		t.Fatal("the delivery does not verify with the legacy secret plus =")
	}
	ts := h.Get("webhook-timestamp")
	m := hmac.New(sha256.New, []byte(legacy))
	m.Write([]byte(ts + "."))
	m.Write(body)
	if want := "t=" + ts + ",v1=" + hexOf(m.Sum(nil)); h.Get("X-Grconnect-Signature") != want {
		t.Fatalf("X-Grconnect-Signature = %q, want %q", h.Get("X-Grconnect-Signature"), want)
	}
	// A rotation gives a Standard secret; for a day both sign.
	secret, err := wh.Configure(context.Background(), app, services.WebhookInput{URL: srv.URL, Rotate: true})
	if err != nil || len(secret) != len("whsec_")+44 {
		t.Fatalf("rotated secret %q, %v", secret, err)
	}
	app, _ = e.store.AppByID(context.Background(), e.app.ID)
	if wh.LegacySecret(app) {
		t.Fatal("a new secret is called legacy")
	}
	c2 := e.seed(models.StatusActive, time.Now().Add(time.Hour), nil)
	e.store.Disconnect(context.Background(), c2.ID, "x")
	wh.RunOnce(context.Background())
	h, body = rc.last(t)
	if !specVerify(secret, h, body) || !specVerify(legacy+"=", h, body) || len(strings.Fields(h.Get("webhook-signature"))) != 2 {
		t.Fatalf("during the overlap both secrets must verify: %q", h.Get("webhook-signature"))
	}
	// After the overlap only the new one signs.
	wh.Now = func() time.Time { return time.Now().UTC().Add(25 * time.Hour) }
	c3 := e.seed(models.StatusActive, time.Now().Add(time.Hour), nil)
	e.store.Disconnect(context.Background(), c3.ID, "x")
	e.store.DB().Model(&models.WebhookDelivery{}).Where("status = ?", models.DeliveryPending).Update("created_at", time.Now().UTC().Add(24*time.Hour))
	wh.RunOnce(context.Background())
	h, body = rc.last(t)
	if !specVerify(secret, h, body) || specVerify(legacy+"=", h, body) {
		t.Fatalf("after the overlap: %q", h.Get("webhook-signature"))
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
