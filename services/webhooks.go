package services

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	webhookBatch    = 200            // deliveries leased per pass
	webhookParallel = 16             // deliveries in flight at once
	// webhookGather is the least time between two partial passes, so that
	// deliveries queued one by one go out (and are recorded) many at a time.
	webhookGather = 50 * time.Millisecond
	// webhookOverlap is how long a replaced signing secret keeps signing beside
	// the new one, so receivers can switch without losing a delivery.
	webhookOverlap = 24 * time.Hour
	// DeliveryRetention is how long the delivery log keeps finished deliveries.
	DeliveryRetention = 30 * 24 * time.Hour
)

// Webhooks sends connection events to each app's webhook endpoint from a durable
// outbox: a delivery row is written in the same transaction as its event, retried
// with backoff for 24 hours, and marked delivered once the receiver answers 2xx.
// Every delivery is signed as Standard Webhooks specifies (webhook-id,
// webhook-timestamp, webhook-signature), and the old X-Grconnect-Signature is sent
// beside it for one more release.
type Webhooks struct {
	store *models.Store
	box   *secrets.Box
	hc    *http.Client
	log   *slog.Logger
	owner string
	pass  atomic.Uint64
	kick  chan struct{}
	// Interval is how often Run looks for due deliveries (±20 % jitter) when
	// nothing wakes it earlier (Kick).
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
	w := &Webhooks{store: store, box: box, log: log, owner: "wh/" + models.RandomToken(6), Interval: 5 * time.Second, Now: models.Now,
		kick: make(chan struct{}, 1)}
	if hc == nil {
		hc = netguard.New("GRCONNECT_WEBHOOK_ALLOW_PRIVATE", func() bool { return w.AllowPrivate }).Client(webhookTimeout)
		if t, ok := hc.Transport.(*http.Transport); ok {
			t.MaxIdleConnsPerHost = webhookParallel // keep a connection per delivery in flight
		}
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

// WebhookInput is an app's webhook as the operator sets it.
type WebhookInput struct {
	URL string // "" turns webhooks off
	// Events are the event types to send; empty, or every type, sends every type
	// (also those added later).
	Events []string
	// Rotate makes a new signing secret; the old one keeps signing beside it for
	// 24 hours.
	Rotate bool
}

// Configure sets an app's webhook. A signing secret is made when the app has none
// or in.Rotate is set; it is returned only then, to be shown once.
func (w *Webhooks) Configure(ctx context.Context, app *models.App, in WebhookInput) (secret string, err error) {
	rawURL := strings.TrimSpace(in.URL)
	fe := FieldErrors{}
	if rawURL != "" {
		if problem := w.checkURL(rawURL); problem != "" {
			fe["webhook_url"] = problem
		}
	}
	events, problem := webhookEvents(in.Events)
	if problem != "" {
		fe["events"] = problem
	}
	if len(fe) > 0 {
		return "", fe
	}
	setting := models.WebhookSetting{URL: rawURL, Events: events}
	if rawURL != "" && (app.WebhookSecretEnc == "" || in.Rotate) {
		secret = newWebhookSecret()
		if setting.SecretEnc, err = w.box.Seal(secret, secrets.AAD("app", app.ID, "webhook_secret")); err != nil {
			return "", err
		}
		if app.WebhookSecretEnc != "" {
			// The replaced secret keeps signing for a while, sealed as the previous one.
			old, err := w.box.Open(app.WebhookSecretEnc, secrets.AAD("app", app.ID, "webhook_secret"))
			if err == nil {
				until := w.Now().Add(webhookOverlap)
				setting.PreviousUntil = &until
				if setting.PreviousEnc, err = w.box.Seal(old, secrets.AAD("app", app.ID, "webhook_previous_secret")); err != nil {
					return "", err
				}
			}
		}
	}
	ctx = auditing(ctx, models.AuditWebhookChanged, TargetApp, app.ID, describeWebhookChange(app, rawURL, events, setting.SecretEnc != ""))
	if err := w.store.SetWebhook(ctx, app.ID, setting); err != nil {
		return "", err
	}
	return secret, nil
}

// webhookEvents checks a choice of event types and returns it as stored: "" for
// all of them.
func webhookEvents(chosen []string) (string, string) {
	all := models.WebhookEventTypes()
	var picked []string
	for _, t := range all {
		if slices.Contains(chosen, t) {
			picked = append(picked, t)
		}
	}
	for _, t := range chosen {
		if !slices.Contains(all, t) {
			return "", "Choose among the listed event types (" + strconv.Quote(t) + " is not one)."
		}
	}
	if len(chosen) == 0 || len(picked) == len(all) {
		return "", ""
	}
	return strings.Join(picked, ","), ""
}

// describeWebhookChange says what a webhook setting changed. Only the URL's host
// is named: a webhook URL may carry a token of the receiver's in its path or query.
func describeWebhookChange(app *models.App, rawURL, events string, newSecret bool) string {
	if rawURL == "" {
		return fmt.Sprintf("Webhooks of app %q turned off", app.Name)
	}
	host := ""
	if u, err := url.Parse(rawURL); err == nil {
		host = u.Host
	}
	msg := fmt.Sprintf("Webhook of app %q set to a URL on %s", app.Name, host)
	if events == "" {
		msg += ", every event type"
	} else {
		msg += ", events " + strings.ReplaceAll(events, ",", ", ")
	}
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

// Kick makes Run look for due deliveries now (new ones were queued).
func (w *Webhooks) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers due webhooks until ctx ends; a delivery in flight finishes first.
func (w *Webhooks) Run(ctx context.Context) {
	for {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Error("webhook pass failed", "error", err)
		}
		if n >= webhookBatch {
			continue
		}
		wait := time.Duration(float64(w.Interval) * (0.8 + 0.4*rand.Float64()))
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-time.After(wait):
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(webhookGather):
		}
	}
}

// appKeys is what signing an app's deliveries needs, read once per pass.
type appKeys struct {
	url    string
	secret string   // the current secret's text (the deprecated header's key)
	keys   [][]byte // the current key, and the replaced one while it still signs
	err    string   // why the app's deliveries cannot go out
}

// RunOnce sends one batch of due deliveries and returns how many it attempted.
func (w *Webhooks) RunOnce(ctx context.Context) (int, error) {
	if ctx.Err() != nil {
		return 0, nil
	}
	now := w.Now()
	owner := w.owner + "/" + strconv.FormatUint(w.pass.Add(1), 10)
	due, err := w.store.DueDeliveries(ctx, owner, now, webhookLease, webhookBatch)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	// A started delivery finishes even during shutdown, so its outcome is recorded.
	ctx = context.WithoutCancel(ctx)
	apps := map[string]*appKeys{}
	for _, d := range due {
		if apps[d.AppID] == nil {
			apps[d.AppID] = w.keysOf(ctx, d.AppID, now)
		}
	}
	outcomes := make([]models.DeliveryOutcome, len(due))
	var wg sync.WaitGroup
	sem := make(chan struct{}, webhookParallel)
	for i, d := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			outcomes[i] = w.deliver(ctx, d, apps[d.AppID])
		}()
	}
	wg.Wait()
	if _, err := w.store.SaveDeliveries(ctx, owner, outcomes); err != nil {
		return len(due), err
	}
	return len(due), nil
}

