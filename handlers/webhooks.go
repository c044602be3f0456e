package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// webhookService is what the app page and the API need of the webhook sender.
type webhookService interface {
	Configure(ctx context.Context, app *models.App, in services.WebhookInput) (string, error)
	Deliveries(ctx context.Context, f models.DeliveryFilter) ([]models.WebhookDelivery, bool, error)
	Delivery(ctx context.Context, id int64) (*models.WebhookDelivery, error)
	Replay(ctx context.Context, id int64, appID string) (*models.WebhookDelivery, error)
	LegacySecret(app *models.App) bool
}

// webhookSubmission is the webhook form as posted, shown again with its errors.
type webhookSubmission struct {
	url    string
	events []string
	errors services.FieldErrors
}

// deliveryLogPage is how many deliveries the app page shows at once.
const deliveryLogPage = 20

// webhookView prepares an app's webhook settings and a page of its delivery log
// (filtered by the page's delivery_status, delivery_event and delivery_before).
func (s *Server) webhookView(c echo.Context, k clock, app *models.App, sub *webhookSubmission) (views.WebhookView, error) {
	v := views.WebhookView{AppID: app.ID, URL: app.WebhookURL, HasSecret: app.WebhookSecretEnc != "",
		LegacySecret: s.webhooks.LegacySecret(app)}
	if app.WebhookPreviousSecretEnc != "" && app.WebhookPreviousUntil != nil && k.now.Before(*app.WebhookPreviousUntil) {
		t := k.view(*app.WebhookPreviousUntil)
		v.PreviousUntil = &t
	}
	v.Form.URL = app.WebhookURL
	for _, t := range models.WebhookEventTypes() {
		v.Events = append(v.Events, views.Choice{Value: t, Checked: app.WebhookSubscribed(t)})
	}
	if sub != nil {
		v.Form = views.WebhookForm{URL: sub.url, Error: sub.errors["webhook_url"], EventsError: sub.errors["events"]}
		for i := range v.Events {
			v.Events[i].Checked = slices.Contains(sub.events, v.Events[i].Value)
		}
	}
	f := models.DeliveryFilter{AppID: app.ID, Status: c.QueryParam("delivery_status"), EventType: c.QueryParam("delivery_event"), Limit: deliveryLogPage}
	if err := checkDeliveryFilter(&f, c.QueryParam("delivery_before")); err != nil {
		return v, err
	}
	v.Filter = views.DeliveryFilter{Status: f.Status, Event: f.EventType, Events: models.WebhookEventTypes()}
	ds, more, err := s.webhooks.Deliveries(c.Request().Context(), f)
	if err != nil {
		return v, err
	}
	for _, d := range ds {
		v.Deliveries = append(v.Deliveries, deliveryRow(d, k, app.WebhookURL != ""))
	}
	page := func(before int64) string {
		q := url.Values{}
		if f.Status != "" {
			q.Set("delivery_status", f.Status)
		}
		if f.EventType != "" {
			q.Set("delivery_event", f.EventType)
		}
		if before > 0 {
			q.Set("delivery_before", strconv.FormatInt(before, 10))
		}
		u := "/apps/" + app.ID
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		return u + "#deliveries"
	}
	if more && len(ds) > 0 {
		v.OlderURL = page(ds[len(ds)-1].ID)
	}
	if f.Before > 0 {
		v.NewestURL = page(0)
	}
	return v, nil
}

// checkDeliveryFilter validates a delivery log filter (and its page cursor, before).
func checkDeliveryFilter(f *models.DeliveryFilter, before string) error {
	if f.Status != "" && f.Status != models.DeliveryPending && f.Status != models.DeliveryDelivered && f.Status != models.DeliveryFailed {
		return services.FieldErrors{"status": "Use pending, delivered or failed."}
	}
	if f.EventType != "" && !slices.Contains(models.WebhookEventTypes(), f.EventType) {
		return services.FieldErrors{"event_type": "Use one of the webhook event types."}
	}
	if before != "" {
		n, err := strconv.ParseInt(before, 10, 64)
		if err != nil || n <= 0 {
			return models.ErrBadCursor
		}
		f.Before = n
	}
	return nil
}

