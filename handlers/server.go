// Package handlers translates HTTP to grconnect's services and back: the route
// table, sessions, CSRF, the central error handler and one file per area.
package handlers

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	gsessions "github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/metrics"
	"github.com/grconnect/grconnect/services/infra/secrets"
	"github.com/grconnect/grconnect/services/tokens"
	"github.com/grconnect/grconnect/static"
)

// Deps is everything the handlers need, built by server.New.
type Deps struct {
	Config    *config.Config
	Store     *models.Store
	Box       *secrets.Box
	Operators *services.Operators
	Sessions  *services.Sessions
	Apps      *services.Apps
	Connect   *services.Connect
	// Connections reads connections and disconnects them; Tokens is the engine.
	Connections *services.Connections
	Tokens      *tokens.Tokens
	Webhooks    *services.Webhooks
	// Events receives GetResponse's events at each connection's events URL;
	// Callbacks registers those URLs at GetResponse.
	Events    *services.Events
	Callbacks *services.Callbacks
	Bulk      *tokens.Bulk
	Alerts    *services.Alerts
	// APIKeys and Proxy serve the JSON API under /api/v1 (with Tokens).
	APIKeys *services.APIKeys
	Proxy   *tokens.Proxy
	Assets  *static.Assets
	Metrics *metrics.Registry
	Log     *slog.Logger
	// DemoGetResponse, when set, is the simulated GetResponse served under /demo-getresponse.
	DemoGetResponse http.Handler
	// Audit reads the audit log (the audit page and GET /api/v1/audit); Backups is
	// the scheduled backups (the backups page).
	Audit   *services.Audit
	Backups *services.Backups
	// Invitations adds operators through single-use links.
	Invitations *services.Invitations
}

// Server holds the handlers' dependencies.
type Server struct {
	cfg         *config.Config
	store       *models.Store // readiness, and the read-only list queries
	operators   *services.Operators
	sessions    *services.Sessions
	apps        *services.Apps
	connect     *services.Connect
	connections *services.Connections
	tokens      *tokens.Tokens
	bulk        *tokens.Bulk
	proxy       *tokens.Proxy
	webhooks    *services.Webhooks
	events      *services.Events
	callbacks   *services.Callbacks
	alerts      *services.Alerts
	apiKeys     *services.APIKeys
	audit       *services.Audit
	backups     *services.Backups
	invitations *services.Invitations
	zones       zoneCache
	expiry      expiryCache
	assets      *static.Assets
	log         *slog.Logger
	cookies     cookieNames
	metrics     *metrics.Registry
	demo        bool
	untrusted   *untrustedForwarders
	// apiScopes is the scope each API route needs ("METHOD /api/v1/route").
	apiScopes map[string]models.APIScope
	// sessionStore is gorilla's Store of operator sessions (rows in the database);
	// stateCookies holds the OAuth state cookie.
	sessionStore *dbSessionStore
	stateCookies *gsessions.CookieStore
}

