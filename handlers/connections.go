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
	"github.com/grconnect/grconnect/services/tokens"
	"github.com/grconnect/grconnect/views"
)

// appAlerts lists the unhealthy apps for the page's banner (nothing when the list
// cannot be read: a page never fails for its banner).
func (s *Server) appAlerts(c echo.Context) []views.AppAlert {
	apps, err := s.store.UnhealthyApps(c.Request().Context())
	if err != nil {
		s.log.Warn("list unhealthy apps", "error", err)
		return nil
	}
	k := s.clock(c)
	var out []views.AppAlert
	for _, a := range apps {
		al := views.AppAlert{AppID: a.ID, AppName: a.Name, Operator: a.Health.OperatorMustAct(), Advice: appHealthWords(a.Health, a.HealthReason)}
		al.FixLabel, al.FixURL = appFix(a.ID, a.Health)
		if a.HealthSince != nil {
			al.Since = k.view(*a.HealthSince)
		}
		out = append(out, al)
	}
	return out
}

const (
	pageSize = 50
	// timelinePage is how many events a connection's page shows, newest first;
	// "Older" pages on.
	timelinePage = 25
	// countLimit caps the "N matching" count, which otherwise scans every match.
	countLimit = 10_000
)

// listTabs are the connections list's state tabs, in order: the key (the status
// filter) and its label.
var listTabs = []struct {
	key   string
	label string
}{
	{"live", "All live"},
	{string(models.StatusNeedsReconnect), statusLabels[models.StatusNeedsReconnect]},
	{string(models.StatusPaused), statusLabels[models.StatusPaused]},
	{string(models.StatusRefreshFailing), statusLabels[models.StatusRefreshFailing]},
	{string(models.StatusActive), statusLabels[models.StatusActive]},
	{string(models.StatusDisconnected), statusLabels[models.StatusDisconnected]},
	{"all", "All"},
}

// listSorts are the list's orders as the URL names them ("-" for descending)
// and as the Sort by menu says them.
var listSorts = []views.Option{
	{Value: "attention", Label: "Who must act"},
	{Value: "expires", Label: "Token expiry, soonest first"},
	{Value: "-expires", Label: "Token expiry, latest first"},
	{Value: "email", Label: "E-mail, A–Z"},
	{Value: "-email", Label: "E-mail, Z–A"},
	{Value: "customer", Label: "Customer, A–Z"},
	{Value: "-customer", Label: "Customer, Z–A"},
}

// parseSort reads the sort parameter: "" is the attention order.
func parseSort(v string) (models.ConnectionSort, bool, bool) {
	if v == "" {
		return models.SortAttention, false, true
	}
	desc := strings.HasPrefix(v, "-")
	sort := models.ConnectionSort(strings.TrimPrefix(v, "-"))
	if !slices.Contains(models.ConnectionSorts, sort) || (desc && sort == models.SortAttention) {
		return "", false, false
	}
	return sort, desc, true
}

