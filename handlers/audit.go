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
}

// auditFilter reads the filters the audit page and GET /api/v1/audit share: who
// (actor), action (an action or a prefix such as "app."), target ID and a date
// range. Dates are days in UTC ("2026-01-31") or RFC 3339 times; a day's "until"
// includes the whole day. It returns the field and problem of a bad one.
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

// auditTargetURL links an entry's target to its page, when it has one.
func auditTargetURL(e models.AuditEntry) string {
	switch e.TargetType {
	case services.TargetConnection:
		return "/connections/" + url.PathEscape(e.TargetID)
	case services.TargetApp:
		if e.Action != models.AuditAppDeleted {
			return "/apps/" + url.PathEscape(e.TargetID)
		}
	}
	return ""
}

func (s *Server) listAudit(c echo.Context) error {
	q := c.QueryParams()
	f, _, problem := auditFilter(q, "till")
	f.Before, f.Limit = q.Get("before"), pageSize
	v := views.AuditView{Actor: f.Actor, Action: f.Action, Target: f.TargetID, From: q.Get("from"), Till: q.Get("till"),
		Retention: retentionText(s.cfg.AuditRetention)}
	for _, target := range services.TargetTypes {
		v.Actions = append(v.Actions, views.Option{Value: target + ".", Label: "Any " + target + " action"})
	}
	for _, a := range auditActionNames() {
		v.Actions = append(v.Actions, views.Option{Value: a, Label: a})
	}
	status := http.StatusOK
	if problem != "" {
		v.Error, status = problem, http.StatusBadRequest
		return render(c, status, views.AuditPage(s.page(c, "Audit log", "audit"), v))
	}
	page, err := s.audit.List(c.Request().Context(), f)
	if errors.Is(err, models.ErrBadCursor) {
		return echo.NewHTTPError(http.StatusBadRequest, "That page link is not valid. Start again from the newest entries.")
	}
	if err != nil {
		return err
	}
	k := s.clock(c)
	for _, e := range page.Entries {
		v.Rows = append(v.Rows, views.AuditRow{ID: e.ID, At: k.view(e.CreatedAt), Actor: e.Actor, IP: e.IP, Action: string(e.Action),
			TargetType: e.TargetType, TargetID: e.TargetID, TargetURL: auditTargetURL(e), Details: e.Details})
	}
	link := func(before string) string {
		next := url.Values{}
		for _, k := range []string{"actor", "action", "target", "from", "till"} {
			if val := q.Get(k); val != "" {
				next.Set(k, val)
			}
		}
		if before != "" {
			next.Set("before", before)
		}
		if len(next) == 0 {
			return "/audit"
		}
		return "/audit?" + next.Encode()
	}
	if page.NextCursor != "" {
		v.NextURL = link(page.NextCursor)
	}
	if f.Before != "" {
		v.NewestURL = link("")
	}
	return render(c, status, views.AuditPage(s.page(c, "Audit log", "audit"), v))
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

// auditEntryJSON is an audit entry as the API shows it.
type auditEntryJSON struct {
	ID        int64     `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Actor     string    `json:"actor"`
	IP        string    `json:"ip"`
	Action    string    `json:"action"`
	Target    struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"target"`
	Details string `json:"details"`
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
	f.Before, f.Limit = q.Get("cursor"), 50
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
		j := auditEntryJSON{ID: e.ID, CreatedAt: e.CreatedAt.UTC(), Actor: e.Actor, IP: e.IP, Action: string(e.Action), Details: e.Details}
		j.Target.Type, j.Target.ID = e.TargetType, e.TargetID
		out.Entries = append(out.Entries, j)
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	return c.JSON(http.StatusOK, out)
}
