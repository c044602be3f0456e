package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

func (s *Server) listOperators(c echo.Context) error {
	return s.renderOperators(c, http.StatusOK, "", nil)
}

func (s *Server) renderOperators(c echo.Context, status int, email string, errs map[string]string) error {
	ops, err := s.operators.List(c.Request().Context())
	if err != nil {
		return err
	}
	me, k := currentOperator(c), s.clock(c)
	v := views.OperatorsView{Email: email, Errors: errs, MailEnabled: s.alerts != nil && s.alerts.Enabled()}
	for _, o := range ops {
		v.Operators = append(v.Operators, operatorRow(o, me, k))
		if me != nil && o.ID == me.ID {
			v.MyAlerts = o.AlertEmail
		}
	}
	return render(c, status, views.OperatorsPage(s.page(c, "Operators", "operators"), v))
}

func operatorRow(o models.Operator, me *models.Operator, k clock) views.OperatorRow {
	row := views.OperatorRow{ID: o.ID, Email: o.Email, Created: k.view(o.CreatedAt), You: me != nil && o.ID == me.ID, Alerts: o.AlertEmail}
	if o.LastLoginAt != nil {
		row.LastLogin = k.view(*o.LastLoginAt)
	}
	return row
}

// setAlerts turns the signed-in operator's alert e-mails on or off.
func (s *Server) setAlerts(c echo.Context) error {
	on := c.FormValue("alerts") == "on"
	if v := c.FormValue("alerts"); v != "on" && v != "off" {
		return echo.NewHTTPError(http.StatusBadRequest, "Choose on or off.")
	}
	if err := s.operators.SetAlertEmail(c.Request().Context(), currentOperator(c).ID, on); err != nil {
		return err
	}
	kind, msg := "success", "You will get alert e-mails."
	switch {
	case !on:
		msg = "You will get no more alert e-mails."
	case s.alerts == nil || !s.alerts.Enabled():
		// Saved, but said as it is: nothing is sent without a mail server.
		kind, msg = "warning", "Saved, but no alert e-mail is sent yet: grconnect has no mail server (GRCONNECT_SMTP_URL is not set). Once it is set, you get them; until then alerts show on the dashboard and as webhooks."
	}
	return s.redirectWithFlash(c, "/operators", kind, msg)
}

func (s *Server) createOperator(c echo.Context) error {
	email := c.FormValue("email")
	if r, err := s.reauthenticate(c); err != nil {
		return err
	} else if !r.confirmed {
		return s.renderOperators(c, r.refuse(c), email, nil)
	}
	op, err := s.operators.Create(c.Request().Context(), email, c.FormValue("password"), c.FormValue("password_confirm"))
	if fe, ok := services.AsFieldErrors(err); ok {
		return s.renderOperators(c, http.StatusUnprocessableEntity, email, fe)
	}
	if err != nil {
		return err
	}
	s.log.Info("operator added", "operator", op.ID, "by", currentOperator(c).ID)
	return s.redirectWithFlash(c, "/operators", "success", op.Email+" can now sign in.")
}

func (s *Server) confirmRemoveOperator(c echo.Context) error {
	op, err := s.operators.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.OperatorRemovePage(s.page(c, "Remove operator", "operators"), operatorRow(*op, currentOperator(c), s.clock(c))))
}

func (s *Server) removeOperator(c echo.Context) error {
	me := currentOperator(c)
	target, err := s.operators.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if r, err := s.reauthenticate(c); err != nil {
		return err
	} else if !r.confirmed {
		return render(c, r.refuse(c), views.OperatorRemovePage(s.page(c, "Remove operator", "operators"), operatorRow(*target, me, s.clock(c))))
	}
	err = s.operators.Remove(c.Request().Context(), me.ID, target.ID)
	switch {
	case errors.Is(err, services.ErrCannotRemoveSelf):
		return s.redirectWithFlash(c, "/operators", "error", "You cannot remove yourself. Ask another operator.")
	case errors.Is(err, models.ErrLastOperator):
		return s.redirectWithFlash(c, "/operators", "error", "The last operator cannot be removed.")
	case err != nil:
		return err
	}
	s.log.Info("operator removed", "operator", target.ID, "by", me.ID)
	return s.redirectWithFlash(c, "/operators", "success", target.Email+" was removed and signed out.")
}
