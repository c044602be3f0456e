package handlers

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

func (s *Server) listAPIKeys(c echo.Context) error {
	return s.renderAPIKeys(c, http.StatusOK, apiKeyForm{Expires: "never"}, nil)
}

// apiKeyForm is the create form's input.
type apiKeyForm struct {
	Name, AppID, Expires string
	Scopes               []string
}

// apiKeyLifetime is one expiry the create form offers.
type apiKeyLifetime struct {
	value, label string
	d            time.Duration
}

// apiKeyLifetimes are the expiries the create form offers.
var apiKeyLifetimes = []apiKeyLifetime{
	{"never", "Never: until revoked", 0},
	{"7d", "In 7 days", 7 * 24 * time.Hour},
	{"30d", "In 30 days", 30 * 24 * time.Hour},
	{"90d", "In 90 days", 90 * 24 * time.Hour},
	{"365d", "In a year", 365 * 24 * time.Hour},
}

// rollOverlaps are how long a rolled key's old secret may keep working.
var rollOverlaps = []struct {
	value, label string
	d            time.Duration
}{
	{"0", "Not at all: it stops now", 0},
	{"1h", "1 hour", time.Hour},
	{"24h", "24 hours", services.DefaultRollOverlap},
	{"7d", "7 days", 7 * 24 * time.Hour},
	{"30d", "30 days", services.MaxRollOverlap},
}

func (s *Server) renderAPIKeys(c echo.Context, status int, form apiKeyForm, errs map[string]string) error {
	ctx := c.Request().Context()
	keys, err := s.apiKeys.List(ctx)
	if err != nil {
		return err
	}
	apps, err := s.apps.List(ctx)
	if err != nil {
		return err
	}
	names := appNames(apps)
	v := views.APIKeysView{Name: form.Name, AppID: form.AppID, Expires: form.Expires, Errors: errs, APIBase: s.cfg.BaseURL + "/api/v1"}
	for _, sc := range models.APIScopes {
		v.Scopes = append(v.Scopes, views.ScopeOption{Value: string(sc), Grants: sc.Grants(), Checked: slices.Contains(form.Scopes, string(sc))})
	}
	v.Apps = append(v.Apps, views.Option{Value: "", Label: "Every app"})
	for _, a := range apps {
		v.Apps = append(v.Apps, views.Option{Value: a.ID, Label: "Only " + a.Name})
	}
	for _, l := range apiKeyLifetimes {
		v.Lifetimes = append(v.Lifetimes, views.Option{Value: l.value, Label: l.label})
	}
	k := s.clock(c)
	for _, key := range keys {
		v.Keys = append(v.Keys, apiKeyRow(key, k, names))
	}
	return render(c, status, views.APIKeysPage(s.page(c, "API keys", "api-keys"), v))
}

// appNames maps live apps' IDs to their names.
func appNames(apps []models.AppSummary) map[string]string {
	names := make(map[string]string, len(apps))
	for _, a := range apps {
		names[a.ID] = a.Name
	}
	return names
}