// New builds the Echo router with every route and middleware.
func New(d Deps) *echo.Echo {
	s := &Server{
		cfg:         d.Config,
		store:       d.Store,
		operators:   d.Operators,
		sessions:    d.Sessions,
		apps:        d.Apps,
		connect:     d.Connect,
		connections: d.Connections,
		tokens:      d.Tokens,
		bulk:        d.Bulk,
		proxy:       d.Proxy,
		webhooks:    d.Webhooks,
		events:      d.Events,
		callbacks:   d.Callbacks,
		alerts:      d.Alerts,
		apiKeys:     d.APIKeys,
		audit:       d.Audit,
		backups:     d.Backups,
		invitations: d.Invitations,
		assets:      d.Assets,
		log:         d.Log,
		cookies:     newCookieNames(d.Config.IsHTTPS()),
		metrics:     d.Metrics,
		demo:        d.DemoGetResponse != nil,
		untrusted:   &untrustedForwarders{log: d.Log, seen: map[string]bool{}},
		apiScopes:   map[string]models.APIScope{},
	}
	s.sessionStore = newSessionStore(d.Sessions, d.Box, s.cookies)
	s.stateCookies = newStateCookieStore(d.Box, s.cookies, oauthStateAge)
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = s.ipExtractor(d.Config.TrustedProxies)
	e.HTTPErrorHandler = s.handleError

	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableErrorHandler: true}))
	e.Use(s.requestID)
	e.Use(s.requestLog())
	e.Use(securityHeaders(d.Config.IsHTTPS()))
	// The proxy streams bodies up to tokens.ProxyMaxBody and the events URL takes
	// up to services.EventsMaxBody: each enforces its own limit.
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit: "1M", Skipper: func(c echo.Context) bool { return c.Path() == proxyRoute || c.Path() == eventsRoute },
	}))
	e.Use(s.cleanInput) // before the session's lookup and the CSRF check read the request
	e.Use(s.loadSession)
	e.Use(s.csrf)

	// Probes and assets.
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metricsHandler)
	e.GET(static.ConnectScriptPath, echo.WrapHandler(d.Assets.Stable("connect.js")))
	e.HEAD(static.ConnectScriptPath, echo.WrapHandler(d.Assets.Stable("connect.js")))
	e.GET("/static/*", echo.WrapHandler(d.Assets))
	e.HEAD("/static/*", echo.WrapHandler(d.Assets))
	e.GET("/favicon.ico", func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, d.Assets.URL("favicon.svg"))
	})
	if d.DemoGetResponse != nil {
		demo := echo.WrapHandler(d.DemoGetResponse)
		// The simulated consent page runs inside the connect popup too.
		e.Any("/demo-getresponse/*", func(c echo.Context) error {
			c.Response().Header().Set("Cross-Origin-Opener-Policy", "unsafe-none")
			return demo(c)
		})
	}

	// The customer's side: public connect pages and the OAuth callback.
	e.GET("/connect/:token", s.connectPage)
	e.POST("/connect/:token", s.startConnect)
	e.GET("/oauth/callback", s.oauthCallback)

	// GetResponse's side: each connection's events URL (webhooks POST, callbacks
	// GET or POST). The token in the path is the only credential.
	e.POST(eventsRoute, s.receiveEvent)
	e.GET(eventsRoute, s.receiveEvent)

	// Signing in.
	e.GET("/setup", s.setupForm)
	e.POST("/setup", s.setup)
	e.GET("/login", s.loginForm)
	e.POST("/login", s.login)
	e.POST("/logout", s.logout)
	e.GET("/reset-password/:token", s.resetForm)
	e.POST("/reset-password/:token", s.resetPassword)
	e.GET("/invite/:token", s.invitePage)
	e.POST("/invite/:token", s.acceptInvitation)

	// The operator's dashboard: every route needs a signed-in operator.
	// Viewers see every page and change nothing but their own account (roles.go).
	op := e.Group("", s.requireOperator, s.requireAdminToChange)
	op.GET("/", s.overview)
	op.GET("/apps", s.listApps)
	op.GET("/apps/new", s.newApp)
	op.POST("/apps", s.createApp)
	op.GET("/apps/:id", s.showApp)
	op.GET("/apps/:id/edit", s.editApp)
	op.POST("/apps/:id/edit", s.updateApp)
	op.GET("/apps/:id/delete", s.confirmDeleteApp)
	op.POST("/apps/:id/delete", s.deleteApp)
	op.POST("/apps/:id/links", s.createLink)
	op.POST("/apps/:id/webhook", s.configureWebhook)
	op.GET("/apps/:id/webhook-deliveries/:delivery", s.showDelivery)
	op.POST("/apps/:id/webhook-deliveries/:delivery/replay", s.replayDelivery)
	op.POST("/apps/:id/callbacks", s.setCallbacks)
	op.POST("/apps/:id/check", s.checkApp)
	op.GET("/apps/:id/links/:link", s.showLink)
	op.POST("/apps/:id/links/:link/revoke", s.revokeLink)
	op.POST("/apps/:id/links/:link/renew", s.renewLink)
	op.GET("/connections", s.listConnections)
	op.POST("/connections/bulk-refresh", s.startBulkRefresh)
	op.GET("/connections/bulk/:id", s.showBulk)
	op.GET("/connections/:id", s.showConnection)
	op.POST("/connections/:id/refresh", s.refreshConnection)
	op.POST("/connections/:id/test", s.testConnection)
	op.POST("/connections/:id/reconnect", s.reconnectConnection)
	op.POST("/connections/:id/parent-login", s.setParentLogin)
	op.POST("/connections/:id/events-url/rotate", s.rotateEventsURL)
	op.GET("/connections/:id/disconnect", s.confirmDisconnect)
	op.POST("/connections/:id/disconnect", s.disconnectConnection)
	op.GET("/operators", s.listOperators)
	op.POST("/operators", s.createOperator) // an invitation
	op.POST("/operators/invitations/:id/revoke", s.revokeInvitation)
	op.GET("/operators/:id/role", s.roleForm)
	op.POST("/operators/:id/role", s.setRole)
	op.GET("/operators/:id/remove", s.confirmRemoveOperator)
	op.POST("/operators/:id/remove", s.removeOperator)
	op.POST("/account/alerts", s.setAlerts)
	op.GET("/operators/:id/reset-password", s.confirmResetOperator)
	op.POST("/operators/:id/reset-password", s.resetOperator)
	op.GET("/account", s.showAccount)
	op.POST("/account/time-zone", s.setTimeZone)
	op.GET("/account/password", s.passwordForm)
	op.POST("/account/password", s.changePassword)
	op.GET("/account/sessions", s.listSessions)
	op.POST("/account/sessions/end-all", s.endAllSessions)
	op.POST("/account/sessions/:id/end", s.endSession)
	op.GET("/api-keys", s.listAPIKeys)
	op.POST("/api-keys", s.createAPIKey)
	op.GET("/api-keys/:id/revoke", s.confirmRevokeAPIKey)
	op.POST("/api-keys/:id/revoke", s.revokeAPIKey)
	op.GET("/api-keys/:id/roll", s.confirmRollAPIKey)
	op.POST("/api-keys/:id/roll", s.rollAPIKey)
	op.GET("/api-keys/openapi.json", s.downloadOpenAPI)
	op.GET("/audit", s.listAudit)
	op.GET("/audit/export", s.exportAudit)
	op.GET("/backups", s.showBackups)
	op.POST("/backups", s.runBackup)

	// The JSON API for the operator's backend: every route needs an API key, and
	// unknown paths under it answer a JSON 404 (after the key check).
	// Each route names the one scope a key needs for it (requireScope).
	apiGroup := e.Group("/api/v1", s.requireAPIKey, s.requireScope)
	api := apiRoutes{g: apiGroup, prefix: "/api/v1", scopes: s.apiScopes}
	api.add(anyScope, http.MethodGet, "/openapi.json", s.openAPI)
	api.add(models.ScopeConnectSessionsWrite, http.MethodPost, "/connect-sessions", s.apiCreateConnectSession)
	api.add(models.ScopeConnectSessionsWrite, http.MethodDelete, "/connect-sessions/:id", s.apiRevokeConnectSession)
	api.add(models.ScopeConnectionsRead, http.MethodGet, "/connections", s.apiListConnections)
	api.add(models.ScopeConnectionsRead, http.MethodGet, "/connections/:id", s.apiGetConnection)
	api.add(models.ScopeConnectionsWrite, http.MethodDelete, "/connections/:id", s.apiDisconnect)
	api.add(models.ScopeTokensRead, http.MethodPost, "/connections/:id/token", s.apiToken)
	api.add(models.ScopeConnectionsWrite, http.MethodPost, "/connections/:id/refresh", s.apiRefresh)
	api.add(models.ScopeConnectionsWrite, http.MethodPost, "/connections/:id/events-url/rotate", s.apiRotateEventsURL)
	api.add(models.ScopeWebhooksWrite, http.MethodGet, "/webhook-deliveries", s.apiListDeliveries)
	api.add(models.ScopeWebhooksWrite, http.MethodGet, "/webhook-deliveries/:id", s.apiGetDelivery)
	api.add(models.ScopeWebhooksWrite, http.MethodPost, "/webhook-deliveries/:id/replay", s.apiReplayDelivery)
	api.match(models.ScopeProxy, proxyMethods, strings.TrimPrefix(proxyRoute, "/api/v1"), s.apiProxy)
	api.add(models.ScopeAuditRead, http.MethodGet, "/audit", s.apiListAudit)
	// A known path with another method answers 405 with Allow (after the key check).
	apiGroup.RouteNotFound("/*", func(c echo.Context) error { return apiMethodNotAllowed(e, c) })
	e.RouteNotFound("/api/*", func(echo.Context) error { return echo.ErrNotFound })
	return e
}