func (s *Server) listConnections(c echo.Context) error {
	ctx := c.Request().Context()
	sort, desc, ok := parseSort(c.QueryParam("sort"))
	if !ok {
		return echo.NewHTTPError(http.StatusBadRequest, "Unknown order.")
	}
	f := models.ConnectionFilter{
		Status: c.QueryParam("status"), AppID: c.QueryParam("app"), Query: strings.TrimSpace(c.QueryParam("q")), Sort: sort, Desc: desc,
		After: c.QueryParam("after"), Before: c.QueryParam("before"), Last: c.QueryParam("last") == "1", Limit: pageSize,
	}
	if f.Status == "" {
		f.Status = "live"
	}
	if f.Status != "live" && f.Status != "all" && !slices.Contains(models.DisplayStatuses, models.Status(f.Status)) {
		return echo.NewHTTPError(http.StatusBadRequest, "Unknown status filter.")
	}
	statusParam := f.Status
	if f.Status == "all" {
		f.Status = ""
	}
	if len(f.Query) > 200 {
		return echo.NewHTTPError(http.StatusBadRequest, "The search is too long.")
	}
	page, err := s.store.ListConnections(ctx, f)
	if errors.Is(err, models.ErrBadCursor) {
		return echo.NewHTTPError(http.StatusBadRequest, "That page link is not valid. Start again from the first page.")
	}
	if err != nil {
		return err
	}
	counts, err := s.store.CountConnectionsShown(ctx)
	if err != nil {
		return err
	}
	apps, err := s.store.AppNames(ctx)
	if err != nil {
		return err
	}
	sortParam := c.QueryParam("sort")
	if sortParam == "" {
		sortParam = "attention"
	}
	v := views.ConnectionsView{Status: statusParam, AppID: f.AppID, Query: f.Query, Sort: sortParam, Sorts: listSorts,
		QueryShort: models.ShortSearch(models.NormalizeSearch(f.Query)),
		Narrowed:   f.Query != "" || f.AppID != ""}
	if v.Narrowed {
		if v.Total, v.TotalMore, err = s.store.CountConnections(ctx, f, countLimit); err != nil {
			return err
		}
	}
	for _, a := range apps {
		v.Apps = append(v.Apps, views.Option{Value: a.ID, Label: a.Name})
	}
	// Links keep the search and app; a tab or a heading starts at the first page.
	link := func(set map[string]string) string {
		q := url.Values{}
		for k, val := range map[string]string{"status": statusParam, "app": f.AppID, "q": f.Query, "sort": c.QueryParam("sort")} {
			if val != "" {
				q.Set(k, val)
			}
		}
		for k, val := range set {
			if val == "" {
				q.Del(k)
			} else {
				q.Set(k, val)
			}
		}
		if q.Get("status") == "live" {
			q.Del("status")
		}
		if len(q) == 0 {
			return "/connections"
		}
		return "/connections?" + q.Encode()
	}
	for _, t := range listTabs {
		n := counts.ByStatus[models.Status(t.key)]
		switch t.key {
		case "live":
			n = 0
			for _, st := range models.DisplayStatuses {
				if st != models.StatusDisconnected {
					n += counts.ByStatus[st]
				}
			}
		case "all":
			n = 0
			for _, st := range models.DisplayStatuses {
				n += counts.ByStatus[st]
			}
		}
		v.Tabs = append(v.Tabs, views.ListTab{Key: t.key, Label: t.label, Count: n, URL: link(map[string]string{"status": t.key}), Current: t.key == statusParam})
	}
	v.Heads = sortHeads(sort, desc, link)
	v.Back = link(map[string]string{"after": c.QueryParam("after"), "before": c.QueryParam("before"), "last": c.QueryParam("last")})
	k := s.clock(c)
	if v.Rows, err = s.listRows(ctx, page, f, counts, k); err != nil {
		return err
	}
	if len(v.Rows) == 0 && statusParam == "live" && f.Query == "" && f.AppID == "" {
		// An empty default list may only be hiding disconnected connections: say so.
		v.Hidden = counts.ByStatus[models.StatusDisconnected]
	}
	if v.Bulk, err = s.bulkOffer(ctx); err != nil {
		return err
	}
	if page.PrevCursor != "" {
		v.FirstURL, v.PrevURL = link(nil), link(map[string]string{"before": page.PrevCursor})
	}
	if page.NextCursor != "" {
		v.NextURL, v.LastURL = link(map[string]string{"after": page.NextCursor}), link(map[string]string{"last": "1"})
	}
	p := s.page(c, "Connections", "connections")
	p.Wide = true
	return render(c, http.StatusOK, views.ConnectionsPage(p, v))
}

// sortHeads are the sortable column headings: each links to its order, the
// current one to its reverse (the attention order has none).
func sortHeads(sort models.ConnectionSort, desc bool, link func(map[string]string) string) map[string]views.SortHeader {
	heads := map[string]views.SortHeader{}
	for key, h := range map[string]struct {
		label string
		sort  models.ConnectionSort
	}{"status": {"Status", models.SortAttention}, "account": {"Account", models.SortEmail}, "customer": {"Customer", models.SortCustomer}, "expires": {"Expires", models.SortExpiry}} {
		head := views.SortHeader{Label: h.label}
		next := string(h.sort)
		if h.sort == sort {
			head.Sort = "ascending"
			if desc {
				head.Sort = "descending"
			} else if sort != models.SortAttention {
				next = "-" + next
			}
		}
		if next == string(models.SortAttention) {
			next = ""
		}
		head.URL = link(map[string]string{"sort": next, "after": "", "before": "", "last": ""})
		heads[key] = head
	}
	return heads
}

