package handlers

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// webhookService is what the app page needs of the webhook sender.
type webhookService interface {
	Configure(ctx context.Context, app *models.App, url string, rotate bool) (string, error)
	RecentDeliveries(ctx context.Context, appID string, limit int) ([]models.WebhookDelivery, error)
}

// webhookView prepares an app's webhook settings and recent deliveries.
func (s *Server) webhookView(ctx context.Context, k clock, app *models.App, form views.WebhookForm) (views.WebhookView, error) {
	v := views.WebhookView{AppID: app.ID, URL: app.WebhookURL, HasSecret: app.WebhookSecretEnc != "", Form: form, Events: models.WebhookEventTypes()}
	if v.Form.URL == "" && v.Form.Error == "" {
		v.Form.URL = app.WebhookURL
	}
	ds, err := s.webhooks.RecentDeliveries(ctx, app.ID, 20)
	if err != nil {
		return v, err
	}
	for _, d := range ds {
		row := views.DeliveryRow{ID: d.ID, Event: d.EventType, Status: d.Status, Attempts: d.Attempts, Code: d.LastStatusCode, Error: d.LastError, Created: k.view(d.CreatedAt)}
		if d.ConnectionID != nil {
			row.ConnectionID = *d.ConnectionID
		}
		if d.Status == models.DeliveryPending {
			t := k.view(d.NextAttemptAt)
			row.Next = &t
		}
		v.Deliveries = append(v.Deliveries, row)
	}
	return v, nil
}

func (s *Server) configureWebhook(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.apps.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	url := c.FormValue("webhook_url")
	secret, err := s.webhooks.Configure(ctx, app, url, c.FormValue("rotate") == "yes")
	if fe, ok := services.AsFieldErrors(err); ok {
		return s.renderApp(c, http.StatusUnprocessableEntity, app.ID, views.LinkForm{}, views.WebhookForm{URL: url, Error: fe["webhook_url"]})
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
	if url == "" {
		msg = "Webhooks turned off."
	}
	return s.redirectWithFlash(c, "/apps/"+app.ID+"#webhook", "success", msg)
}
