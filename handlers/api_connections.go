package handlers

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
)

// connectSessionRequest is the body of POST /api/v1/connect-sessions.
type connectSessionRequest struct {
	AppID       string `json:"app_id"`
	CustomerRef string `json:"customer_ref"`
	ReturnURL   string `json:"return_url"`
	// ConnectionID makes a reconnect link, which renews that connection.
	ConnectionID string `json:"connection_id"`
	// TTLSeconds is how long the link works; 0 means 7 days.
	TTLSeconds int64 `json:"ttl_seconds"`
	// AllowTransfer lets the flow move a connection of the same GetResponse
	// account that belongs to another customer.
	AllowTransfer bool `json:"allow_transfer"`
	// MaxDomain is the customer's GetResponse MAX domain (MAX apps only), when known.
	MaxDomain string `json:"max_domain"`
}

// connectSessionJSON is a connect link for one customer.
type connectSessionJSON struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) apiCreateConnectSession(c echo.Context) error {
	ctx := c.Request().Context()
	var req connectSessionRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	in := services.LinkInput{AppID: req.AppID, CustomerRef: req.CustomerRef, ReturnURL: req.ReturnURL,
		TTL: time.Duration(req.TTLSeconds) * time.Second, CreatedBy: apiActor(c),
		AllowTransfer: req.AllowTransfer, MaxDomain: req.MaxDomain}
	if req.TTLSeconds < 0 || req.TTLSeconds > int64(services.MaxLinkTTL/time.Second) {
		return services.FieldErrors{"ttl_seconds": "A link lives between 600 seconds and 90 days."}
	}
	// A key limited to one app sees no other: its app is the default, others do not exist.
	only := keyApp(c)
	if only != "" && in.AppID != "" && in.AppID != only {
		return errNoSuchApp
	}
	if req.ConnectionID != "" {
		conn, err := s.tokens.Get(ctx, req.ConnectionID)
		if err != nil {
			return err
		}
		if only != "" && conn.AppID != only {
			return models.ErrNotFound
		}
		if in.AppID == "" {
			in.AppID = conn.AppID
		} else if in.AppID != conn.AppID {
			return services.FieldErrors{"app_id": "The connection belongs to another app; leave app_id out."}
		}
		in.ConnectionID = conn.ID
	} else if in.AppID == "" && only != "" {
		in.AppID = only
	} else if in.AppID == "" {
		return services.FieldErrors{"app_id": "Give the ID of the app the customer connects to."}
	}
	link, err := s.connect.CreateLink(ctx, in)
	if fe, ok := services.AsFieldErrors(err); ok {
		if msg, ok := fe["ttl"]; ok {
			delete(fe, "ttl")
			fe["ttl_seconds"] = msg
		}
		return fe
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, connectSessionJSON{ID: link.ID, URL: link.URL, ExpiresAt: link.ExpiresAt.UTC()})
}