// attentionGroups name the attention groups for the list: a key (CSS, tests) and
// a heading saying who must act.
var attentionGroups = map[models.AttentionGroup]struct{ key, title string }{
	models.AttentionCustomer: {"customer", "The customer must reconnect"},
	models.AttentionOperator: {"operator", "You must fix the app"},
	models.AttentionWait:     {"wait", "Waiting on GetResponse"},
	models.AttentionHealthy:  {"healthy", "Healthy"},
	models.AttentionOff:      {"off", "Disconnected"},
}

// listRows prepares a page of the list: each row with its reason and action, and,
// in the attention order, a heading where a group starts.
func (s *Server) listRows(ctx context.Context, page *models.ConnectionPage, f models.ConnectionFilter, counts models.ShownCounts, k clock) ([]views.ConnectionRow, error) {
	rows := page.Rows
	var broken []string
	for _, r := range rows {
		if r.Status == models.StatusNeedsReconnect && !r.AppHealth.OperatorMustAct() {
			broken = append(broken, r.ID)
		}
	}
	links, err := s.connect.ReconnectLinks(ctx, broken)
	if err != nil {
		return nil, err
	}
	out := make([]views.ConnectionRow, 0, len(rows))
	for i, r := range rows {
		row := connectionRow(r, k)
		g := r.Attention()
		row.Group = attentionGroups[g].key
		row.Reason, row.ReasonFull = rowReason(r, k)
		row.Action = rowAction(r, links)
		if f.Sort == models.SortAttention && (i == 0 || rows[i-1].Attention() != g) {
			row.Head = &views.GroupHead{Title: attentionGroups[g].title}
			if f.Query == "" && f.AppID == "" {
				row.Head.Count = views.FormatCount(counts.ByGroup[g])
			}
		}
		out = append(out, row)
	}
	if len(out) > 0 && out[0].Head != nil && page.PrevCursor != "" {
		// The first row's group may have begun on an earlier page: the row just
		// before this page (PrevCursor is this page's first row) says.
		prev := f
		prev.Before, prev.After, prev.Last, prev.Limit = page.PrevCursor, "", false, 1
		p, err := s.store.ListConnections(ctx, prev)
		if err != nil {
			return nil, err
		}
		out[0].Head.Continued = len(p.Rows) == 1 && p.Rows[0].Attention() == rows[0].Attention()
	}
	return out, nil
}
func (s *Server) showConnection(c echo.Context) error {
	return s.renderConnection(c, http.StatusOK, nil, "")
}

