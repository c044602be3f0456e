package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// tokenService is what the connection pages need of the token engine.
type tokenService interface {
	Get(ctx context.Context, id string) (*models.Connection, error)
	Refresh(ctx context.Context, id, actor string) (*models.Connection, error)
	CheckApp(ctx context.Context, app *models.App, actor string) (services.CheckResult, error)
	TryCredentials(ctx context.Context, candidate *models.App) (services.CheckResult, error)
	AppWorks(ctx context.Context, app *models.App, what, actor string)
	CredentialsReplaced(ctx context.Context, app *models.App, actor string)
	AccountBudget(apiURL, maxDomain, accountID string) (services.Budget, bool)
	TestCall(ctx context.Context, id, path, actor string) (*services.TestCallResult, error)
	Disconnect(ctx context.Context, id, actor string) error
}

// connectionQueries are the dashboard's read-only queries.
type connectionQueries interface {
	ListConnections(ctx context.Context, f models.ConnectionFilter) (*models.ConnectionPage, error)
	CountConnections(ctx context.Context, f models.ConnectionFilter, limit int) (int64, bool, error)
	AppNames(ctx context.Context) ([]models.App, error)
	ConnectionEvents(ctx context.Context, connectionID string, beforeID int64, limit int) ([]models.Event, bool, error)
	ConnectionsBy(ctx context.Context, statuses []models.Status, limit int) ([]models.ConnectionRow, error)
	ExpiryHistogram(ctx context.Context, now time.Time, span, width time.Duration) ([]models.ExpiryBucket, error)
	RefreshStats(ctx context.Context, now time.Time, days int) ([]models.DailyRefreshStat, error)
	RefreshEvents(ctx context.Context, connectionID string, limit int) ([]models.Event, error)
	RecentEvents(ctx context.Context, limit int) ([]models.EventRow, error)
	AppByID(ctx context.Context, id string) (*models.App, error)
	CountByStatus(ctx context.Context) (map[models.Status]int64, error)
	TokenHorizon(ctx context.Context) (models.TokenHorizon, error)
	UnhealthyApps(ctx context.Context) ([]models.App, error)
}

// appAlerts lists the unhealthy apps for the page's banner (nothing when the list
// cannot be read: a page never fails for its banner).
func (s *Server) appAlerts(c echo.Context) []views.AppAlert {
	apps, err := s.queries.UnhealthyApps(c.Request().Context())
	if err != nil {
		s.log.Warn("list unhealthy apps", "error", err)
		return nil
	}
	k := s.clock(c)
	var out []views.AppAlert
	for _, a := range apps {
		al := views.AppAlert{AppID: a.ID, AppName: a.Name, Operator: a.Health.OperatorMustAct(), Advice: services.AppHealthAdvice(a.Health, a.HealthReason)}
		if a.HealthSince != nil {
			al.Since = k.view(*a.HealthSince)
		}
		out = append(out, al)
	}
	return out
}

const (
	pageSize = 50
	// countLimit caps the "N matching" count, which otherwise scans every match.
	countLimit = 10_000
)

