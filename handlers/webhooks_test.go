package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

func TestWebhookSettingsAndDeliveries(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	f.built.Webhooks.AllowPrivate = true // the receiver listens on loopback (GRCONNECT_WEBHOOK_ALLOW_PRIVATE)
	got := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.Header.Get("X-Grconnect-Event") + " " + string(b)
	}))
	defer hook.Close()

	r := f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/webhook", url.Values{"webhook_url": {"ftp://example.com"}})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="error-webhook_url"`) {
		t.Fatalf("bad webhook URL = %d", r.status)
	}
	r = f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/webhook", url.Values{"webhook_url": {hook.URL + "/hooks"}})
	m := regexp.MustCompile(`id="webhook-secret" type="text" readonly value="(whsec_[A-Za-z0-9+/=]+)"`).FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("saving the webhook did not show its secret once: %d", r.status)
	}
	secret := m[1]
	page := f.op.get("/apps/" + f.appID)
	mustContain(t, page.body, `value="`+hook.URL+`/hooks"`, "Make a new signing secret")
	mustNotContain(t, page.body, secret)
	// Saving again without rotating keeps the secret and does not show it.
	r = f.op.submit("/apps/"+f.appID, "/apps/"+f.appID+"/webhook", url.Values{"webhook_url": {hook.URL + "/hooks"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("second save = %d", r.status)
	}

	conn := f.connect("customer-1", "")
	wh := services.NewWebhooks(f.store, f.box, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	wh.AllowPrivate = true
	if n, err := wh.RunOnce(context.Background()); n != 1 || err != nil {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	body := <-got
	if !strings.HasPrefix(body, "connection.created ") || !strings.Contains(body, conn.ID) || strings.Contains(body, "token") {
		t.Fatalf("webhook body = %s", body)
	}
	page = f.op.get("/apps/" + f.appID)
	mustContain(t, page.body, `data-testid="deliveries"`, "delivery-delivered", "HTTP 200")
	mustContain(t, f.op.get("/connections/"+conn.ID).body, "webhook.delivered")
	var d models.WebhookDelivery
	f.store.DB().First(&d)
	if d.Status != models.DeliveryDelivered || d.Attempts != 1 {
		t.Fatalf("delivery = %+v", d)
	}
	logs := f.logs.String()
	if strings.Contains(logs, secret) {
		t.Fatal("the webhook secret reached the log")
	}
}