// renderConnection renders a connection's page, with a test call's result when there is one.
func (s *Server) renderConnection(c echo.Context, status int, result *tokens.TestCallResult, testEndpoint string) error {
	ctx := c.Request().Context()
	conn, err := s.connections.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	app, err := s.store.AppByID(ctx, conn.AppID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return err
	}
	var before int64
	if b := c.QueryParam("before"); b != "" {
		if before, err = strconv.ParseInt(b, 10, 64); err != nil || before <= 0 {
			return echo.NewHTTPError(http.StatusBadRequest, "That timeline page link is not valid.")
		}
	}
	events, more, err := s.store.ConnectionEvents(ctx, conn.ID, before, timelinePage)
	if err != nil {
		return err
	}
	links, err := s.connect.ReconnectLinks(ctx, []string{conn.ID})
	if err != nil {
		return err
	}
	refreshes, err := s.store.RefreshEvents(ctx, conn.ID, refreshHistory)
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
		Connected:    k.view(conn.ConnectedAt),
		Created:      k.view(conn.CreatedAt),
		RefreshToken: refreshTokenFact(conn),
		Endpoints:    tokens.TestEndpoints,
		TestEndpoint: testEndpoint,
		Test:         testView(result),
		ServerNow:    k.now.UTC().Format(time.RFC3339),
		Identity: views.IdentityView{ConnectionID: conn.ID, Max: app != nil && services.IsMax(app),
			MaxDomain: conn.MaxDomain, ParentLogin: conn.ParentLogin},
	}
	v.History, v.Streak = historyStrip(refreshes, conn.FailureCount, k)
	if !conn.Status.Live() {
		v.Fingerprint = "" // no usable token: its fingerprint would be a stale fact
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
	st := connectionState{conn: conn, appGone: app == nil || app.DeletedAt != nil, appID: conn.AppID, app: app, k: k}
	if app != nil && conn.Status.Displayed(app.Health) == models.StatusPaused {
		st.pausedBy = app
	}
	if l, ok := links[conn.ID]; ok {
		row := linkRow(l, k)
		st.link = &row
	}
	if st.appBroken() {
		st.link = nil // a link no customer could complete is not offered
	}
	v.Banner, v.Actions, v.ReconnectLink = connectionBanner(st), connectionActions(st), st.link
	for _, e := range events {
		v.Events = append(v.Events, views.EventRow{Type: string(e.Type), Message: e.Message, Actor: actor(e.Actor), At: k.view(e.CreatedAt)})
	}
	if more && len(events) > 0 {
		v.OlderURL = fmt.Sprintf("/connections/%s?before=%d#timeline", conn.ID, events[len(events)-1].ID)
	} else if len(events) > 0 && s.cfg.TimelineRetention > 0 {
		v.TimelineKept = "Events are kept " + retentionText(s.cfg.TimelineRetention) + "; the newest stays however old."
	}
	if before > 0 {
		v.NewestURL = "/connections/" + conn.ID + "#timeline"
	}
	title := conn.AccountEmail
	if title == "" {
		title = conn.AccountID
	}
	if app != nil && conn.Status.Live() {
		v.Budget = budgetText(s.tokens, app.APIURL, conn.MaxDomain, conn.AccountID, k.now)
	}
	v.GetResponse = s.eventsView(ctx, k, conn, app)
	page := s.page(c, title, "connections")
	page.CauseAppID = conn.AppID
	return render(c, status, views.ConnectionPage(page, v))
}

// refreshTokenFact says what is known of a connection's refresh token, as its
// state has it: one GetResponse rejected is not "stored".
func refreshTokenFact(c *models.Connection) string {
	switch {
	case c.Status == models.StatusDisconnected:
		return "erased at the disconnect"
	case c.Status == models.StatusNeedsReconnect:
		return "rejected by GetResponse: only a reconnect replaces it"
	case c.RefreshTokenEnc == "":
		return "none"
	}
	return "stored, encrypted"
}