// keysOf reads an app's webhook URL and opens its signing secrets.
func (w *Webhooks) keysOf(ctx context.Context, appID string, now time.Time) *appKeys {
	app, err := w.store.AppByID(ctx, appID)
	if err != nil || app.WebhookURL == "" {
		return &appKeys{err: "the app's webhook is no longer configured"}
	}
	k := &appKeys{url: app.WebhookURL}
	k.secret, err = w.box.Open(app.WebhookSecretEnc, secrets.AAD("app", app.ID, "webhook_secret"))
	var key []byte
	if err == nil {
		key, err = webhookKey(k.secret)
	}
	if err != nil {
		w.log.Error("open a webhook signing secret", "app", app.ID, "error", err)
		return &appKeys{err: "the app's signing secret cannot be read; make a new one on the app's page"}
	}
	k.keys = [][]byte{key}
	if app.WebhookPreviousSecretEnc != "" && app.WebhookPreviousUntil != nil && now.Before(*app.WebhookPreviousUntil) {
		if prev, err := w.box.Open(app.WebhookPreviousSecretEnc, secrets.AAD("app", app.ID, "webhook_previous_secret")); err == nil {
			if pk, err := webhookKey(prev); err == nil {
				k.keys = append(k.keys, pk)
			}
		}
	}
	return k
}

