package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/views"
)

// ctxIdentityForm carries a refused X-Parent-Login form to the re-rendered page.
const ctxIdentityForm = "grconnect.identity_form"

func (s *Server) setParentLogin(c echo.Context) error {
	ctx := c.Request().Context()
	conn, err := s.connections.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	login := c.FormValue("parent_login")
	err = s.connect.SetParentLogin(ctx, conn.ID, login, currentOperator(c).Email)
	if fe, ok := models.AsFieldErrors(err); ok {
		c.Set(ctxIdentityForm, views.IdentityView{ParentLogin: login, Error: fe["parent_login"]})
		return s.renderConnection(c, http.StatusUnprocessableEntity, nil, "")
	}
	if err != nil {
		return err
	}
	return s.redirectWithFlash(c, "/connections/"+conn.ID+"#identity", "success", "X-Parent-Login saved.")
}