// deliveryRow is one delivery for the log; canReplay says the app has a webhook.
func deliveryRow(d models.WebhookDelivery, k clock, canReplay bool) views.DeliveryRow {
	row := views.DeliveryRow{ID: d.ID, AppID: d.AppID, Event: d.EventType, Status: d.Status, Attempts: d.Attempts, Code: d.LastStatusCode,
		Error: d.LastError, Created: k.view(d.CreatedAt), CanReplay: canReplay && d.Status != models.DeliveryPending}
	if d.ConnectionID != nil {
		row.ConnectionID = *d.ConnectionID
	}
	if d.ReplayOf != nil {
		row.ReplayOf = *d.ReplayOf
	}
	if d.Attempts > 0 {
		row.Duration = fmt.Sprintf("%d ms", d.LastDurationMS)
	}
	if d.Status == models.DeliveryPending {
		t := k.view(d.NextAttemptAt)
		row.Next = &t
	}
	return row
}

func (s *Server) configureWebhook(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.apps.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	form, _ := c.FormParams()
	in := services.WebhookInput{URL: c.FormValue("webhook_url"), Events: form["events"], Rotate: c.FormValue("rotate") == "yes"}
	// The form's checkboxes come with events_shown; a post without it (an older
	// form, a script) subscribes the webhook to every event type.
	if len(in.Events) == 0 && in.URL != "" && c.FormValue("events_shown") == "1" {
		fe := services.FieldErrors{"events": "Choose at least one event type, or clear the URL to turn webhooks off."}
		return s.renderAppWith(c, http.StatusUnprocessableEntity, app.ID, appForms{hook: &webhookSubmission{url: in.URL, errors: fe}})
	}
	secret, err := s.webhooks.Configure(ctx, app, in)
	if fe, ok := services.AsFieldErrors(err); ok {
		return s.renderAppWith(c, http.StatusUnprocessableEntity, app.ID, appForms{hook: &webhookSubmission{url: in.URL, events: in.Events, errors: fe}})
	}
	if err != nil {
		return err
	}
	s.log.Info("webhook configured", "app", app.ID, "by", currentOperator(c).ID, "secret_rotated", secret != "")
	if secret != "" {
		// Shown once, on this response only; it is stored encrypted.
		return render(c, http.StatusOK, views.WebhookSecretPage(s.page(c, "Webhook signing secret", "apps"), app.ID, app.Name, secret))
	}
	msg := "Webhook saved."
	if in.URL == "" {
		msg = "Webhooks turned off."
	}
	return s.redirectWithFlash(c, "/apps/"+app.ID+"#webhook", "success", msg)
}

// deliveryOf reads the delivery the route names, which must belong to the route's app.
func (s *Server) deliveryOf(c echo.Context) (*models.WebhookDelivery, error) {
	id, err := strconv.ParseInt(c.Param("delivery"), 10, 64)
	if err != nil || id <= 0 {
		return nil, echo.NewHTTPError(http.StatusNotFound, "There is no such webhook delivery.")
	}
	d, err := s.webhooks.Delivery(c.Request().Context(), id)
	if errors.Is(err, models.ErrNotFound) || (err == nil && d.AppID != c.Param("id")) {
		return nil, echo.NewHTTPError(http.StatusNotFound, "There is no such webhook delivery.")
	}
	return d, err
}

// showDelivery shows one delivery: how it went and the body sent.
func (s *Server) showDelivery(c echo.Context) error {
	ctx := c.Request().Context()
	d, err := s.deliveryOf(c)
	if err != nil {
		return err
	}
	app, err := s.apps.Get(ctx, d.AppID)
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, []byte(d.Payload), "", "  ") != nil {
		pretty.Reset()
		pretty.WriteString(d.Payload)
	}
	v := views.DeliveryView{Row: deliveryRow(*d, s.clock(c), app.WebhookURL != ""), AppName: app.Name, WebhookID: d.WebhookID(), Payload: pretty.String()}
	return render(c, http.StatusOK, views.DeliveryPage(s.page(c, "Delivery "+strconv.FormatInt(d.ID, 10), "apps"), v))
}

// replayDelivery queues a delivery's message again, from the app page.
func (s *Server) replayDelivery(c echo.Context) error {
	d, err := s.deliveryOf(c)
	if err != nil {
		return err
	}
	to := "/apps/" + d.AppID + "#deliveries"
	replay, err := s.webhooks.Replay(c.Request().Context(), d.ID, d.AppID)
	switch {
	case errors.Is(err, models.ErrDeliveryPending):
		return s.redirectWithFlash(c, to, "error", "That delivery is still being sent; replay it once it is delivered or given up.")
	case errors.Is(err, models.ErrWebhookOff):
		return s.redirectWithFlash(c, to, "error", "The app has no webhook URL: set one first.")
	case err != nil:
		return err
	}
	return s.redirectWithFlash(c, to, "success", fmt.Sprintf("Delivery %d queued again as delivery %d (same webhook-id).", d.ID, replay.ID))
}