// deliver sends one attempt of d and says what came of it.
func (w *Webhooks) deliver(ctx context.Context, d models.WebhookDelivery, k *appKeys) models.DeliveryOutcome {
	now := w.Now()
	o := models.DeliveryOutcome{ID: d.ID, At: now}
	if k.err != "" {
		o.Failed, o.Error = true, k.err
	} else {
		start := time.Now()
		o.StatusCode, o.Error = w.post(ctx, k, d, now)
		o.Duration = time.Since(start)
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
	return o
}

// post sends one attempt; it returns the status code and, unless 2xx, what went wrong.
func (w *Webhooks) post(ctx context.Context, k *appKeys, d models.WebhookDelivery, now time.Time) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	body := []byte(d.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.url, bytes.NewReader(body))
	if err != nil {
		return 0, "invalid webhook URL"
	}
	id, ts := d.WebhookID(), now.Unix()
	sigs := make([]string, len(k.keys))
	for i, key := range k.keys {
		sigs[i] = StandardSignature(key, id, ts, body)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "grconnect-webhooks")
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", strings.Join(sigs, " "))
	h.Set("X-Grconnect-Event", d.EventType)
	h.Set("X-Grconnect-Delivery", id)
	h.Set("X-Grconnect-Signature", Signature(k.secret, ts, body)) // deprecated: see docs/webhooks.md
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

// deliveryEvent is the timeline entry of an attempt: every attempt of a
// connection event; of a relayed GetResponse event (which may come by the
// thousand) only the last attempt of one given up, the event itself being on the
// timeline already.
func deliveryEvent(d models.WebhookDelivery, o models.DeliveryOutcome) *models.Event {
	if d.ConnectionID == nil || (d.EventType == models.WebhookGetResponseEvent && !o.Failed) {
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

// Deliveries returns a page of the delivery log, newest first, and whether older
// deliveries match too.
func (w *Webhooks) Deliveries(ctx context.Context, f models.DeliveryFilter) ([]models.WebhookDelivery, bool, error) {
	return w.store.ListDeliveries(ctx, f)
}

// Delivery returns one delivery with its payload.
func (w *Webhooks) Delivery(ctx context.Context, id int64) (*models.WebhookDelivery, error) {
	return w.store.DeliveryByID(ctx, id)
}

// Replay sends delivery id's message again, as a new delivery with the same
// webhook-id and body. appID, when set, is the app it must belong to (else
// ErrNotFound).
func (w *Webhooks) Replay(ctx context.Context, id int64, appID string) (*models.WebhookDelivery, error) {
	d, err := w.store.DeliveryByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if appID != "" && d.AppID != appID {
		return nil, models.ErrNotFound
	}
	ctx = auditing(ctx, models.AuditWebhookReplayed, TargetApp, d.AppID,
		fmt.Sprintf("Webhook delivery %d (%s, %s) queued again", d.ID, d.EventType, d.WebhookID()))
	replay, err := w.store.ReplayDelivery(ctx, id, w.Now())
	if err != nil {
		return nil, err
	}
	w.Kick()
	return replay, nil
}

// LegacySecret reports whether app's signing secret was made before grconnect
// signed the Standard Webhooks way (whsec_ and 39 base32 characters): Standard
// Webhooks libraries need it with "=" appended (see webhookKey).
func (w *Webhooks) LegacySecret(app *models.App) bool {
	if app.WebhookSecretEnc == "" {
		return false
	}
	secret, err := w.box.Open(app.WebhookSecretEnc, secrets.AAD("app", app.ID, "webhook_secret"))
	if err != nil {
		return false
	}
	enc := strings.TrimPrefix(secret, webhookSecretPrefix)
	_, err = base64.StdEncoding.DecodeString(enc)
	return err != nil
}