// skipCSRF exempts what is not a browser form of ours: probes, assets, the JSON API
// (bearer keys, no cookies), the events URLs (GetResponse posts there; the token
// in the path is the credential) and the simulated GetResponse's own consent form.
func skipCSRF(c echo.Context) bool {
	p := c.Request().URL.Path
	for _, prefix := range []string{"/api/", "/static/", "/demo-getresponse/", "/events/", "/healthz", "/readyz", "/metrics"} {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// contentSecurityPolicy allows nothing inline, no framing, and forms that post only
// to grconnect (the connect page widens form-action to its app's authorize origin).
// Referrer-Policy: no-referrer (below) keeps URLs that hold a token out of Referer.
var contentSecurityPolicy = csp("'self' data:", "'self'")

// csp is grconnect's Content-Security-Policy with the given image sources and
// form targets (customer pages add their app's logo and authorize origins).
func csp(img, form string) string {
	return "default-src 'self'; img-src " + img + "; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action " + form
}

// securityHeaders sets the headers every response carries; on an https base URL
// also Strict-Transport-Security.
func securityHeaders(https bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			h.Set("Permissions-Policy", "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=()")
			if https {
				h.Set("Strict-Transport-Security", "max-age=31536000")
			}
			return next(c)
		}
	}
}

// requestLog logs one line per request: method, route pattern (never the path,
// which may carry a connect-link token, nor the query, which may carry an
// authorization code), status, duration, client address and request ID.
func (s *Server) requestLog() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod: true, LogStatus: true, LogLatency: true, LogRemoteIP: true, LogError: true,
		HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			s.metrics.ObserveResponse(v.Status)
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			route := c.Path() // "/connect/:token"; "" when no route matched
			if route == "" {
				route = "(no route)"
			}
			if strings.HasPrefix(route, "/static/") || route == "/healthz" || route == "/readyz" || route == "/metrics" ||
				(route == eventsRoute && v.Status < 400) {
				level = slog.LevelDebug // busy and uneventful: GetResponse's events may come by the thousand
			}
			if route == proxyRoute {
				s.metrics.ObserveProxy(v.Status)
			}
			s.log.LogAttrs(c.Request().Context(), level, "request",
				slog.String("method", v.Method), slog.String("route", route), slog.Int("status", v.Status),
				slog.Duration("duration", v.Latency.Round(time.Microsecond)), slog.String("ip", v.RemoteIP),
				slog.String("request_id", requestIDOf(c)))
			return nil
		},
	})
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether this process can serve: the database answers, holds the
// schema this build expects, and accepts a write. The reason is generic (the log
// has the details, which may name the database host).
func (s *Server) readyz(c echo.Context) error {
	if err := s.store.CheckReady(c.Request().Context()); err != nil {
		s.log.Warn("not ready", "error", err)
		reason := "database not ready"
		if p := models.StorageProblemOf(err); p != "" {
			reason = p.Describe()
		}
		c.Response().Header().Set("Retry-After", "5")
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// storageWarning says, for the dashboard's banner, what is wrong with the database
// ("" while it accepts writes).
func (s *Server) storageWarning() string {
	h := s.store.Health()
	if h.OK() {
		return ""
	}
	return "Storage problem since " + formatTime(h.Since) + ": " + h.Problem.Describe() +
		". Access tokens already stored are still handed out; automatic refreshes are paused until the database accepts writes again."
}
