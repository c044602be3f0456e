package handlers

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

func (s *Server) listAPIKeys(c echo.Context) error {
	return s.renderAPIKeys(c, http.StatusOK, "", nil)
}

func (s *Server) renderAPIKeys(c echo.Context, status int, name string, errs map[string]string) error {
	keys, err := s.apiKeys.List(c.Request().Context())
	if err != nil {
		return err
	}
	v := views.APIKeysView{Name: name, Errors: errs, APIBase: s.cfg.BaseURL + "/api/v1"}
	k := s.clock(c)
	for _, key := range keys {
		v.Keys = append(v.Keys, apiKeyRow(key, k))
	}
	return render(c, status, views.APIKeysPage(s.page(c, "API keys", "api-keys"), v))
}

func apiKeyRow(key models.APIKey, k clock) views.APIKeyRow {
	row := views.APIKeyRow{ID: key.ID, Name: key.Name, Prefix: key.Prefix, CreatedBy: orNone(key.CreatedBy), Created: k.view(key.CreatedAt)}
	if key.LastUsedAt != nil {
		row.LastUsed = k.view(*key.LastUsedAt)
	}
	if key.RevokedAt != nil {
		row.Revoked, row.RevokedText = true, "Revoked "+k.text(*key.RevokedAt)+" by "+orNone(key.RevokedBy)
	}
	return row
}

// actorNames returns how to name an event's actor for people: an API key
// ("api:<prefix>", as the timeline stores it) by its name.
func (s *Server) actorNames(ctx context.Context) func(string) string {
	// The keys are read only if an API key appears among the actors.
	names := sync.OnceValues(func() (map[string]string, error) {
		keys, err := s.apiKeys.List(ctx)
		names := make(map[string]string, len(keys))
		for _, key := range keys {
			names[key.Prefix] = key.Name
		}
		return names, err
	})
	var failed error
	return func(actor string) string {
		prefix, ok := strings.CutPrefix(actor, "api:")
		if !ok {
			return actor
		}
		m, err := names()
		if err != nil && failed == nil {
			failed = err
			s.log.Warn("could not read the API keys' names", "error", err)
		}
		if name, ok := m[prefix]; ok {
			return "API key “" + name + "”"
		}
		return "API key " + prefix + "_…"
	}
}

func orNone(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// createAPIKey shows the new key in its own answer rather than through a flash and
// a redirect, so the key is never stored anywhere, not even in the session cookie.
func (s *Server) createAPIKey(c echo.Context) error {
	name := c.FormValue("name")
	if r, err := s.reauthenticate(c); err != nil {
		return err
	} else if !r.confirmed {
		return s.renderAPIKeys(c, r.refuse(c), name, nil)
	}
	key, plain, err := s.apiKeys.Create(c.Request().Context(), name, currentOperator(c).Email)
	if fe, ok := services.AsFieldErrors(err); ok {
		return s.renderAPIKeys(c, http.StatusUnprocessableEntity, name, fe)
	}
	if err != nil {
		return err
	}
	s.log.Info("API key created", "key", key.Prefix, "by", currentOperator(c).ID)
	v := views.NewAPIKeyView{Row: apiKeyRow(*key, s.clock(c)), Key: plain,
		Example: "curl -H 'Authorization: Bearer " + plain + "' " + s.cfg.BaseURL + "/api/v1/connections"}
	return render(c, http.StatusOK, views.NewAPIKeyPage(s.page(c, "API key created", "api-keys"), v))
}

func (s *Server) confirmRevokeAPIKey(c echo.Context) error {
	key, err := s.apiKeys.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if key.Revoked() {
		return s.redirectWithFlash(c, "/api-keys", "error", "That key is already revoked.")
	}
	return render(c, http.StatusOK, views.APIKeyRevokePage(s.page(c, "Revoke API key", "api-keys"), apiKeyRow(*key, s.clock(c))))
}

func (s *Server) revokeAPIKey(c echo.Context) error {
	ctx := c.Request().Context()
	key, err := s.apiKeys.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	err = s.apiKeys.Revoke(ctx, key.ID, currentOperator(c).Email)
	if errors.Is(err, models.ErrNotFound) {
		return s.redirectWithFlash(c, "/api-keys", "error", "That key is already revoked.")
	}
	if err != nil {
		return err
	}
	s.log.Info("API key revoked", "key", key.Prefix, "by", currentOperator(c).ID)
	return s.redirectWithFlash(c, "/api-keys", "success", "The key “"+key.Name+"” was revoked; requests with it are refused.")
}

// curlExamples are the connection page's ready-to-copy API calls. The key stays a
// shell variable: the page never holds a real one.
func (s *Server) curlExamples(connectionID string) (token, proxy string) {
	base := s.cfg.BaseURL + "/api/v1/connections/" + connectionID
	auth := `-H "Authorization: Bearer $GRCONNECT_API_KEY"`
	return "curl -X POST " + auth + " " + base + "/token",
		"curl " + auth + " " + base + "/proxy/from-fields"
}
