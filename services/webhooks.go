package services

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/netguard"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// Webhook delivery timing.
const (
	webhookTimeout  = 10 * time.Second
	webhookLease    = 60 * time.Second
	webhookLifetime = 24 * time.Hour // retried for this long, then given up
	webhookBatch    = 20
)

// Webhooks sends connection events to each app's webhook endpoint from a durable
// outbox: a delivery row is written in the same transaction as its event, retried
// with backoff for 24 hours, and marked delivered once the receiver answers 2xx.
type Webhooks struct {
	store *models.Store
	box   *secrets.Box
	hc    *http.Client
	log   *slog.Logger
	owner string
	// Interval is how often Run looks for due deliveries (±20 % jitter).
	Interval time.Duration
	// Now is the clock; tests replace it.
	Now func() time.Time
	// AllowPrivate lets webhooks reach loopback and private addresses
	// (GRCONNECT_WEBHOOK_ALLOW_PRIVATE); link-local and metadata addresses never.
	// Set it before Configure and Run.
	AllowPrivate bool
}

// NewWebhooks returns the webhook sender. hc may be nil: then deliveries go through
// a client that checks every address it connects to (netguard, with
// GRCONNECT_WEBHOOK_ALLOW_PRIVATE as AllowPrivate). No client follows redirects.
func NewWebhooks(store *models.Store, box *secrets.Box, hc *http.Client, log *slog.Logger) *Webhooks {
	w := &Webhooks{store: store, box: box, log: log, owner: "wh/" + models.RandomToken(6), Interval: 5 * time.Second, Now: models.Now}
	if hc == nil {
		hc = netguard.New("GRCONNECT_WEBHOOK_ALLOW_PRIVATE", func() bool { return w.AllowPrivate }).Client(webhookTimeout)
	} else {
		c := *hc
		c.CheckRedirect = netguard.NoRedirects
		hc = &c
	}
	w.hc = hc
	return w
}

// LeaseAs names this process in the leases of the deliveries it sends (a
// heartbeat's name, Tokens.Process), so that a replica that sees this one gone
// ends them at once. Call it before Run.
func (w *Webhooks) LeaseAs(process string) { w.owner = process + "/webhooks" }

// Configure sets an app's webhook URL ("" turns webhooks off). A signing secret is
// made when the app has none or rotate is set; it is returned only then, to be
// shown once.
func (w *Webhooks) Configure(ctx context.Context, app *models.App, rawURL string, rotate bool) (secret string, err error) {
	rawURL = strings.TrimSpace(rawURL)
	if rawURL != "" {
		if problem := w.checkURL(rawURL); problem != "" {
			return "", FieldErrors{"webhook_url": problem}
		}
	}
	sealed := ""
	if rawURL != "" && (app.WebhookSecretEnc == "" || rotate) {
		secret = "whsec_" + models.RandomToken(24)
		if sealed, err = w.box.Seal(secret, secrets.AAD("app", app.ID, "webhook_secret")); err != nil {
			return "", err
		}
	}
	ctx = auditing(ctx, models.AuditWebhookChanged, TargetApp, app.ID, describeWebhookChange(app, rawURL, sealed != ""))
	if err := w.store.SetWebhook(ctx, app.ID, rawURL, sealed); err != nil {
		return "", err
	}
	return secret, nil
}

// describeWebhookChange says what a webhook setting changed. Only the URL's host
// is named: a webhook URL may carry a token of the receiver's in its path or query.
func describeWebhookChange(app *models.App, rawURL string, newSecret bool) string {
	if rawURL == "" {
		return fmt.Sprintf("Webhooks of app %q turned off", app.Name)
	}
	host := ""
	if u, err := url.Parse(rawURL); err == nil {
		host = u.Host
	}
	msg := fmt.Sprintf("Webhook of app %q set to a URL on %s", app.Name, host)
	if newSecret {
		msg += "; new signing secret"
	}
	return msg
}

// checkURL says what is wrong with a webhook URL, in words for the form, or "".
// Addresses are checked again when a delivery connects (a name may resolve anywhere).
func (w *Webhooks) checkURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(rawURL) > 2000 {
		return "Enter an absolute https URL, like https://app.example.com/hooks/grconnect."
	}
	class := netguard.ClassifyHost(u.Hostname())
	switch {
	case class == netguard.Forbidden:
		return "This address is link-local or a cloud metadata service: webhooks never go there."
	case class == netguard.Private && !w.AllowPrivate:
		return "This is a loopback or private-network address. Webhooks go there only when GRCONNECT_WEBHOOK_ALLOW_PRIVATE is set."
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return "Use https: webhooks carry customer data. (http is allowed for localhost only.)"
	}
	return ""
}

