package handlers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// eventsRoute is a connection's events URL: GetResponse's webhooks and callbacks
// arrive here. The request log names the route, never the path (the token).
const eventsRoute = "/events/:token"

// eventService is what the events URL and the connection pages need of the
// events service.
type eventService interface {
	Target(ctx context.Context, token string) (*models.EventsTarget, error)
	Receive(ctx context.Context, target *models.EventsTarget, in services.InboundRequest) (bool, error)
	URL(ctx context.Context, conn *models.Connection) (string, error)
	Rotate(ctx context.Context, id, actor string) (string, error)
}

// callbackService is what the pages and the API need of the callback registrations.
type callbackService interface {
	SetActions(ctx context.Context, app *models.App, actions string) (int64, error)
	Status(ctx context.Context, id string) (*models.ConnectionCallback, error)
}

// eventAnswer is what an events URL answers: {"status":"OK"} when the event is
// kept (GetResponse retries until it reads that), else an error GetResponse
// shows in its panel.
type eventAnswer struct {
	Status string        `json:"status"`
	Error  *apiErrorBody `json:"error,omitempty"`
}

func answerEvent(c echo.Context, status int, code, msg string) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if status == http.StatusOK {
		return c.JSON(status, eventAnswer{Status: "OK"})
	}
	return c.JSON(status, eventAnswer{Status: "error", Error: &apiErrorBody{Code: code, Message: msg, RequestID: requestIDOf(c)}})
}

// receiveEvent takes one event at a connection's events URL: a wrong token is a
// 404 after at most one indexed read, a body over services.EventsMaxBody a 413, a
// connection over its rate limit a 429 (GetResponse sends webhooks again); the
// event is answered {"status":"OK"} as soon as it is stored, and relayed later.
func (s *Server) receiveEvent(c echo.Context) error {
	ctx, r := c.Request().Context(), c.Request()
	tooBig := "An event body is at most " + strconv.Itoa(services.EventsMaxBody>>10) + " KiB."
	if r.ContentLength > services.EventsMaxBody {
		return answerEvent(c, http.StatusRequestEntityTooLarge, "request_entity_too_large", tooBig)
	}
	target, err := s.events.Target(ctx, c.Param("token"))
	var limited *services.ErrEventsRateLimited
	switch {
	case errors.Is(err, models.ErrNotFound):
		return answerEvent(c, http.StatusNotFound, "not_found", "There is no events URL here.")
	case errors.As(err, &limited):
		c.Response().Header().Set("Retry-After", strconv.Itoa(seconds(limited.RetryAfter)))
		return answerEvent(c, http.StatusTooManyRequests, "rate_limited", "Too many events for this connection at once; send it again shortly.")
	case err != nil:
		return s.eventFailed(c, err)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, services.EventsMaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return answerEvent(c, http.StatusRequestEntityTooLarge, "request_entity_too_large", tooBig)
	}
	if err != nil {
		return answerEvent(c, http.StatusBadRequest, "bad_request", "The body could not be read.")
	}
	_, err = s.events.Receive(ctx, target, services.InboundRequest{
		Method: r.Method, ContentType: r.Header.Get(echo.HeaderContentType),
		WebhookID: r.Header.Get("X-Webhook-ID"), WebhookType: r.Header.Get("X-Webhook-Type"),
		Query: c.QueryParams(), Body: body,
	})
	var bad *services.BadEventError
	switch {
	case errors.As(err, &bad):
		return answerEvent(c, http.StatusBadRequest, "invalid_event", bad.Reason)
	case err != nil:
		return s.eventFailed(c, err)
	}
	return answerEvent(c, http.StatusOK, "", "")
}

// eventFailed answers an event grconnect could not store: 503, which GetResponse
// retries (webhooks). The log names the request, never the token.
func (s *Server) eventFailed(c echo.Context, err error) error {
	s.log.Error("storing a GetResponse event failed", "route", eventsRoute, "request_id", requestIDOf(c), "error", err.Error())
	c.Response().Header().Set("Retry-After", "10")
	return answerEvent(c, http.StatusServiceUnavailable, "storage_unavailable", "The event could not be stored; send it again shortly.")
}

// eventsView prepares a connection's events card: its URL (made when first
// shown), the steps for GetResponse's panel, and its callbacks.
func (s *Server) eventsView(ctx context.Context, k clock, conn *models.Connection, app *models.App) views.EventsView {
	v := views.EventsView{ConnectionID: conn.ID, AccountID: conn.AccountID, AppID: conn.AppID,
		Disconnected: conn.Status == models.StatusDisconnected, InsecureBase: !strings.HasPrefix(s.cfg.BaseURL, "https://")}
	if app != nil {
		v.AppCallbacks = strings.ReplaceAll(app.CallbackActions, ",", ", ")
	}
	if !v.Disconnected {
		u, err := s.events.URL(ctx, conn)
		if err != nil {
			s.log.Warn("show a connection's events URL", "connection", conn.ID, "error", err)
		}
		v.URL, v.Unavailable = u, err != nil || u == ""
		v.Instructions = eventsInstructions(conn.AccountID, u)
	}
	cb, err := s.callbacks.Status(ctx, conn.ID)
	if err != nil {
		if !errors.Is(err, models.ErrNotFound) {
			s.log.Warn("read a connection's callbacks", "connection", conn.ID, "error", err)
		}
		return v
	}
	v.Callbacks = callbacksState(cb, k)
	return v
}

