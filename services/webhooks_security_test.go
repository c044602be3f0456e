package services_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestWebhookURLCheckedAtSave: a name that merely starts with "127." is not
// loopback; link-local and metadata hosts are refused always, loopback and private
// networks unless allowed.
func TestWebhookURLCheckedAtSave(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	wh := services.NewWebhooks(e.store, e.box, nil, discard())
	always := []string{
		"http://127.evil.example/hook",       // not loopback: http refused
		"https://169.254.169.254/latest",     // link-local: cloud metadata
		"https://[fe80::1]/hook",             // IPv6 link-local
		"https://[fd00:ec2::254]/latest",     // AWS metadata over IPv6
		"https://[::ffff:169.254.169.254]/x", // mapped IPv4 link-local
		"https://metadata.google.internal/computeMetadata/v1",
		"https://0.0.0.0/hook",
		"https://user:pw@hooks.example.com/",
	}
	private := []string{"http://127.0.0.1:9/hook", "https://10.1.2.3/hook", "https://192.168.1.10/hook", "http://localhost:9/hook", "https://[::1]/hook", "https://100.64.0.1/hook"}
	for _, u := range append(always, private...) {
		if _, err := wh.Configure(context.Background(), e.app, services.WebhookInput{URL: u}); err == nil {
			t.Errorf("%s was accepted", u)
		} else if _, ok := services.AsFieldErrors(err); !ok {
			t.Errorf("%s: %v, want a field error", u, err)
		}
	}
	if _, err := wh.Configure(context.Background(), e.app, services.WebhookInput{URL: "https://hooks.example.com/grconnect"}); err != nil {
		t.Fatalf("a public https URL was refused: %v", err)
	}
	wh.AllowPrivate = true
	for _, u := range private {
		if _, err := wh.Configure(context.Background(), e.app, services.WebhookInput{URL: u}); err != nil {
			t.Errorf("with private networks allowed, %s was refused: %v", u, err)
		}
	}
	for _, u := range always {
		if _, err := wh.Configure(context.Background(), e.app, services.WebhookInput{URL: u}); err == nil {
			t.Errorf("with private networks allowed, %s was accepted", u)
		}
	}
}

// TestWebhookDialGuard: an address the URL check could not see (a stored URL, a
// name that resolves there) is refused when the delivery connects.
func TestWebhookDialGuard(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	wh := services.NewWebhooks(e.store, e.box, nil, discard())
	wh.Now = e.clock.Now
	wh.AllowPrivate = true
	if _, err := wh.Configure(context.Background(), e.app, services.WebhookInput{URL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	wh.AllowPrivate = false // as if the URL had been saved before, or resolved to loopback only now
	c := e.seed(models.StatusActive, e.clock.Now().Add(time.Hour), nil)
	e.store.Disconnect(context.Background(), c.ID, "x")
	e.clock.Advance(time.Minute)
	if n, err := wh.RunOnce(context.Background()); n != 1 || err != nil {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	if hits.Load() != 0 {
		t.Fatal("the delivery reached a loopback address")
	}
	var d models.WebhookDelivery
	e.store.DB().First(&d)
	if d.Status == models.DeliveryDelivered || !strings.Contains(d.LastError, "refused to connect") {
		t.Fatalf("delivery = %s %q, want refused", d.Status, d.LastError)
	}
}

// TestWebhookRedirectsAreNotFollowed: a receiver answering 307 does not get its
// Location sent the signed body: the redirect is a failed attempt.
func TestWebhookRedirectsAreNotFollowed(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	var trapped atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { trapped.Add(1) }))
	defer trap.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, trap.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	wh := services.NewWebhooks(e.store, e.box, nil, discard())
	wh.Now = e.clock.Now
	wh.AllowPrivate = true
	if _, err := wh.Configure(context.Background(), e.app, services.WebhookInput{URL: redirector.URL}); err != nil {
		t.Fatal(err)
	}
	c := e.seed(models.StatusActive, e.clock.Now().Add(time.Hour), nil)
	e.store.Disconnect(context.Background(), c.ID, "x")
	e.clock.Advance(time.Minute)
	wh.RunOnce(context.Background())
	if trapped.Load() != 0 {
		t.Fatal("the webhook followed the redirect")
	}
	var d models.WebhookDelivery
	e.store.DB().First(&d)
	if d.Status == models.DeliveryDelivered || d.LastStatusCode != http.StatusTemporaryRedirect || !strings.Contains(d.LastError, "redirect") {
		t.Fatalf("delivery = %s %d %q", d.Status, d.LastStatusCode, d.LastError)
	}
	// A client passed in is made not to follow redirects either.
	wh2 := services.NewWebhooks(e.store, e.box, &http.Client{Timeout: time.Second}, discard())
	wh2.Now = e.clock.Now
	e.clock.Advance(2 * time.Hour)
	wh2.RunOnce(context.Background())
	if trapped.Load() != 0 {
		t.Fatal("a webhook client passed in followed the redirect")
	}
}
