package handlers

import (
	"context"
	"errors"
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

// auditService reads the audit log.
type auditService interface {
	List(ctx context.Context, f models.AuditFilter) (*models.AuditPage, error)
	Each(ctx context.Context, f models.AuditFilter, fn func(models.AuditEntry) error) error
	LiveTargets(ctx context.Context, refs []models.AuditTargetRef) (map[models.AuditTargetRef]string, error)
}

// auditPageSize is how many entries one screen of the audit page shows: one line
// each at 1280 px.
const auditPageSize = 50

// auditFilter reads the filters the audit page, its export and GET /api/v1/audit
// share: who (actor), action (an action or a prefix such as "app."), target type
// and ID, and a date range. Dates are days in UTC ("2026-01-31") or RFC 3339
// times; a day's "until" includes the whole day. It returns the field and
// problem of a bad one.
func auditFilter(q url.Values, untilKey string) (models.AuditFilter, string, string) {
	f := models.AuditFilter{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		TargetType: strings.TrimSpace(q.Get("target_type")), TargetID: strings.TrimSpace(q.Get("target"))}
	if id := strings.TrimSpace(q.Get("target_id")); id != "" {
		f.TargetID = id
	}
	if f.TargetType != "" && !slices.Contains(services.TargetTypes, f.TargetType) {
		return f, "target_type", "Use one of " + strings.Join(services.TargetTypes, ", ") + "."
	}
	if f.Action != "" && !knownAction(f.Action) {
		return f, "action", "Unknown action. Use one of " + strings.Join(auditActionNames(), ", ") + ", or a prefix such as app."
	}
	for _, d := range []struct {
		key string
		dst **time.Time
		end bool
	}{{"from", &f.Since, false}, {"since", &f.Since, false}, {untilKey, &f.Until, true}} {
		raw := strings.TrimSpace(q.Get(d.key))
		if raw == "" {
			continue
		}
		t, day, err := parseAuditTime(raw)
		if err != nil {
			return f, d.key, "Use a date like 2026-01-31 or a time like 2026-01-31T15:04:05Z."
		}
		if d.end && day {
			t = t.Add(24 * time.Hour) // the whole day
		}
		*d.dst = &t
	}
	return f, "", ""
}

func parseAuditTime(s string) (t time.Time, day bool, err error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true, nil
	}
	t, err = time.Parse(time.RFC3339, s)
	return t.UTC(), false, err
}

func knownAction(a string) bool {
	for _, known := range models.AuditActions {
		if string(known) == a || strings.HasSuffix(a, ".") && strings.HasPrefix(string(known), a) {
			return true
		}
	}
	return false
}

func auditActionNames() []string {
	out := make([]string, 0, len(models.AuditActions))
	for _, a := range models.AuditActions {
		out = append(out, string(a))
	}
	return out
}

// auditActionGroups are the audit page's action filter: per target type, "any"
// and each action, in words.
func auditActionGroups() []views.OptionGroup {
	var out []views.OptionGroup
	for _, target := range services.TargetTypes {
		g := views.OptionGroup{Label: models.AuditTargetLabel(target, true),
			Options: []views.Option{{Value: target + ".", Label: "Anything about " + strings.ToLower(models.AuditTargetLabel(target, true))}}}
		if target == services.TargetInstall {
			g.Options[0].Label = "Anything about the install"
		}
		for _, a := range models.AuditActions {
			if strings.HasPrefix(string(a), target+".") {
				g.Options = append(g.Options, views.Option{Value: string(a), Label: a.Label()})
			}
		}
		out = append(out, g)
	}
	return out
}

// auditActor names who acted, for people: an operator by e-mail, an API key by
// its name, the command line, or someone who was not signed in.
func auditActor(actor string) string {
	switch {
	case actor == services.CLIActor:
		return "Command line"
	case actor == services.AnonymousActor:
		return "Someone not signed in"
	case strings.HasPrefix(actor, "api:"):
		return "API key “" + strings.TrimPrefix(actor, "api:") + "”"
	}
	return actor
}

