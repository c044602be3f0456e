package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
)

// deliveryJSON is a webhook delivery as the API shows it.
type deliveryJSON struct {
	ID             int64      `json:"id"`
	WebhookID      string     `json:"webhook_id"` // the Standard Webhooks webhook-id
	AppID          string     `json:"app_id"`
	ConnectionID   *string    `json:"connection_id"`
	EventType      string     `json:"event_type"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      string     `json:"last_error"`
	LastDurationMS *int       `json:"last_duration_ms"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	CreatedAt      time.Time  `json:"created_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	ReplayOf       *int64     `json:"replay_of"`
	// Payload is the body sent (GET of one delivery only).
	Payload json.RawMessage `json:"payload,omitempty"`
}

func toDeliveryJSON(d *models.WebhookDelivery) deliveryJSON {
	v := deliveryJSON{ID: d.ID, WebhookID: d.WebhookID(), AppID: d.AppID, ConnectionID: d.ConnectionID, EventType: d.EventType,
		Status: d.Status, Attempts: d.Attempts, LastError: d.LastError, CreatedAt: d.CreatedAt.UTC(), DeliveredAt: utc(d.DeliveredAt), ReplayOf: d.ReplayOf}
	if d.Attempts > 0 {
		code, ms := d.LastStatusCode, d.LastDurationMS
		v.LastStatusCode, v.LastDurationMS = &code, &ms
	}
	if d.Status == models.DeliveryPending {
		v.NextAttemptAt = utc(&d.NextAttemptAt)
	}
	return v
}

// deliveryListJSON is one page of the delivery log.
type deliveryListJSON struct {
	Deliveries []deliveryJSON `json:"deliveries"`
	// NextCursor fetches the next (older) page (?cursor=); null on the last one.
	NextCursor *string `json:"next_cursor"`
}

func (s *Server) apiListDeliveries(c echo.Context) error {
	f := models.DeliveryFilter{AppID: c.QueryParam("app_id"), ConnectionID: c.QueryParam("connection_id"),
		Status: c.QueryParam("status"), EventType: c.QueryParam("event_type"), Limit: 50}
	if only := keyApp(c); only != "" {
		if f.AppID != "" && f.AppID != only {
			return errNoSuchApp
		}
		f.AppID = only // a key limited to one app reads only that app's deliveries
	}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return services.FieldErrors{"limit": "Use a whole number from 1 to 500."}
		}
		f.Limit = n
	}
	if err := checkDeliveryFilter(&f, c.QueryParam("cursor")); err != nil {
		return err
	}
	ds, more, err := s.webhooks.Deliveries(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := deliveryListJSON{Deliveries: make([]deliveryJSON, 0, len(ds))}
	for i := range ds {
		out.Deliveries = append(out.Deliveries, toDeliveryJSON(&ds[i]))
	}
	if more && len(ds) > 0 {
		next := strconv.FormatInt(ds[len(ds)-1].ID, 10)
		out.NextCursor = &next
	}
	return c.JSON(http.StatusOK, out)
}

// apiDeliveryID reads the route's delivery ID.
func apiDeliveryID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNoDelivery
	}
	return id, nil
}

var errNoDelivery = echo.NewHTTPError(http.StatusNotFound, "There is no such webhook delivery.")

func (s *Server) apiGetDelivery(c echo.Context) error {
	id, err := apiDeliveryID(c)
	if err != nil {
		return err
	}
	d, err := s.webhooks.Delivery(c.Request().Context(), id)
	if errors.Is(err, models.ErrNotFound) {
		return errNoDelivery
	}
	if err != nil {
		return err
	}
	v := toDeliveryJSON(d)
	if json.Valid([]byte(d.Payload)) {
		v.Payload = json.RawMessage(d.Payload)
	}
	return c.JSON(http.StatusOK, v)
}

// apiReplayDelivery queues a delivery's message again: 202 with the new delivery.
func (s *Server) apiReplayDelivery(c echo.Context) error {
	id, err := apiDeliveryID(c)
	if err != nil {
		return err
	}
	replay, err := s.webhooks.Replay(c.Request().Context(), id, "")
	switch {
	case errors.Is(err, models.ErrNotFound):
		return errNoDelivery
	case err != nil:
		return err // delivery_pending, webhook_off: 409
	}
	return c.JSON(http.StatusAccepted, toDeliveryJSON(replay))
}