// eventsInstructions are the steps the operator sends the customer.
func eventsInstructions(account, url string) string {
	return "To send your GetResponse events to us:\n" +
		"1. Sign in to GetResponse with the account we are connected to (" + account + ").\n" +
		"2. Open Webhooks and click Create webhook.\n" +
		"3. Pick the events to send (message opened, link clicked, contact subscribed, …).\n" +
		"4. Paste this URL as the webhook URL, and save:\n" + url + "\n"
}

// callbackStateLabels put a registration's want and state in words.
var callbackStateLabels = map[[2]string]string{
	{models.CallbacksRegister, models.CallbacksPending}: "Registering",
	{models.CallbacksRegister, models.CallbacksDone}:    "Registered",
	{models.CallbacksRegister, models.CallbacksFailed}:  "Registration failed",
	{models.CallbacksRemove, models.CallbacksPending}:   "Removing",
	{models.CallbacksRemove, models.CallbacksDone}:      "Removed",
	{models.CallbacksRemove, models.CallbacksFailed}:    "Removal failed",
}

// whoActs says who must act on a registration's failure, as the refresh banner does.
var whoActs = map[string]string{
	services.ClassCustomer: "The customer: they must reconnect (or change their GetResponse user's rights); their account is the one GetResponse refused.",
	services.ClassOperator: "You: the app's configuration (or grconnect's base URL) was refused; fix it, then save the app's callbacks again.",
	services.ClassWait:     "Nobody: GetResponse refuses calls for now; grconnect tries again by itself.",
}

func callbacksState(cb *models.ConnectionCallback, k clock) *views.CallbacksState {
	st := &views.CallbacksState{Want: cb.Want, State: cb.State, Label: callbackStateLabels[[2]string{cb.Want, cb.State}],
		Actions: strings.ReplaceAll(cb.Actions, ",", ", "), Error: cb.LastError, Note: cb.Note, Updated: k.view(cb.UpdatedAt)}
	if cb.LastError != "" {
		st.WhoActs = whoActs[cb.Actor]
	}
	if cb.State == models.CallbacksPending {
		t := k.view(cb.NextAttemptAt)
		st.Next = &t
	}
	return st
}

// rotateEventsURL replaces a connection's events URL from its page.
func (s *Server) rotateEventsURL(c echo.Context) error {
	id := c.Param("id")
	_, err := s.events.Rotate(c.Request().Context(), id, currentOperator(c).Email)
	if errors.Is(err, models.ErrDisconnected) {
		return s.redirectWithFlash(c, "/connections/"+id+"#events", "error", "A disconnected connection has no events URL.")
	}
	if err != nil {
		return err
	}
	return s.redirectWithFlash(c, "/connections/"+id+"#events", "success",
		"Events URL replaced: the old one answers 404 from now on. Give GetResponse's webhook panel the new one.")
}

// setCallbacks saves which GetResponse callbacks an app registers.
func (s *Server) setCallbacks(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.apps.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	form, _ := c.FormParams()
	chosen := form["actions"]
	if c.FormValue("callbacks") != "on" {
		chosen = nil
	} else if len(chosen) == 0 {
		return s.renderAppWith(c, http.StatusUnprocessableEntity, app.ID, appForms{callbacks: &views.CallbacksView{On: true,
			Error: "Choose at least one action, or turn callbacks off."}})
	}
	actions, err := services.ParseCallbackActions(chosen)
	if fe, ok := services.AsFieldErrors(err); ok {
		return s.renderAppWith(c, http.StatusUnprocessableEntity, app.ID, appForms{callbacks: &views.CallbacksView{On: true, Error: fe["actions"]}})
	}
	n, err := s.callbacks.SetActions(ctx, app, actions)
	if err != nil {
		return err
	}
	msg := "GetResponse callbacks turned off"
	if actions != "" {
		msg = "GetResponse callbacks saved: " + strings.ReplaceAll(actions, ",", ", ")
	}
	if n > 0 {
		msg += " (" + strconv.FormatInt(n, 10) + " connections queued)"
	}
	return s.redirectWithFlash(c, "/apps/"+app.ID+"#callbacks", "success", msg+".")
}

// callbacksView prepares an app's callbacks card; form, when set, is a submission
// to show again with its error.
func (s *Server) callbacksView(app *models.App, form *views.CallbacksView) views.CallbacksView {
	chosen := strings.Split(app.CallbackActions, ",")
	v := views.CallbacksView{AppID: app.ID, On: app.CallbackActions != "", InsecureBase: !strings.HasPrefix(s.cfg.BaseURL, "https://")}
	if form != nil {
		v.On, v.Error = form.On, form.Error
	}
	for _, a := range services.CallbackActions {
		checked := false
		for _, c := range chosen {
			checked = checked || c == a
		}
		v.Actions = append(v.Actions, views.Choice{Value: a, Checked: checked || (app.CallbackActions == "" && form == nil)})
	}
	return v
}
