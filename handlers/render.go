package handlers

import (
	"net/http"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/services/infra/buildinfo"
	"github.com/grconnect/grconnect/views"
)

// page builds the layout's view model for the current request.
func (s *Server) page(c echo.Context, title, nav string) views.Page {
	p := views.Page{
		Title:  title,
		Nav:    nav,
		Demo:   s.demo,
		Assets: views.Assets{CSS: s.assets.URL("app.css"), JS: s.assets.URL("app.js"), Favicon: s.assets.URL("favicon.svg")},
	}
	p.CSRF, _ = c.Get(ctxCSRF).(string)
	if op := currentOperator(c); op != nil {
		p.Operator = op.Email
		p.Version = buildinfo.Short()
		p.Storage = s.storageWarning()
		p.AppAlerts = s.appAlerts(c)
		p.DetectZone = op.TimeZone == "" // the script reports the browser's zone once
		p.Reauth = s.reauthView(c)
		p.Viewer = !op.IsAdmin()
	}
	if kind, msg, err := s.popFlash(c); err == nil {
		p.FlashKind, p.Flash = kind, msg
	} else {
		s.log.Warn("flash", "error", err)
	}
	return p
}

// render writes a component through a buffer, so a failed render never sends half a page.
func render(c echo.Context, status int, comp templ.Component) error {
	buf := templ.GetBuffer()
	defer templ.ReleaseBuffer(buf)
	if err := comp.Render(c.Request().Context(), buf); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// redirectWithFlash stores a message for the next page and redirects (303, for Post/Redirect/Get).
func (s *Server) redirectWithFlash(c echo.Context, to, kind, msg string) error {
	if err := s.setFlash(c, kind, msg); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, to)
}
