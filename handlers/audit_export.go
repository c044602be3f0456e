package handlers

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
)

// auditCSVHeader names the CSV export's columns.
var auditCSVHeader = []string{"id", "created_at", "actor", "ip", "action", "action_label", "target_type", "target_id", "target_name", "details"}

// streamAudit writes every entry f selects (newest first, from f.Before on) as
// CSV or JSON lines, read from the database in batches and flushed as it goes:
// a year of entries never sits in memory. A failure once the answer has begun
// aborts the connection, so a client never takes a cut-off export for a whole one.
func (s *Server) streamAudit(c echo.Context, format string, f models.AuditFilter) error {
	var (
		contentType string
		write       func(w io.Writer) (func(models.AuditEntry) error, func() error)
	)
	switch format {
	case "csv":
		contentType = "text/csv; charset=utf-8"
		write = func(w io.Writer) (func(models.AuditEntry) error, func() error) {
			cw := csv.NewWriter(w)
			header := true
			return func(e models.AuditEntry) error {
					if header {
						header = false
						if err := cw.Write(auditCSVHeader); err != nil {
							return err
						}
					}
					return cw.Write(auditCSVRecord(e))
				}, func() error {
					if header {
						if err := cw.Write(auditCSVHeader); err != nil {
							return err
						}
					}
					cw.Flush()
					return cw.Error()
				}
		}
	case "jsonl":
		contentType = "application/jsonl; charset=utf-8"
		write = func(w io.Writer) (func(models.AuditEntry) error, func() error) {
			enc := json.NewEncoder(w)
			return func(e models.AuditEntry) error { return enc.Encode(toAuditJSON(e)) }, func() error { return nil }
		}
	default:
		if strings.HasPrefix(c.Path(), "/api/") {
			return services.FieldErrors{"format": "Use csv or jsonl (or json, the default, for pages)."}
		}
		return echo.NewHTTPError(http.StatusBadRequest, "Choose the export's format: csv or jsonl.")
	}
	if f.Before != "" { // a bad cursor is refused before the answer begins
		if _, err := s.audit.List(c.Request().Context(), models.AuditFilter{Before: f.Before, Limit: 1}); errors.Is(err, models.ErrBadCursor) {
			return err
		}
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, contentType)
	h.Set(echo.HeaderContentDisposition, `attachment; filename="grconnect-audit-`+time.Now().UTC().Format("20060102-150405")+`.`+format+`"`)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	add, finish := write(c.Response())
	n := 0
	err := s.audit.Each(c.Request().Context(), f, func(e models.AuditEntry) error {
		if err := add(e); err != nil {
			return err
		}
		if n++; n%500 == 0 {
			c.Response().Flush()
		}
		return nil
	})
	if err == nil {
		err = finish()
	}
	if err != nil {
		s.log.Warn("audit export cut short", "format", format, "entries", n, "error", err, "request_id", requestIDOf(c))
		panic(http.ErrAbortHandler) // the client sees a broken transfer, not a short file
	}
	c.Response().Flush()
	return nil
}

// auditCSVRecord is one entry as a CSV row. Text that a spreadsheet would run as
// a formula (an app named "=HYPERLINK(…)") is prefixed with an apostrophe.
func auditCSVRecord(e models.AuditEntry) []string {
	return []string{strconv.FormatInt(e.ID, 10), e.CreatedAt.UTC().Format(time.RFC3339), csvText(e.Actor), csvText(e.IP),
		string(e.Action), e.Action.Label(), e.TargetType, csvText(e.TargetID), csvText(e.TargetName), csvText(e.Details)}
}

func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
