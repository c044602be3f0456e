package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
)

// apiKeyService is what the API key pages and the API's authentication need.
type apiKeyService interface {
	Create(ctx context.Context, in services.APIKeyInput) (*models.APIKey, string, error)
	Roll(ctx context.Context, id string, overlap time.Duration) (*models.APIKey, string, error)
	List(ctx context.Context) ([]models.APIKey, error)
	Get(ctx context.Context, id string) (*models.APIKey, error)
	Revoke(ctx context.Context, id, actor string) error
	Verify(ctx context.Context, presented, ip string) (*models.APIKey, error)
}

// apiTokenService hands out access tokens to the API.
type apiTokenService interface {
	AccessToken(ctx context.Context, id, actor string) (*services.Grant, error)
}

// proxyService relays GetResponse calls.
type proxyService interface {
	Do(ctx context.Context, in services.ProxyRequest) (*services.ProxyResponse, error)
}

// apiConnectionQueries are the API's list query, and the reads that keep a key
// limited to one app to that app's connections and connect sessions.
type apiConnectionQueries interface {
	ListAPIConnections(ctx context.Context, f models.APIConnectionFilter) ([]models.Connection, string, error)
	ConnectionAppID(ctx context.Context, id string) (string, error)
	ConnectLinkAppID(ctx context.Context, id string) (string, error)
	DeliveryAppID(ctx context.Context, id string) (string, error)
}

// ctxAPIKey is the echo.Context key of the request's *models.APIKey.
const ctxAPIKey = "grconnect.apikey"

// requireAPIKey lets through only requests with a live API key in
// "Authorization: Bearer <key>"; others get 401. The key itself is never logged.
func (s *Server) requireAPIKey(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		scheme, presented, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		presented = strings.TrimSpace(presented)
		if !strings.EqualFold(scheme, "Bearer") || presented == "" {
			return services.ErrInvalidAPIKey
		}
		key, err := s.apiKeys.Verify(c.Request().Context(), presented, c.RealIP())
		if err != nil {
			return err
		}
		c.Set(ctxAPIKey, key)
		actAs(c, "api:"+key.Name)
		return next(c)
	}
}

// apiActor names the API key of the request in connection timelines.
func apiActor(c echo.Context) string {
	if key, _ := c.Get(ctxAPIKey).(*models.APIKey); key != nil {
		return "api:" + key.Prefix
	}
	return "api"
}

// bindJSON decodes a JSON request body into v, refusing unknown fields.
func bindJSON(c echo.Context, v any) error {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" && !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "Send the body as application/json.")
	}
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return err
	case errors.Is(err, io.EOF):
		return echo.NewHTTPError(http.StatusBadRequest, "The request needs a JSON body.")
	case err != nil:
		return echo.NewHTTPError(http.StatusBadRequest, "The body is not the JSON this route takes: "+err.Error()+".")
	}
	return nil
}

// connectionJSON is a connection as the API shows it: never a token.
type connectionJSON struct {
	ID             string      `json:"id"`
	AppID          string      `json:"app_id"`
	CustomerRef    string      `json:"customer_ref"`
	MaxDomain      string      `json:"max_domain"`
	Status         string      `json:"status"`
	Account        accountJSON `json:"account"`
	ExpiresAt      *time.Time  `json:"expires_at"`
	LastRefreshAt  *time.Time  `json:"last_refresh_at"`
	LastError      string      `json:"last_error"`
	FailureCount   int         `json:"failure_count"`
	NextAttemptAt  *time.Time  `json:"next_attempt_at"`
	ConnectedAt    time.Time   `json:"connected_at"`
	DisconnectedAt *time.Time  `json:"disconnected_at"`
}

// accountJSON is the GetResponse account behind a connection.
type accountJSON struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	Name        string `json:"name"`
	CompanyName string `json:"company_name"`
}

func toConnectionJSON(c *models.Connection) connectionJSON {
	v := connectionJSON{
		ID: c.ID, AppID: c.AppID, CustomerRef: c.CustomerRef, MaxDomain: c.MaxDomain, Status: string(c.Status),
		Account:       accountJSON{ID: c.AccountID, Email: c.AccountEmail, Name: c.AccountName, CompanyName: c.CompanyName},
		ExpiresAt:     utc(c.ExpiresAt),
		LastRefreshAt: utc(c.LastRefreshAt), LastError: c.LastError, FailureCount: c.FailureCount,
		NextAttemptAt: utc(c.NextAttemptAt), ConnectedAt: c.ConnectedAt.UTC(), DisconnectedAt: utc(c.DisconnectedAt),
	}
	if c.Status == models.StatusDisconnected {
		v.ExpiresAt = nil // the tokens are gone
	}
	return v
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