func (s *Server) listConnections(c echo.Context) error {
	ctx := c.Request().Context()
	f := models.ConnectionFilter{
		Status: c.QueryParam("status"), AppID: c.QueryParam("app"), Query: strings.TrimSpace(c.QueryParam("q")),
		After: c.QueryParam("after"), Before: c.QueryParam("before"), Last: c.QueryParam("last") == "1", Limit: pageSize,
	}
	if f.Status == "" && !c.QueryParams().Has("status") {
		f.Status = "live"
	}
	if f.Status != "" && f.Status != "live" && f.Status != "all" && !slices.Contains(models.DisplayStatuses, models.Status(f.Status)) {
		return echo.NewHTTPError(http.StatusBadRequest, "Unknown status filter.")
	}
	statusParam := f.Status
	if f.Status == "all" {
		f.Status = ""
	}
	if len(f.Query) > 200 {
		return echo.NewHTTPError(http.StatusBadRequest, "The search is too long.")
	}
	page, err := s.queries.ListConnections(ctx, f)
	if errors.Is(err, models.ErrBadCursor) {
		return echo.NewHTTPError(http.StatusBadRequest, "That page link is not valid. Start again from the first page.")
	}
	if err != nil {
		return err
	}
	total, more, err := s.queries.CountConnections(ctx, f, countLimit)
	if err != nil {
		return err
	}
	apps, err := s.queries.AppNames(ctx)
	if err != nil {
		return err
	}
	k := s.clock(c)
	v := views.ConnectionsView{Status: statusParam, AppID: f.AppID, Query: f.Query, Total: total, TotalMore: more}
	for _, a := range apps {
		v.Apps = append(v.Apps, views.Option{Value: a.ID, Label: a.Name})
	}
	for _, r := range page.Rows {
		v.Rows = append(v.Rows, connectionRow(r, k))
	}
	if len(v.Rows) == 0 && statusParam == "live" && f.Query == "" && f.AppID == "" {
		// An empty default list may only be hiding disconnected connections: say so.
		if v.Hidden, _, err = s.queries.CountConnections(ctx, models.ConnectionFilter{Status: string(models.StatusDisconnected)}, countLimit); err != nil {
			return err
		}
	}
	if v.Bulk, err = s.bulkOffer(ctx); err != nil {
		return err
	}
	base := url.Values{}
	if statusParam != "" {
		base.Set("status", statusParam)
	}
	if f.AppID != "" {
		base.Set("app", f.AppID)
	}
	if f.Query != "" {
		base.Set("q", f.Query)
	}
	link := func(k, val string) string {
		q := url.Values{}
		for key, vals := range base {
			q[key] = vals
		}
		if k != "" {
			q.Set(k, val)
		}
		return "/connections?" + q.Encode()
	}
	if page.PrevCursor != "" {
		v.FirstURL, v.PrevURL = link("", ""), link("before", page.PrevCursor)
	}
	if page.NextCursor != "" {
		v.NextURL, v.LastURL = link("after", page.NextCursor), link("last", "1")
	}
	return render(c, http.StatusOK, views.ConnectionsPage(s.page(c, "Connections", "connections"), v))
}

func (s *Server) showConnection(c echo.Context) error {
	return s.renderConnection(c, http.StatusOK, nil, "")
}

