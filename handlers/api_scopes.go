package handlers

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
)

// anyScope marks the one API route any valid key may call: the OpenAPI document,
// which describes the API and holds no data.
const anyScope models.APIScope = ""

// apiRoutes registers the JSON API's routes, each with the one scope it needs,
// which requireScope checks for every request. A route added to the group without
// it is refused to every key (fail closed), and the router test catches it.
type apiRoutes struct {
	g      *echo.Group
	prefix string
	scopes map[string]models.APIScope // "METHOD /api/v1/route" → scope
}

func (r apiRoutes) add(scope models.APIScope, method, path string, h echo.HandlerFunc) {
	r.match(scope, []string{method}, path, h)
}

func (r apiRoutes) match(scope models.APIScope, methods []string, path string, h echo.HandlerFunc) {
	r.g.Match(methods, path, h)
	for _, m := range methods {
		r.scopes[m+" "+r.prefix+path] = scope
	}
}

// apiCatchAll is the API group's own route for unknown paths (404 or 405).
const apiCatchAll = "/api/v1/*"

// ScopeError is a request the API key's scopes do not cover: 403 insufficient_scope.
type ScopeError struct {
	Scope models.APIScope
	Route string // "POST /connections/{id}/token"
}

func (e *ScopeError) Error() string {
	return "This API key lacks the scope " + string(e.Scope) + ", which " + e.Route +
		" needs. Make a key with that scope (or roll one) on the dashboard's API keys page."
}

// requireScope lets a request through only when its API key has the scope its
// route needs, and, for a key limited to one app, only for that app's connections
// and connect sessions (others answer 404, as if they did not exist).
func (s *Server) requireScope(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		route := c.Path()
		if route == apiCatchAll {
			return next(c)
		}
		scope, ok := s.apiScopes[c.Request().Method+" "+route]
		if !ok {
			return fmt.Errorf("API route %s %s has no scope: it is refused to every key", c.Request().Method, route)
		}
		key := currentAPIKey(c)
		if scope != anyScope && !key.Allows(scope) {
			return &ScopeError{Scope: scope, Route: c.Request().Method + " " + openAPIPath(route)}
		}
		if key.AppID == "" || !slices.Contains(c.ParamNames(), "id") {
			return next(c)
		}
		owner := appOwnerOf(route)
		if owner == nil {
			return fmt.Errorf("API route %s names a resource whose app is unknown: refused to keys limited to one app", route)
		}
		app, err := owner(s.apiQueries, c.Request().Context(), c.Param("id"))
		if err != nil {
			return err
		}
		if app != key.AppID {
			return models.ErrNotFound
		}
		return next(c)
	}
}

// appOwners find the app of the resource an API route names with :id, by the
// route's prefix, for keys limited to one app.
var appOwners = []struct {
	prefix string
	app    func(q apiConnectionQueries, ctx context.Context, id string) (string, error)
}{
	{"/api/v1/connections/:id", apiConnectionQueries.ConnectionAppID},
	{"/api/v1/connect-sessions/:id", apiConnectionQueries.ConnectLinkAppID},
	{"/api/v1/webhook-deliveries/:id", apiConnectionQueries.DeliveryAppID},
}

func appOwnerOf(route string) func(apiConnectionQueries, context.Context, string) (string, error) {
	for _, o := range appOwners {
		if route == o.prefix || strings.HasPrefix(route, o.prefix+"/") {
			return o.app
		}
	}
	return nil
}

// openAPIPath writes a route as the OpenAPI document does: /connections/{id}/token.
func openAPIPath(route string) string {
	route = strings.TrimPrefix(route, "/api/v1")
	route = strings.ReplaceAll(route, ":id", "{id}")
	return strings.ReplaceAll(route, "*", "{path}")
}

// currentAPIKey is the request's API key (set by requireAPIKey).
func currentAPIKey(c echo.Context) *models.APIKey {
	key, _ := c.Get(ctxAPIKey).(*models.APIKey)
	return key
}

// keyApp is the app the request's API key is limited to ("" for every app).
func keyApp(c echo.Context) string {
	if key := currentAPIKey(c); key != nil {
		return key.AppID
	}
	return ""
}

// errNoSuchApp answers a request about an app the API key cannot see.
var errNoSuchApp = echo.NewHTTPError(http.StatusNotFound, "There is no such app.")