func apiKeyRow(key models.APIKey, k clock, appNames map[string]string) views.APIKeyRow {
	row := views.APIKeyRow{ID: key.ID, Name: key.Name, Prefix: key.Prefix, CreatedBy: orNone(key.CreatedBy), Created: k.view(key.CreatedAt),
		AllScopes: key.AllScopes(), AppID: key.AppID, LastUsedIP: key.LastUsedIP}
	for _, sc := range key.ScopeList() {
		row.Scopes = append(row.Scopes, string(sc))
	}
	if key.AppID != "" {
		row.AppName = appNames[key.AppID]
		if row.AppName == "" {
			row.AppName = "a deleted app (the key reaches nothing)"
		}
	}
	if key.LastUsedAt != nil {
		row.LastUsed = k.view(*key.LastUsedAt)
	}
	if key.ExpiresAt != nil {
		row.Expires = k.view(*key.ExpiresAt)
		row.Expired = key.Expired(k.now)
	}
	if key.PreviousWorks(k.now) {
		row.PreviousUntil = k.view(*key.PreviousUntil)
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
	if err := c.Request().ParseForm(); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	form := apiKeyForm{Name: c.FormValue("name"), AppID: c.FormValue("app_id"), Expires: c.FormValue("expires"), Scopes: c.Request().PostForm["scopes"]}
	if r, err := s.reauthenticate(c); err != nil {
		return err
	} else if !r.confirmed {
		return s.renderAPIKeys(c, r.refuse(c), form, nil)
	}
	in := services.APIKeyInput{Name: form.Name, Scopes: form.Scopes, AppID: form.AppID, CreatedBy: currentOperator(c).Email}
	if form.Expires == "" {
		form.Expires = "never"
	}
	i := slices.IndexFunc(apiKeyLifetimes, func(l apiKeyLifetime) bool { return l.value == form.Expires })
	if i < 0 {
		return s.renderAPIKeys(c, http.StatusUnprocessableEntity, form, services.FieldErrors{"expires": "Choose when the key stops working."})
	}
	in.ExpiresIn = apiKeyLifetimes[i].d
	key, plain, err := s.apiKeys.Create(c.Request().Context(), in)
	if fe, ok := services.AsFieldErrors(err); ok {
		return s.renderAPIKeys(c, http.StatusUnprocessableEntity, form, fe)
	}
	if err != nil {
		return err
	}
	s.log.Info("API key created", "key", key.Prefix, "by", currentOperator(c).ID)
	return s.renderNewKey(c, "API key created", key, plain, "")
}

// renderNewKey shows a key's secret, the only time it is ever shown.
func (s *Server) renderNewKey(c echo.Context, title string, key *models.APIKey, plain, rolled string) error {
	apps, err := s.apps.List(c.Request().Context())
	if err != nil {
		return err
	}
	path := "/connections"
	if !key.Allows(models.ScopeConnectionsRead) && key.Allows(models.ScopeAuditRead) {
		path = "/audit"
	}
	v := views.NewAPIKeyView{Row: apiKeyRow(*key, s.clock(c), appNames(apps)), Key: plain, Rolled: rolled,
		Example: "curl -H 'Authorization: Bearer " + plain + "' " + s.cfg.BaseURL + "/api/v1" + path}
	return render(c, http.StatusOK, views.NewAPIKeyPage(s.page(c, title, "api-keys"), v))
}

// confirmRollAPIKey asks how long the key's current secret should keep working.
func (s *Server) confirmRollAPIKey(c echo.Context) error {
	key, err := s.apiKeys.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if !key.Live(s.clock(c).now) {
		return s.redirectWithFlash(c, "/api-keys", "error", "Only a live key can be rolled: that one is revoked or expired. Make a new key instead.")
	}
	return s.renderRoll(c, http.StatusOK, key, "24h", "")
}

func (s *Server) renderRoll(c echo.Context, status int, key *models.APIKey, overlap, problem string) error {
	apps, err := s.apps.List(c.Request().Context())
	if err != nil {
		return err
	}
	v := views.RollView{Row: apiKeyRow(*key, s.clock(c), appNames(apps)), Overlap: overlap, Error: problem}
	for _, o := range rollOverlaps {
		v.Overlaps = append(v.Overlaps, views.Option{Value: o.value, Label: o.label})
	}
	return render(c, status, views.APIKeyRollPage(s.page(c, "Roll API key", "api-keys"), v))
}

// rollAPIKey gives a key a new secret, shown once in this answer; the old one
// keeps working for the overlap chosen.
func (s *Server) rollAPIKey(c echo.Context) error {
	ctx := c.Request().Context()
	key, err := s.apiKeys.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	overlap := c.FormValue("overlap")
	if r, err := s.reauthenticate(c); err != nil {
		return err
	} else if !r.confirmed {
		return s.renderRoll(c, r.refuse(c), key, overlap, "")
	}
	d, known := time.Duration(0), false
	for _, o := range rollOverlaps {
		if o.value == overlap {
			d, known = o.d, true
		}
	}
	if !known {
		return s.renderRoll(c, http.StatusUnprocessableEntity, key, "24h", "Choose how long the old secret keeps working.")
	}
	rolled, plain, err := s.apiKeys.Roll(ctx, key.ID, d)
	if errors.Is(err, models.ErrNotFound) {
		return s.redirectWithFlash(c, "/api-keys", "error", "Only a live key can be rolled: that one is revoked or expired. Make a new key instead.")
	}
	if err != nil {
		return err
	}
	s.log.Info("API key rolled", "key", key.Prefix, "by", currentOperator(c).ID, "overlap", d)
	note := "The old secret stopped working."
	if d > 0 {
		note = "The old secret keeps working until " + s.clock(c).text(*rolled.PreviousUntil) + ": move your backends to the new one before then."
	}
	return s.renderNewKey(c, "API key rolled", rolled, plain, note)
}

func (s *Server) confirmRevokeAPIKey(c echo.Context) error {
	key, err := s.apiKeys.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if key.Revoked() {
		return s.redirectWithFlash(c, "/api-keys", "error", "That key is already revoked.")
	}
	return render(c, http.StatusOK, views.APIKeyRevokePage(s.page(c, "Revoke API key", "api-keys"), apiKeyRow(*key, s.clock(c), nil)))
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