func testView(r *tokens.TestCallResult) *views.TestCallView {
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

// refreshConnection is Refresh now / Retry now, from a connection's page or from
// a row of the list (back). The flash says what happened, not why: the page's
// banner, the app's alert or the row's reason says that, once.
func (s *Server) refreshConnection(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	to, who := "/connections/"+id, ""
	if back := listBack(c.FormValue("back")); back != "" {
		to = back
		if conn, err := s.connections.Get(ctx, id); err == nil {
			who = " " + orEmail(conn)
		}
	}
	conn, err := s.tokens.Refresh(ctx, id, currentOperator(c).Email)
	var tooSoon *tokens.TooSoonError
	var refused *tokens.RefreshError
	switch {
	case errors.As(err, &tooSoon):
		return s.redirectWithFlash(c, to, "warning", "Not refreshed"+who+": "+tooSoon.Reason+". Try again in "+strconv.Itoa(seconds(tooSoon.RetryAfter))+" s.")
	case errors.Is(err, models.ErrNotFound):
		return err
	case errors.Is(err, models.ErrDisconnected):
		return s.redirectWithFlash(c, to, "error", "This connection is disconnected: it has no tokens to refresh. Send a reconnect link instead.")
	case errors.Is(err, tokens.ErrNeedsReconnect):
		return s.redirectWithFlash(c, to, "error", "Refresh"+who+" failed: GetResponse rejected the refresh token.")
	case errors.Is(err, tokens.ErrAppUnhealthy):
		kind := "warning"
		if errors.As(err, &refused) && refused.Class == tokens.ClassOperator {
			kind = "error"
		}
		return s.redirectWithFlash(c, to, kind, "Refresh"+who+" failed because of its app, not the connection: the app's alert says why.")
	case errors.Is(err, tokens.ErrTransient):
		return s.redirectWithFlash(c, to, "warning", "Retried"+who+": GetResponse still fails.") // the banner or the row says why and when the next try is
	case err != nil:
		return err
	}
	return s.redirectWithFlash(c, to, "success", "Refreshed"+who+". The new access token is valid until "+s.clock(c).text(*conn.ExpiresAt)+".")
}

// orEmail names a connection by its e-mail, else its account ID.
func orEmail(c *models.Connection) string {
	if c.AccountEmail != "" {
		return c.AccountEmail
	}
	return c.AccountID
}

func (s *Server) testConnection(c echo.Context) error {
	endpoint := c.FormValue("endpoint")
	if endpoint == "" {
		endpoint = "/from-fields"
	}
	res, err := s.tokens.TestCall(c.Request().Context(), c.Param("id"), endpoint, currentOperator(c).Email)
	if fe, ok := models.AsFieldErrors(err); ok {
		return echo.NewHTTPError(http.StatusBadRequest, fe["endpoint"])
	}
	if errors.Is(err, models.ErrNotFound) {
		return err
	}
	if errors.Is(err, models.ErrDisconnected) {
		// Its page offers no test call: say why there.
		return s.redirectWithFlash(c, "/connections/"+c.Param("id"), "error", "This connection is disconnected: there is no token to call GetResponse with.")
	}
	if errors.Is(err, tokens.ErrNeedsReconnect) {
		// Its page offers no test call now: say why there.
		return s.redirectWithFlash(c, "/connections/"+c.Param("id"), "error", "The test call could not run: the customer must reconnect first.")
	}
	if err != nil {
		res = &tokens.TestCallResult{Path: endpoint, Error: "The test call could not run: " + services.CallFailure(err) + "."}
	}
	return s.renderConnection(c, http.StatusOK, res, endpoint)
}

func (s *Server) reconnectConnection(c echo.Context) error {
	ctx := c.Request().Context()
	conn, err := s.connections.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	page := "/connections/" + conn.ID
	back := listBack(c.FormValue("back"))
	fail := page
	if back != "" {
		fail = back
	}
	_, err = s.connect.CreateLink(ctx, services.LinkInput{AppID: conn.AppID, ConnectionID: conn.ID, CreatedBy: currentOperator(c).Email})
	var unavailable *services.AppUnavailableError
	if fe, ok := models.AsFieldErrors(err); ok {
		if _, gone := fe["app_id"]; gone {
			return s.redirectWithFlash(c, fail, "error", "This connection's app was deleted, so it cannot be reconnected.")
		}
		return s.redirectWithFlash(c, fail, "error", fe.Error())
	}
	if errors.As(err, &unavailable) {
		return s.redirectWithFlash(c, fail, "error", "No reconnect link was made: no customer could complete it while GetResponse refuses the app. Fix the app first.")
	}
	if err != nil {
		return err
	}
	if back != "" {
		return s.redirectWithFlash(c, back, "success", "Reconnect link made for "+orEmail(conn)+": copy it from its row and send it to the customer.")
	}
	to := page + "#reconnect"
	if conn.Status != models.StatusActive && conn.Status != models.StatusRefreshFailing {
		to = page + "#status-banner" // the banner carries the link
	}
	return s.redirectWithFlash(c, to, "success", "Reconnect link created.") // the banner or the card shows it, with what to do
}

func (s *Server) confirmDisconnect(c echo.Context) error {
	conn, err := s.connections.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.DisconnectPage(s.page(c, "Disconnect", "connections"),
		views.ConnectionRow{ID: conn.ID, AccountEmail: conn.AccountEmail, AccountID: conn.AccountID, CustomerRef: conn.CustomerRef, Status: string(conn.Status)}))
}

func (s *Server) disconnectConnection(c echo.Context) error {
	id := c.Param("id")
	if err := s.connections.Disconnect(c.Request().Context(), id, currentOperator(c).Email); err != nil {
		return err
	}
	s.log.Info("connection disconnected", "connection", id, "by", currentOperator(c).ID)
	return s.redirectWithFlash(c, "/connections/"+id, "success", "Disconnected. The tokens were erased; the history stays.")
}