// isLoopbackHost reports whether h is a loopback address literal or a localhost name
// (never a public name that merely starts with "127.").
func isLoopbackHost(h string) bool {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return a.Unmap().IsLoopback()
	}
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// Signature signs a webhook body: "t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">".
// Receivers recompute it with their secret and compare in constant time.
func Signature(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.", ts)
	m.Write(body)
	return "t=" + strconv.FormatInt(ts, 10) + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Run delivers due webhooks until ctx ends; a delivery in flight finishes first.
func (w *Webhooks) Run(ctx context.Context) {
	for {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Error("webhook pass failed", "error", err)
		}
		wait := time.Duration(float64(w.Interval) * (0.8 + 0.4*rand.Float64()))
		if n >= webhookBatch {
			wait = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// RunOnce sends one batch of due deliveries and returns how many it attempted.
func (w *Webhooks) RunOnce(ctx context.Context) (int, error) {
	if ctx.Err() != nil {
		return 0, nil
	}
	now := w.Now()
	due, err := w.store.DueDeliveries(ctx, w.owner, now, webhookLease, webhookBatch)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, d := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// A started delivery finishes even during shutdown, so its outcome is recorded.
			w.deliver(context.WithoutCancel(ctx), d)
		}()
	}
	wg.Wait()
	return len(due), nil
}

func (w *Webhooks) deliver(ctx context.Context, d models.WebhookDelivery) {
	app, err := w.store.AppByID(ctx, d.AppID)
	secret := ""
	if err == nil {
		secret, err = w.box.Open(app.WebhookSecretEnc, secrets.AAD("app", app.ID, "webhook_secret"))
	}
	now := w.Now()
	o := models.DeliveryOutcome{At: now}
	switch {
	case err != nil || app.WebhookURL == "":
		o.Failed, o.Error = true, "the app's webhook is no longer configured"
	default:
		o.StatusCode, o.Error = w.post(ctx, app.WebhookURL, secret, d, now)
		o.Delivered = o.Error == ""
	}
	if !o.Delivered && !o.Failed {
		if now.Sub(d.CreatedAt) >= webhookLifetime {
			o.Failed = true
		} else {
			o.NextAt = now.Add(Backoff(d.Attempts + 1))
		}
	}
	o.Event = deliveryEvent(d, o)
	if err := w.store.SaveDelivery(ctx, d.ID, w.owner, o); err != nil {
		w.log.Error("save webhook delivery", "delivery", d.ID, "error", err)
	}
}

// post sends one attempt; it returns the status code and, unless 2xx, what went wrong.
func (w *Webhooks) post(ctx context.Context, target, secret string, d models.WebhookDelivery, now time.Time) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	body := []byte(d.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, "invalid webhook URL"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "grconnect-webhooks")
	req.Header.Set("X-Grconnect-Event", d.EventType)
	req.Header.Set("X-Grconnect-Delivery", "whd_"+strconv.FormatInt(d.ID, 10))
	req.Header.Set("X-Grconnect-Signature", Signature(secret, now.Unix(), body))
	resp, err := w.hc.Do(req)
	if err != nil {
		if blocked, ok := netguard.Blocked(err); ok {
			return 0, blocked.Error()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, "timed out after " + webhookTimeout.String()
		}
		return 0, "could not reach the endpoint"
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return resp.StatusCode, "the endpoint answered HTTP " + strconv.Itoa(resp.StatusCode) + " (a redirect: grconnect does not follow redirects; configure the final URL)"
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, "the endpoint answered HTTP " + strconv.Itoa(resp.StatusCode)
	}
	return resp.StatusCode, ""
}

func deliveryEvent(d models.WebhookDelivery, o models.DeliveryOutcome) *models.Event {
	if d.ConnectionID == nil {
		return nil
	}
	e := &models.Event{ConnectionID: d.ConnectionID, AppID: &d.AppID, Actor: "system", CreatedAt: o.At}
	switch {
	case o.Delivered:
		e.Type, e.Message = "webhook.delivered", fmt.Sprintf("Webhook %s delivered (HTTP %d, attempt %d)", d.EventType, o.StatusCode, d.Attempts+1)
	case o.Failed:
		e.Type, e.Message = "webhook.failed", fmt.Sprintf("Webhook %s given up after %d attempts: %s", d.EventType, d.Attempts+1, o.Error)
	default:
		e.Type, e.Message = "webhook.retrying", fmt.Sprintf("Webhook %s attempt %d failed (%s); next attempt %s", d.EventType, d.Attempts+1, o.Error, o.NextAt.Format("15:04:05 UTC"))
	}
	return e
}

// RecentDeliveries returns an app's newest webhook deliveries.
func (w *Webhooks) RecentDeliveries(ctx context.Context, appID string, limit int) ([]models.WebhookDelivery, error) {
	return w.store.RecentDeliveries(ctx, appID, limit)
}
