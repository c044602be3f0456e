package handlers

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
)

// apiError is the JSON API's error envelope: {"error":{"code","message",…}}.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Fields names each bad input field (400 invalid_input).
	Fields map[string]string `json:"fields,omitempty"`
	// RetryAfter is in seconds (429, 503); the Retry-After header says the same.
	RetryAfter int `json:"retry_after,omitempty"`
	// Reconnect is the call that makes a reconnect link (409 needs_reconnect).
	Reconnect *reconnectHint `json:"reconnect,omitempty"`
	// App names the app that is the cause (app_credentials_rejected,
	// app_misconfigured, getresponse_refusing).
	App *appRef `json:"app,omitempty"`
	// Scope is the scope the API key lacks (403 insufficient_scope).
	Scope string `json:"scope,omitempty"`
	// RequestID is the request's ID (also X-Request-Id), which its log line carries.
	RequestID string `json:"request_id,omitempty"`
}

// appRef names an app in an error.
type appRef struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Health string `json:"health"`
}

// reconnectHint is a ready-made request for a reconnect link.
type reconnectHint struct {
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Body   map[string]string `json:"body"`
}

// defaultRetry is the wait suggested after a transient failure that named none.
const defaultRetry = 30 * time.Second

// writeAPIError renders err as the API's JSON envelope with a fitting status. Only
// unexpected failures are logged as errors; their details never reach the caller.
func (s *Server) writeAPIError(c echo.Context, err error) {
	status, body := apiErrorFor(err, c.Param("id"), time.Now())
	body.RequestID = requestIDOf(c)
	rid := slog.String("request_id", body.RequestID)
	switch {
	case status == http.StatusInternalServerError:
		s.log.Error("request failed", slog.String("method", c.Request().Method), slog.String("path", c.Request().URL.Path), slog.String("error", err.Error()), rid)
	case body.Code == "storage_unavailable":
		s.log.Error("storage unavailable", slog.String("method", c.Request().Method), slog.String("path", c.Request().URL.Path), slog.String("error", err.Error()), rid)
	case status == http.StatusServiceUnavailable:
		s.log.Warn("GetResponse unavailable", slog.String("path", c.Request().URL.Path), slog.String("error", err.Error()), rid)
	}
	h := c.Response().Header()
	if body.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(body.RetryAfter))
	}
	if body.Code == "rate_limited" {
		h.Set("X-RateLimit-Reset", strconv.Itoa(body.RetryAfter)+" seconds") // GetResponse's own form
	}
	switch {
	case status == http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="grconnect"`)
	case body.Code == "insufficient_scope": // RFC 6750, section 3
		h.Set("WWW-Authenticate", `Bearer realm="grconnect", error="insufficient_scope", scope="`+body.Scope+`"`)
	}
	h.Set("Cache-Control", "no-store")
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, apiError{Error: body})
}

// apiErrorFor maps an error to its status and body. connectionID, when the route has
// one, goes into the reconnect hint.
func apiErrorFor(err error, connectionID string, now time.Time) (int, apiErrorBody) {
	var (
		he      *echo.HTTPError
		limited *services.RateLimitedError
		refresh *services.RefreshError
		tooSoon *services.TooSoonError
		tooBig  *http.MaxBytesError
		scope   *ScopeError
		expired *services.APIKeyExpiredError
	)
	fields, isFields := services.AsFieldErrors(err)
	switch {
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && he.Code < 500 {
			msg = m
		}
		if he.Code >= 500 {
			msg = "Something went wrong on our side. It has been logged; please try again."
		}
		return he.Code, apiErrorBody{Code: statusCode(he.Code), Message: msg}
	case isFields:
		return http.StatusBadRequest, apiErrorBody{Code: "invalid_input", Message: fields.Error(), Fields: fields}
	case errors.Is(err, models.ErrBadCursor):
		return http.StatusBadRequest, apiErrorBody{Code: "invalid_cursor", Message: "The cursor is not one this API gave out. Start again without it."}
	case errors.As(err, &scope):
		return http.StatusForbidden, apiErrorBody{Code: "insufficient_scope", Message: scope.Error(), Scope: string(scope.Scope)}
	case errors.As(err, &expired):
		return http.StatusUnauthorized, apiErrorBody{Code: "unauthorized",
			Message: "This API key expired at " + expired.At.UTC().Format(time.RFC3339) + ". Make a new one on the dashboard's API keys page."}
	case errors.Is(err, services.ErrInvalidAPIKey):
		return http.StatusUnauthorized, apiErrorBody{Code: "unauthorized", Message: "Send a valid API key: Authorization: Bearer <key>."}
	case errors.Is(err, models.ErrNotFound):
		return http.StatusNotFound, apiErrorBody{Code: "not_found", Message: "There is no such connection."}
	case errors.Is(err, services.ErrMethodNotAllowed):
		return http.StatusMethodNotAllowed, apiErrorBody{Code: "method_not_allowed", Message: err.Error() + "."}
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, apiErrorBody{Code: "request_entity_too_large",
			Message: "The request body is larger than " + strconv.FormatInt(tooBig.Limit>>20, 10) + " MiB."}
	case errors.Is(err, services.ErrLinkUsed):
		return http.StatusConflict, apiErrorBody{Code: "link_used",
			Message: "This connect session was already used: it connected an account, so there is nothing to revoke."}
	case errors.Is(err, models.ErrDeliveryPending):
		return http.StatusConflict, apiErrorBody{Code: "delivery_pending",
			Message: "This delivery is still being sent; replay it once it is delivered or given up."}
	case errors.Is(err, models.ErrWebhookOff):
		return http.StatusConflict, apiErrorBody{Code: "webhook_off", Message: "The app has no webhook URL: set one first."}
	case errors.Is(err, models.ErrDisconnected):
		return http.StatusConflict, apiErrorBody{Code: "disconnected",
			Message: "This connection is disconnected: its tokens were erased. Create a connect session for the customer to connect again."}
	case errors.Is(err, models.ErrStorageUnavailable):
		return http.StatusServiceUnavailable, apiErrorBody{Code: "storage_unavailable",
			Message: "grconnect's database is unavailable (" + models.StorageProblemOf(err).Describe() + "). Try again shortly.", RetryAfter: 10}
	case errors.As(err, &refresh) && refresh.App != nil:
		app := &appRef{ID: refresh.App.ID, Name: refresh.App.Name, Health: string(refresh.AppHealth)}
		msg := "The app \"" + refresh.App.Name + "\" cannot refresh tokens: " + strings.TrimSuffix(refresh.Message, ".") + "."
		if refresh.Class == services.ClassOperator {
			code := "app_misconfigured"
			if refresh.AppHealth == models.AppCredentialsRejected {
				code = "app_credentials_rejected"
			}
			return http.StatusConflict, apiErrorBody{Code: code, Message: msg, App: app}
		}
		wait := refresh.RetryAfter
		if wait <= 0 {
			wait = defaultRetry
		}
		return http.StatusServiceUnavailable, apiErrorBody{Code: "getresponse_refusing", Message: msg, App: app, RetryAfter: seconds(wait)}
	case errors.Is(err, services.ErrNeedsReconnect):
		body := apiErrorBody{Code: "needs_reconnect", Message: "The customer must approve access again."}
		if errors.As(err, &refresh) && refresh.Message != "" {
			body.Message = strings.TrimSuffix(refresh.Message, ".") + "."
		}
		if connectionID != "" {
			body.Message += " Create a reconnect link with POST /api/v1/connect-sessions {\"connection_id\": \"" + connectionID + "\"} and send the customer its url."
			body.Reconnect = &reconnectHint{Method: http.MethodPost, Path: "/api/v1/connect-sessions", Body: map[string]string{"connection_id": connectionID}}
		}
		return http.StatusConflict, body
	case errors.As(err, &tooSoon):
		return http.StatusTooManyRequests, apiErrorBody{Code: "refresh_too_soon", Message: "Not refreshed: " + tooSoon.Reason + ".", RetryAfter: seconds(tooSoon.RetryAfter)}
	case errors.As(err, &limited):
		code := "rate_limited"
		if limited.Busy {
			code = "too_many_concurrent_requests"
		}
		return http.StatusTooManyRequests, apiErrorBody{Code: code, Message: limited.Error() + ".", RetryAfter: seconds(limited.RetryAfter)}
	case errors.Is(err, services.ErrTransient):
		wait := defaultRetry
		if errors.As(err, &refresh) {
			switch {
			case refresh.RetryAfter > 0:
				wait = refresh.RetryAfter
			case refresh.NextAttemptAt != nil:
				wait = refresh.NextAttemptAt.Sub(now)
			}
		} else {
			wait = time.Second
		}
		// Never err.Error(): a network error names the address and port dialled (the log keeps it).
		return http.StatusServiceUnavailable, apiErrorBody{Code: "getresponse_unavailable", Message: strings.TrimSuffix(services.FailureMessage(err), ".") + ".", RetryAfter: seconds(wait)}
	}
	return http.StatusInternalServerError, apiErrorBody{Code: "internal_error", Message: "Something went wrong on our side. It has been logged; please try again."}
}

// statusCode names a status for the envelope: 404 → "not_found".
func statusCode(status int) string {
	return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
}

// seconds rounds a wait up to whole seconds, at least one.
func seconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// apiMethodNotAllowed answers a request under /api/v1 that matched no route: 405
// with Allow when the path is a route for other methods (GET …/token), else 404.
func apiMethodNotAllowed(e *echo.Echo, c echo.Context) error {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == c.Request().Method {
			continue
		}
		probe := e.NewContext(c.Request(), nil)
		e.Router().Find(m, c.Request().URL.EscapedPath(), probe)
		// The group's own catch-all ("/api/v1/*") is no route; the proxy's ("…/proxy/*") is.
		if p := probe.Path(); p != "" && (!strings.HasSuffix(p, "/*") || strings.HasSuffix(p, "/proxy/*")) {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) == 0 {
		return echo.ErrNotFound
	}
	allow := strings.Join(allowed, ", ")
	c.Response().Header().Set(echo.HeaderAllow, allow)
	return echo.NewHTTPError(http.StatusMethodNotAllowed, "This route does not take "+c.Request().Method+"; it takes "+allow+".")
}
