package services_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// receiver is a webhook endpoint that can be down, and records what it accepted.
type receiver struct {
	mu       sync.Mutex
	up       atomic.Bool
	secret   string
	t        *testing.T
	accepted []models.WebhookPayload
	ids      map[string]int
	attempts atomic.Int64
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.attempts.Add(1)
	body, _ := io.ReadAll(r.Body)
	if !rc.up.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	sig := r.Header.Get("X-Grconnect-Signature")
	ts, _ := strconv.ParseInt(strings.TrimPrefix(strings.Split(sig, ",")[0], "t="), 10, 64)
	if want := services.Signature(rc.secret, ts, body); !hmac.Equal([]byte(sig), []byte(want)) {
		rc.t.Errorf("bad signature %q", sig)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p models.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		rc.t.Errorf("bad body: %v", err)
	}
	if r.Header.Get("X-Grconnect-Event") != p.Type || r.Header.Get("X-Grconnect-Delivery") != p.ID {
		rc.t.Errorf("headers disagree with body: %v", r.Header)
	}
	rc.mu.Lock()
	rc.accepted = append(rc.accepted, p)
	rc.ids[p.ID]++
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// newReceiver starts a webhook receiver (down until rc.up is set) on loopback and
// returns it, its URL and a Webhooks on the engine's clock allowed to reach it.
func newReceiver(t *testing.T, e *engine) (*receiver, string, *services.Webhooks) {
	t.Helper()
	rc := &receiver{t: t, ids: map[string]int{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	wh := services.NewWebhooks(e.store, e.box, nil, discard())
	wh.AllowPrivate = true // the receiver listens on loopback
	wh.Now = e.clock.Now
	return rc, srv.URL, wh
}

func TestWebhooksSurviveADownReceiverAndARestart(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	rc, hookURL, wh := newReceiver(t, e)
	if _, err := wh.Configure(context.Background(), e.app, services.WebhookInput{URL: "ftp://nope"}); err == nil {
		t.Fatal("an ftp webhook URL was accepted")
	}
	secret, err := wh.Configure(context.Background(), e.app, services.WebhookInput{URL: hookURL + "/hooks"})
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("Configure = %q, %v", secret, err)
	}
	rc.secret = secret
	e.app, _ = e.store.AppByID(context.Background(), e.app.ID)
	if again, _ := wh.Configure(context.Background(), e.app, services.WebhookInput{URL: hookURL + "/hooks2"}); again != "" {
		t.Fatal("the secret was shown again without a rotation")
	}

	// Three connections each go through a series of events while the receiver is down.
	var conns []*models.Connection
	for range 3 {
		c := e.seed(models.StatusActive, e.clock.Now().Add(time.Minute), nil)
		conns = append(conns, c)
		if err := e.store.AddEvent(context.Background(), &models.Event{ConnectionID: &c.ID, AppID: &c.AppID, Type: "connection.created", Message: "connected"}); err != nil {
			t.Fatal(err)
		}
	}
	e.fake.FailToken(getresponsetest.TokenServerError, 3)
	for _, c := range conns {
		e.tokens.Refresh(context.Background(), c.ID, "system") // refresh.failed
	}
	for _, c := range conns {
		if _, err := e.tokens.Refresh(context.Background(), c.ID, "system"); err != nil { // recovered
			t.Fatal(err)
		}
	}
	if err := e.store.Disconnect(context.Background(), conns[0].ID, "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		conns[0].ID: {"connection.created", "connection.refresh_failed", "connection.recovered", "connection.disconnected"},
		conns[1].ID: {"connection.created", "connection.refresh_failed", "connection.recovered"},
		conns[2].ID: {"connection.created", "connection.refresh_failed", "connection.recovered"},
		// Three connections failing within a minute made the whole app wait (one
		// alert), and the next success ended it (one more).
		"app:" + e.app.ID: {"app.unhealthy", "app.recovered"},
	}

	// Receiver down: attempts happen, nothing is lost, and later events wait behind the first.
	for range 3 {
		wh.RunOnce(context.Background())
		e.clock.Advance(2 * time.Hour)
	}
	if rc.attempts.Load() == 0 || len(rc.accepted) != 0 {
		t.Fatalf("while down: %d attempts, %d accepted", rc.attempts.Load(), len(rc.accepted))
	}
	var pending int64
	e.store.DB().Model(&models.WebhookDelivery{}).Where("status = ?", models.DeliveryPending).Count(&pending)
	if pending != 12 {
		t.Fatalf("%d pending deliveries, want 12", pending)
	}

	// A restart: another process's sender on a reopened database, then the receiver comes up.
	reopened, err := models.Open(e.dbPath, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	wh2 := services.NewWebhooks(reopened, e.box, nil, discard())
	wh2.AllowPrivate = true // the receiver listens on loopback
	wh2.Now = e.clock.Now
	rc.up.Store(true)
	for range 10 {
		wh2.RunOnce(context.Background())
		e.clock.Advance(2 * time.Hour)
	}
	got := map[string][]string{}
	for _, p := range rc.accepted {
		if p.App != nil {
			got["app:"+p.App.ID] = append(got["app:"+p.App.ID], p.Type)
			if p.Connection != nil || p.App.Name != e.app.Name {
				t.Errorf("app event payload: %+v", p)
			}
			continue
		}
		got[p.Connection.ID] = append(got[p.Connection.ID], p.Type)
		if p.Connection.AccountID == "" || p.Connection.AppID != e.app.ID {
			t.Errorf("payload without the account: %+v", p)
		}
	}
	for id, types := range want {
		if strings.Join(got[id], ",") != strings.Join(types, ",") {
			t.Errorf("%s received %v, want %v in order", id, got[id], types)
		}
	}
	for id, n := range rc.ids {
		if n != 1 {
			t.Errorf("delivery %s accepted %d times", id, n)
		}
	}
	e.store.DB().Model(&models.WebhookDelivery{}).Where("status <> ?", models.DeliveryDelivered).Count(&pending)
	if pending != 0 {
		t.Fatalf("%d deliveries not delivered", pending)
	}
	// Each attempt is on the connection's timeline.
	var n int64
	e.store.DB().Model(&models.Event{}).Where("connection_id = ? AND type = ?", conns[0].ID, "webhook.delivered").Count(&n)
	if n != 4 {
		t.Fatalf("%d webhook.delivered events for the first connection, want 4", n)
	}
}

func TestWebhookGivesUpAfterADay(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	rc, hookURL, wh := newReceiver(t, e)
	rc.secret, _ = wh.Configure(context.Background(), e.app, services.WebhookInput{URL: hookURL})
	c := e.seed(models.StatusActive, e.clock.Now().Add(time.Hour), nil)
	e.store.Disconnect(context.Background(), c.ID, "x")
	for range 40 {
		wh.RunOnce(context.Background())
		e.clock.Advance(time.Hour)
	}
	var d models.WebhookDelivery
	e.store.DB().First(&d)
	if d.Status != models.DeliveryFailed || d.LastStatusCode != http.StatusServiceUnavailable || d.Attempts < 5 || d.Attempts > 30 {
		t.Fatalf("after a day of 503s: %+v", d)
	}
}

func TestNoWebhookWithoutURL(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	c := e.seed(models.StatusActive, e.clock.Now().Add(time.Hour), nil)
	e.store.Disconnect(context.Background(), c.ID, "x")
	var n int64
	e.store.DB().Model(&models.WebhookDelivery{}).Count(&n)
	if n != 0 {
		t.Fatalf("%d deliveries queued for an app without a webhook", n)
	}
}