// renderConnection renders a connection's page, with a test call's result when there is one.
func (s *Server) renderConnection(c echo.Context, status int, result *services.TestCallResult, testEndpoint string) error {
	ctx := c.Request().Context()
	conn, err := s.tokens.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	app, err := s.queries.AppByID(ctx, conn.AppID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return err
	}
	var before int64
	if b := c.QueryParam("before"); b != "" {
		if before, err = strconv.ParseInt(b, 10, 64); err != nil || before <= 0 {
			return echo.NewHTTPError(http.StatusBadRequest, "That timeline page link is not valid.")
		}
	}
	events, more, err := s.queries.ConnectionEvents(ctx, conn.ID, before, pageSize)
	if err != nil {
		return err
	}
	links, err := s.connect.RecentLinks(ctx, conn.AppID, conn.ID, 3)
	if err != nil {
		return err
	}
	refreshes, err := s.queries.RefreshEvents(ctx, conn.ID, 30)
	if err != nil {
		return err
	}
	actor := s.actorNames(ctx)
	k := s.clock(c)
	v := views.ConnectionView{
		Row:          connectionRow(models.ConnectionRow{Connection: *conn, AppName: appName(app), AppHealth: appHealth(app)}, k),
		AppID:        conn.AppID,
		CompanyName:  conn.CompanyName,
		Fingerprint:  conn.TokenFingerprint,
		FailureCount: conn.FailureCount,
		Connected:    k.view(conn.ConnectedAt),
		Created:      k.view(conn.CreatedAt),
		HasRefresh:   conn.RefreshTokenEnc != "",
		Endpoints:    services.TestEndpoints,
		TestEndpoint: testEndpoint,
		Test:         testView(result),
		ServerNow:    k.now.UTC().Format(time.RFC3339),
		History:      historyStrip(refreshes, k),
		Identity: views.IdentityView{ConnectionID: conn.ID, Max: app != nil && services.IsMax(app),
			MaxDomain: conn.MaxDomain, ParentLogin: conn.ParentLogin},
	}
	if f, ok := c.Get(ctxIdentityForm).(views.IdentityView); ok {
		v.Identity.ParentLogin, v.Identity.Error = f.ParentLogin, f.Error
	}
	if conn.Status != models.StatusDisconnected {
		v.TokenCurl, v.ProxyCurl = s.curlExamples(conn.ID)
	}
	if conn.DisconnectedAt != nil {
		t := k.view(*conn.DisconnectedAt)
		v.Disconnected = &t
	}
	st := connectionState{conn: conn, appGone: app == nil || app.DeletedAt != nil, appID: conn.AppID, k: k}
	if app != nil && conn.Status.Displayed(app.Health) == models.StatusPaused {
		st.pausedBy = app
	}
	for _, l := range links {
		row := linkRow(l, k)
		if st.link == nil && row.State == "valid" && l.UsedAt == nil {
			st.link = &row
		}
		v.ReconnectLinks = append(v.ReconnectLinks, row)
	}
	v.Banner, v.Actions = connectionBanner(st), connectionActions(st)
	for _, e := range events {
		v.Events = append(v.Events, views.EventRow{Type: string(e.Type), Message: e.Message, Actor: actor(e.Actor), At: k.view(e.CreatedAt)})
	}
	if more && len(events) > 0 {
		v.OlderURL = fmt.Sprintf("/connections/%s?before=%d#timeline", conn.ID, events[len(events)-1].ID)
	}
	if before > 0 {
		v.NewestURL = "/connections/" + conn.ID + "#timeline"
	}
	title := conn.AccountEmail
	if title == "" {
		title = conn.AccountID
	}
	if app != nil {
		v.Budget = budgetText(s.tokens, app.APIURL, conn.MaxDomain, conn.AccountID, k.now)
	}
	v.GetResponse = s.eventsView(ctx, k, conn, app)
	page := s.page(c, title, "connections")
	page.CauseAppID = conn.AppID
	return render(c, status, views.ConnectionPage(page, v))
}

func testView(r *services.TestCallResult) *views.TestCallView {
	if r == nil {
		return nil
	}
	v := &views.TestCallView{
		Path: r.Path, StatusCode: r.StatusCode, LatencyMS: r.Latency.Milliseconds(), JSON: r.JSON, Notes: r.Notes, Error: r.Error,
		OK: r.Error == "" && r.StatusCode >= 200 && r.StatusCode < 300,
	}
	if r.RateLimit.Known {
		v.RateLimit = fmt.Sprintf("%d of %d calls left; window resets in %s", r.RateLimit.Remaining, r.RateLimit.Limit, r.RateLimit.Reset)
	}
	for _, f := range r.FromFields {
		v.FromFields = append(v.FromFields, views.FromFieldRow{Name: f.Name, Email: f.Email, Default: bool(f.IsDefault), Active: bool(f.IsActive)})
	}
	if a := r.Account; a != nil {
		v.Account = [][2]string{{"Account ID", a.AccountID}, {"Email", a.Email}, {"Name", strings.TrimSpace(a.FirstName + " " + a.LastName)},
			{"Company", a.CompanyName}, {"Country", a.CountryCode.CountryCode}, {"Time zone", a.TimeZone.Name}}
	}
	for _, cp := range r.Campaigns {
		v.Campaigns = append(v.Campaigns, views.CampaignRow{ID: cp.CampaignID, Name: cp.Name, Language: cp.LanguageCode, Default: bool(cp.IsDefault)})
	}
	return v
}