// auditTargetURL is the page of an entry's target when it still exists (live
// holds the targets that do, with a connect link's app), else "".
func auditTargetURL(e models.AuditEntry, live map[models.AuditTargetRef]string) string {
	parent, ok := live[models.AuditTargetRef{Type: e.TargetType, ID: e.TargetID}]
	if !ok {
		return ""
	}
	id := url.PathEscape(e.TargetID)
	switch e.TargetType {
	case services.TargetConnection:
		return "/connections/" + id
	case services.TargetApp:
		return "/apps/" + id
	case services.TargetLink:
		return "/apps/" + url.PathEscape(parent) + "/links/" + id
	case services.TargetOperator, services.TargetInvitation:
		return "/operators"
	case services.TargetAPIKey:
		return "/api-keys#" + id
	case services.TargetBulkJob:
		return "/connections/bulk/" + id
	}
	return ""
}

// auditRows prepares one screen of entries: targets by name, linked while they exist.
func (s *Server) auditRows(c echo.Context, entries []models.AuditEntry) ([]views.AuditRow, error) {
	refs := make([]models.AuditTargetRef, 0, len(entries))
	for _, e := range entries {
		if e.TargetID != "" {
			refs = append(refs, models.AuditTargetRef{Type: e.TargetType, ID: e.TargetID})
		}
	}
	live, err := s.audit.LiveTargets(c.Request().Context(), refs)
	if err != nil {
		return nil, err
	}
	k := s.clock(c)
	rows := make([]views.AuditRow, 0, len(entries))
	for _, e := range entries {
		r := views.AuditRow{ID: e.ID, At: k.view(e.CreatedAt), Actor: auditActor(e.Actor), IP: e.IP, Action: e.Action.Label(),
			Code: string(e.Action), Details: e.Details, TargetKind: models.AuditTargetLabel(e.TargetType, false)}
		if e.TargetID != "" {
			r.TargetName, r.TargetID = e.TargetName, e.TargetID
			if r.TargetName == "" {
				r.TargetName = e.TargetID
			}
			r.TargetURL = auditTargetURL(e, live)
			if r.TargetURL == "" && auditTargetHasPage(e.TargetType) {
				r.TargetDeleted = true
			}
		} else if e.TargetType == services.TargetInstall {
			r.TargetKind, r.TargetName = "", "The install"
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// auditTargetHasPage reports whether targets of the type have a page to link to
// (so a missing one was deleted).
func auditTargetHasPage(targetType string) bool {
	return targetType != services.TargetInstall && targetType != ""
}

// auditQueryKeys are the filters a page link or an export carries on.
var auditQueryKeys = []string{"actor", "action", "target_type", "target", "from", "till"}

func (s *Server) listAudit(c echo.Context) error {
	q := c.QueryParams()
	f, _, problem := auditFilter(q, "till")
	f.Before, f.Limit = q.Get("before"), auditPageSize
	v := views.AuditView{Actor: f.Actor, Action: f.Action, TargetType: f.TargetType, Target: f.TargetID, From: q.Get("from"), Till: q.Get("till"),
		Retention: retentionText(s.cfg.AuditRetention), ActionGroups: auditActionGroups()}
	for _, target := range services.TargetTypes {
		v.TargetTypes = append(v.TargetTypes, views.Option{Value: target, Label: models.AuditTargetLabel(target, true)})
	}
	filters := url.Values{}
	for _, k := range auditQueryKeys {
		if val := q.Get(k); val != "" {
			filters.Set(k, val)
		}
	}
	link := func(path string, extra url.Values) string {
		next := url.Values{}
		for k, vs := range filters {
			next[k] = vs
		}
		for k, vs := range extra {
			next[k] = vs
		}
		if len(next) == 0 {
			return path
		}
		return path + "?" + next.Encode()
	}
	v.CSVURL = link("/audit/export", url.Values{"format": {"csv"}})
	v.JSONLURL = link("/audit/export", url.Values{"format": {"jsonl"}})
	if problem != "" {
		v.Error = problem
		return render(c, http.StatusBadRequest, views.AuditPage(s.page(c, "Audit log", "audit"), v))
	}
	page, err := s.audit.List(c.Request().Context(), f)
	if errors.Is(err, models.ErrBadCursor) {
		return echo.NewHTTPError(http.StatusBadRequest, "That page link is not valid. Start again from the newest entries.")
	}
	if err != nil {
		return err
	}
	if v.Rows, err = s.auditRows(c, page.Entries); err != nil {
		return err
	}
	if f.TargetID != "" {
		v.TargetName = f.TargetID
		for _, r := range v.Rows {
			if r.TargetID == f.TargetID {
				v.TargetName = r.TargetKind + " “" + r.TargetName + "”"
				break
			}
		}
		without := url.Values{}
		for k, vs := range filters {
			if k != "target" {
				without[k] = vs
			}
		}
		v.AllTargetsURL = "/audit"
		if len(without) > 0 {
			v.AllTargetsURL += "?" + without.Encode()
		}
	}
	if page.NextCursor != "" {
		v.NextURL = link("/audit", url.Values{"before": {page.NextCursor}})
	}
	if f.Before != "" {
		v.NewestURL = link("/audit", nil)
	}
	return render(c, http.StatusOK, views.AuditPage(s.page(c, "Audit log", "audit"), v))
}

// exportAudit streams every entry the page's filters select, for the whole
// filtered range, as CSV or JSON lines.
func (s *Server) exportAudit(c echo.Context) error {
	q := c.QueryParams()
	f, _, problem := auditFilter(q, "till")
	if problem != "" {
		return echo.NewHTTPError(http.StatusBadRequest, problem)
	}
	return s.streamAudit(c, q.Get("format"), f)
}

// retentionText says how long audit entries are kept.
func retentionText(d time.Duration) string {
	switch {
	case d <= 0:
		return "for ever"
	case d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day", "days")
	}
	return "for " + d.String()
}

// auditEntryJSON is an audit entry as the API and the JSON lines export show it.
type auditEntryJSON struct {
	ID          int64     `json:"id"`
	CreatedAt   time.Time `json:"created_at"`
	Actor       string    `json:"actor"`
	IP          string    `json:"ip"`
	Action      string    `json:"action"`
	ActionLabel string    `json:"action_label"`
	Target      struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		// Name is the target's name when the entry was written.
		Name string `json:"name"`
	} `json:"target"`
	Details string `json:"details"`
}

func toAuditJSON(e models.AuditEntry) auditEntryJSON {
	j := auditEntryJSON{ID: e.ID, CreatedAt: e.CreatedAt.UTC(), Actor: e.Actor, IP: e.IP, Action: string(e.Action),
		ActionLabel: e.Action.Label(), Details: e.Details}
	j.Target.Type, j.Target.ID, j.Target.Name = e.TargetType, e.TargetID, e.TargetName
	return j
}

// auditListJSON is one page of the audit log.
type auditListJSON struct {
	Entries []auditEntryJSON `json:"entries"`
	// NextCursor fetches the next (older) page (?cursor=); null on the last one.
	NextCursor *string `json:"next_cursor"`
}

func (s *Server) apiListAudit(c echo.Context) error {
	q := c.QueryParams()
	f, field, problem := auditFilter(q, "until")
	if problem != "" {
		return services.FieldErrors{field: problem}
	}
	f.AppID = keyApp(c) // a key limited to one app reads only the entries about it
	f.Before = q.Get("cursor")
	if format := q.Get("format"); format != "" && format != "json" {
		return s.streamAudit(c, format, f)
	}
	f.Limit = 50
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return services.FieldErrors{"limit": "Use a whole number from 1 to 500."}
		}
		f.Limit = n
	}
	page, err := s.audit.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := auditListJSON{Entries: make([]auditEntryJSON, 0, len(page.Entries))}
	for _, e := range page.Entries {
		out.Entries = append(out.Entries, toAuditJSON(e))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	return c.JSON(http.StatusOK, out)
}