func (s *Server) apiRevokeConnectSession(c echo.Context) error {
	_, err := s.connect.RevokeLink(c.Request().Context(), c.Param("id"), apiActor(c))
	switch {
	case errors.Is(err, models.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, "There is no such connect session.")
	case err != nil:
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// connectionListJSON is one page of connections.
type connectionListJSON struct {
	Connections []connectionJSON `json:"connections"`
	// NextCursor fetches the next page (?cursor=); null on the last one.
	NextCursor *string `json:"next_cursor"`
}

func (s *Server) apiListConnections(c echo.Context) error {
	f := models.APIConnectionFilter{
		Status: models.Status(c.QueryParam("status")), AppID: c.QueryParam("app_id"), CustomerRef: c.QueryParam("customer_ref"),
		After: c.QueryParam("cursor"), Limit: 50,
	}
	if only := keyApp(c); only != "" {
		if f.AppID != "" && f.AppID != only {
			return errNoSuchApp
		}
		f.AppID = only
	}
	if f.Status != "" && !slices.Contains(models.Statuses, f.Status) {
		return services.FieldErrors{"status": "Use one of active, refresh_failing, needs_reconnect or disconnected."}
	}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return services.FieldErrors{"limit": "Use a whole number from 1 to 500."}
		}
		f.Limit = n
	}
	rows, next, err := s.apiQueries.ListAPIConnections(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := connectionListJSON{Connections: make([]connectionJSON, 0, len(rows))}
	for i := range rows {
		out.Connections = append(out.Connections, toConnectionJSON(&rows[i]))
	}
	if next != "" {
		out.NextCursor = &next
	}
	return c.JSON(http.StatusOK, out)
}

// connectionDetailJSON is one connection with its events URL and callbacks.
type connectionDetailJSON struct {
	connectionJSON
	// EventsURL is where GetResponse posts this account's events (null once
	// disconnected). It is a secret: it is the only credential of those posts.
	EventsURL *string        `json:"events_url"`
	Callbacks *callbacksJSON `json:"callbacks"`
}

// callbacksJSON is where a connection's GetResponse callback registration stands.
type callbacksJSON struct {
	Want          string     `json:"want"`  // register or remove
	State         string     `json:"state"` // pending, done or failed
	Actions       []string   `json:"actions"`
	LastError     string     `json:"last_error"`
	WhoMustAct    *string    `json:"who_must_act"` // customer, operator or wait; null without an error
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

// connectionDetail is the single-connection answer of the API.
func (s *Server) connectionDetail(ctx context.Context, conn *models.Connection) (connectionDetailJSON, error) {
	v := connectionDetailJSON{connectionJSON: toConnectionJSON(conn)}
	u, err := s.events.URL(ctx, conn)
	if err != nil {
		return v, err
	}
	if u != "" {
		v.EventsURL = &u
	}
	cb, err := s.callbacks.Status(ctx, conn.ID)
	switch {
	case errors.Is(err, models.ErrNotFound):
		return v, nil
	case err != nil:
		return v, err
	}
	v.Callbacks = &callbacksJSON{Want: cb.Want, State: cb.State, Actions: []string{}, LastError: cb.LastError, UpdatedAt: cb.UpdatedAt.UTC()}
	if cb.Actions != "" {
		v.Callbacks.Actions = strings.Split(cb.Actions, ",")
	}
	if cb.LastError != "" && cb.Actor != "" {
		actor := cb.Actor
		v.Callbacks.WhoMustAct = &actor
	}
	if cb.State == models.CallbacksPending {
		v.Callbacks.NextAttemptAt = utc(&cb.NextAttemptAt)
	}
	return v, nil
}

func (s *Server) apiGetConnection(c echo.Context) error {
	ctx := c.Request().Context()
	conn, err := s.tokens.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	v, err := s.connectionDetail(ctx, conn)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// apiRotateEventsURL replaces a connection's events URL: the old one answers 404
// from then on. It answers the connection with its new events_url.
func (s *Server) apiRotateEventsURL(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	if _, err := s.events.Rotate(ctx, id, apiActor(c)); err != nil {
		return err
	}
	conn, err := s.tokens.Get(ctx, id)
	if err != nil {
		return err
	}
	v, err := s.connectionDetail(ctx, conn)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// tokenJSON is the answer of the token route: the access token only, never the
// refresh token.
type tokenJSON struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func (s *Server) apiToken(c echo.Context) error {
	g, err := s.apiTokens.AccessToken(c.Request().Context(), c.Param("id"), apiActor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tokenJSON{AccessToken: g.Token, TokenType: "Bearer", ExpiresAt: g.ExpiresAt.UTC()})
}

func (s *Server) apiRefresh(c echo.Context) error {
	conn, err := s.tokens.Refresh(c.Request().Context(), c.Param("id"), apiActor(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toConnectionJSON(conn))
}

func (s *Server) apiDisconnect(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	if err := s.tokens.Disconnect(ctx, id, apiActor(c)); err != nil {
		return err
	}
	conn, err := s.tokens.Get(ctx, id)
	if err != nil {
		return err
	}
	s.log.Info("connection disconnected", "connection", id, "by", apiActor(c))
	return c.JSON(http.StatusOK, toConnectionJSON(conn))
}