func (s *Server) refreshConnection(c echo.Context) error {
	id := c.Param("id")
	conn, err := s.tokens.Refresh(c.Request().Context(), id, currentOperator(c).Email)
	to := "/connections/" + id
	var tooSoon *services.TooSoonError
	switch {
	case errors.As(err, &tooSoon):
		return s.redirectWithFlash(c, to, "error", "Not refreshed: "+tooSoon.Reason+". Try again in "+strconv.Itoa(seconds(tooSoon.RetryAfter))+" s.")
	case errors.Is(err, models.ErrNotFound):
		return err
	case errors.Is(err, models.ErrDisconnected):
		return s.redirectWithFlash(c, to, "error", "This connection is disconnected: it has no tokens to refresh. Send a reconnect link instead.")
	// The banner on the page says why, once: the flash only says what happened.
	case errors.Is(err, services.ErrNeedsReconnect):
		return s.redirectWithFlash(c, to, "error", "Refresh failed: the customer must reconnect.")
	case errors.Is(err, services.ErrAppUnhealthy):
		return s.redirectWithFlash(c, to, "error", "Refresh failed because of the app, not this connection: "+err.Error())
	case errors.Is(err, services.ErrTransient):
		return s.redirectWithFlash(c, to, "error", "Refresh failed for now; grconnect keeps trying.")
	case err != nil:
		return err
	}
	return s.redirectWithFlash(c, to, "success", "Refreshed. The new access token is valid until "+s.clock(c).text(*conn.ExpiresAt)+".")
}

func (s *Server) testConnection(c echo.Context) error {
	endpoint := c.FormValue("endpoint")
	if endpoint == "" {
		endpoint = "/from-fields"
	}
	res, err := s.tokens.TestCall(c.Request().Context(), c.Param("id"), endpoint, currentOperator(c).Email)
	if fe, ok := services.AsFieldErrors(err); ok {
		return echo.NewHTTPError(http.StatusBadRequest, fe["endpoint"])
	}
	if errors.Is(err, models.ErrNotFound) {
		return err
	}
	if errors.Is(err, models.ErrDisconnected) {
		// Its page offers no test call: say why there.
		return s.redirectWithFlash(c, "/connections/"+c.Param("id"), "error", "This connection is disconnected: there is no token to call GetResponse with.")
	}
	if err != nil {
		msg := "The test call could not run: " + services.CallFailure(err) + "."
		switch {
		case errors.Is(err, services.ErrNeedsReconnect):
			msg = "The test call could not run: the customer must reconnect first."
		}
		res = &services.TestCallResult{Path: endpoint, Error: msg}
	}
	return s.renderConnection(c, http.StatusOK, res, endpoint)
}

func (s *Server) reconnectConnection(c echo.Context) error {
	ctx := c.Request().Context()
	conn, err := s.tokens.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	_, err = s.connect.CreateLink(ctx, services.LinkInput{AppID: conn.AppID, ConnectionID: conn.ID, CreatedBy: currentOperator(c).Email})
	if fe, ok := services.AsFieldErrors(err); ok {
		if _, gone := fe["app_id"]; gone {
			return s.redirectWithFlash(c, "/connections/"+conn.ID, "error", "This connection's app was deleted, so it cannot be reconnected.")
		}
		return s.redirectWithFlash(c, "/connections/"+conn.ID, "error", fe.Error())
	}
	if err != nil {
		return err
	}
	to := "/connections/" + conn.ID + "#reconnect"
	if conn.Status != models.StatusActive && conn.Status != models.StatusRefreshFailing {
		to = "/connections/" + conn.ID + "#status-banner" // the banner carries the link
	}
	return s.redirectWithFlash(c, to, "success", "Reconnect link created. Send it to the customer, or open it yourself if this is your account.")
}

func (s *Server) confirmDisconnect(c echo.Context) error {
	conn, err := s.tokens.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.DisconnectPage(s.page(c, "Disconnect", "connections"),
		views.ConnectionRow{ID: conn.ID, AccountEmail: conn.AccountEmail, AccountID: conn.AccountID, CustomerRef: conn.CustomerRef, Status: string(conn.Status)}))
}

func (s *Server) disconnectConnection(c echo.Context) error {
	id := c.Param("id")
	if err := s.tokens.Disconnect(c.Request().Context(), id, currentOperator(c).Email); err != nil {
		return err
	}
	s.log.Info("connection disconnected", "connection", id, "by", currentOperator(c).ID)
	return s.redirectWithFlash(c, "/connections/"+id, "success", "Disconnected. The tokens were erased; the history stays.")
}
