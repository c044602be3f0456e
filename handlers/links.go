package handlers

import (
	"errors"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/static"
	"github.com/grconnect/grconnect/views"
)

// linkRow prepares a connect link for display.
func linkRow(l services.Link, k clock) views.LinkRow {
	r := views.LinkRow{ID: l.ID, AppID: l.AppID, URL: l.URL, CustomerRef: l.CustomerRef, ReturnURL: l.ReturnURL, State: l.State(k.now),
		Expires: k.view(l.ExpiresAt), CreatedBy: l.CreatedBy, Reconnect: l.ConnectionID != nil,
		MaxDomain: l.MaxDomain, AllowTransfer: l.AllowTransfer, UsedAccount: l.UsedAccount, RevokedBy: l.RevokedBy}
	if l.UsedAt != nil {
		t := k.view(*l.UsedAt)
		r.Used = &t
	}
	if l.UsedConnectionID != nil {
		r.UsedConnectionID = *l.UsedConnectionID
	}
	if l.RevokedAt != nil {
		t := k.view(*l.RevokedAt)
		r.Revoked = &t
	}
	return r
}

// buttonSnippet is the HTML an operator pastes into their own site: a styled link
// that needs no script and no stylesheet of ours.
func buttonSnippet(linkURL string) string {
	return fmt.Sprintf(`<a href="%s" rel="noopener" style="display:inline-flex;align-items:center;gap:8px;padding:10px 18px;border-radius:8px;background:#0077b6;color:#fff;font:600 15px/1.2 system-ui,sans-serif;text-decoration:none">Connect GetResponse</a>`, html.EscapeString(linkURL))
}

func (s *Server) createLink(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.apps.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	form := views.LinkForm{CustomerRef: c.FormValue("customer_ref"), ReturnURL: c.FormValue("return_url"), TTLDays: c.FormValue("ttl_days"),
		MaxDomain: c.FormValue("max_domain"), AllowTransfer: c.FormValue("allow_transfer") == "yes"}
	in := services.LinkInput{AppID: app.ID, CustomerRef: form.CustomerRef, ReturnURL: form.ReturnURL, CreatedBy: currentOperator(c).Email,
		MaxDomain: form.MaxDomain, AllowTransfer: form.AllowTransfer}
	ttlProblem := ""
	if form.TTLDays != "" {
		days, err := strconv.ParseFloat(strings.TrimSpace(form.TTLDays), 64)
		if err != nil || days <= 0 || days > 90 {
			// The service refuses a negative TTL too: it still checks, and reports,
			// every other field, so the form shows all its problems at once.
			ttlProblem, in.TTL = "Enter a number of days from 0.01 to 90.", -1
		} else {
			in.TTL = time.Duration(days * float64(24*time.Hour))
		}
	}
	link, err := s.connect.CreateLink(ctx, in)
	if fe, ok := services.AsFieldErrors(err); ok {
		if msg, ok := fe["ttl"]; ok {
			fe["ttl_days"] = msg
		}
		if ttlProblem != "" {
			fe["ttl_days"] = ttlProblem
		}
		form.Errors = fe
		return s.renderApp(c, http.StatusUnprocessableEntity, app.ID, form)
	}
	if err != nil {
		return err
	}
	return s.redirectWithFlash(c, "/apps/"+app.ID+"/links/"+link.ID, "success", "Connect link created for "+link.CustomerRef+".")
}

func (s *Server) showLink(c echo.Context) error {
	link, err := s.connect.GetLink(c.Request().Context(), c.Param("link"))
	if err != nil {
		return err
	}
	if link.AppID != c.Param("id") || link.App == nil {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	v := views.LinkView{Link: linkRow(*link, s.clock(c)), AppName: link.App.Name, Snippet: buttonSnippet(link.URL),
		PopupSnippet: s.popupSnippet(link.URL), ScriptURL: s.cfg.BaseURL + static.ConnectScriptPath}
	return render(c, http.StatusOK, views.LinkPage(s.page(c, "Connect link", "apps"), v))
}

func (s *Server) revokeLink(c echo.Context) error {
	ctx := c.Request().Context()
	link, err := s.connect.GetLink(ctx, c.Param("link"))
	if err != nil {
		return err
	}
	if link.AppID != c.Param("id") {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	to := "/apps/" + link.AppID + "/links/" + link.ID
	if _, err := s.connect.RevokeLink(ctx, link.ID, currentOperator(c).Email); errors.Is(err, services.ErrLinkUsed) {
		return s.redirectWithFlash(c, to, "error", "This link was already used, so there is nothing to revoke.")
	} else if err != nil {
		return err
	}
	s.log.Info("connect link revoked", "link", link.ID, "by", currentOperator(c).ID)
	return s.redirectWithFlash(c, to, "success", "Link revoked: it no longer connects an account.")
}

// popupSnippet is the HTML for the operator's site that opens the link in
// grconnect's connect popup (the page still works without the script).
func (s *Server) popupSnippet(linkURL string) string {
	return fmt.Sprintf("<script src=\"%s\" defer></script>\n<a href=\"%s\" data-grconnect>Connect GetResponse</a>",
		html.EscapeString(s.cfg.BaseURL+static.ConnectScriptPath), html.EscapeString(linkURL))
}
