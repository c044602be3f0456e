package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// invitationService is what the operators page and the invitation page need.
type invitationService interface {
	Create(ctx context.Context, email string, role models.Role, by *models.Operator) (*services.NewInvitation, error)
	Pending(ctx context.Context) ([]models.Invitation, error)
	Revoke(ctx context.Context, id, by string) (*models.Invitation, error)
	Open(ctx context.Context, token string) (*models.Invitation, error)
	Accept(ctx context.Context, token, password, confirm string) (*models.Operator, error)
	MailEnabled() bool
}

func (s *Server) listOperators(c echo.Context) error {
	return s.renderOperators(c, http.StatusOK, inviteForm{Role: string(models.RoleViewer)})
}

// inviteForm is the invitation form's input and problems.
type inviteForm struct {
	Email, Role string
	Errors      map[string]string
}

func (s *Server) renderOperators(c echo.Context, status int, form inviteForm) error {
	ctx := c.Request().Context()
	ops, err := s.operators.List(ctx)
	if err != nil {
		return err
	}
	pending, err := s.invitations.Pending(ctx)
	if err != nil {
		return err
	}
	me, k := currentOperator(c), s.clock(c)
	v := views.OperatorsView{Email: form.Email, Role: form.Role, Errors: form.Errors, Roles: roleOptions(),
		MailEnabled: s.alerts != nil && s.alerts.Enabled(), InviteByMail: s.invitations.MailEnabled(),
		InvitationTTL: everyText(services.InvitationTTL)}
	for _, o := range ops {
		v.Operators = append(v.Operators, operatorRow(o, me, k))
		if o.IsAdmin() {
			v.Admins++
		}
		if me != nil && o.ID == me.ID {
			v.MyAlerts = o.AlertEmail
		}
	}
	for _, inv := range pending {
		v.Invitations = append(v.Invitations, views.InvitationRow{ID: inv.ID, Email: inv.Email, Role: inv.Role.Label(),
			InvitedBy: inv.CreatedBy, Created: k.view(inv.CreatedAt), Expires: k.view(inv.ExpiresAt)})
	}
	return render(c, status, views.OperatorsPage(s.page(c, "Operators", "operators"), v))
}

// roleOptions are the roles a form offers, with what each may do.
func roleOptions() []views.Option {
	var out []views.Option
	for _, r := range models.Roles {
		out = append(out, views.Option{Value: string(r), Label: r.Label() + ": " + r.Can()})
	}
	return out
}

func operatorRow(o models.Operator, me *models.Operator, k clock) views.OperatorRow {
	row := views.OperatorRow{ID: o.ID, Email: o.Email, Created: k.view(o.CreatedAt), You: me != nil && o.ID == me.ID,
		Alerts: o.AlertEmail, Role: string(o.Role), RoleLabel: o.Role.Label()}
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

// createOperator invites an operator: a single-use link with which they choose
// their own password. It is e-mailed when grconnect has a mail server, else shown
// once in this answer (never through the session or a redirect).
func (s *Server) createOperator(c echo.Context) error {
	form := inviteForm{Email: c.FormValue("email"), Role: c.FormValue("role")}
	if r, err := s.reauthenticate(c); err != nil {
		return err
	} else if !r.confirmed {
		return s.renderOperators(c, r.refuse(c), form)
	}
	me := currentOperator(c)
	inv, err := s.invitations.Create(c.Request().Context(), form.Email, models.Role(form.Role), me)
	if fe, ok := services.AsFieldErrors(err); ok {
		form.Errors = fe
		return s.renderOperators(c, http.StatusUnprocessableEntity, form)
	}
	if err != nil {
		return err
	}
	s.log.Info("operator invited", "invitation", inv.Invitation.ID, "by", me.ID, "mailed", inv.Mailed)
	v := views.InvitedView{Email: inv.Invitation.Email, Role: inv.Invitation.Role.Label(), Mailed: inv.Mailed,
		MailProblem: inv.MailProblem, Expires: s.clock(c).view(inv.Invitation.ExpiresAt)}
	if !inv.Mailed {
		v.URL = inv.URL // shown once; when e-mailed, only the invitee holds it
	}
	return render(c, http.StatusOK, views.OperatorInvitedPage(s.page(c, "Invitation made", "operators"), v))
}

// revokeInvitation withdraws an open invitation.
func (s *Server) revokeInvitation(c echo.Context) error {
	inv, err := s.invitations.Revoke(c.Request().Context(), c.Param("id"), currentOperator(c).Email)
	if errors.Is(err, models.ErrNotFound) {
		return s.redirectWithFlash(c, "/operators", "error", "That invitation was already used, revoked or replaced.")
	}
	if err != nil {
		return err
	}
	s.log.Info("invitation revoked", "invitation", inv.ID, "by", currentOperator(c).ID)
	return s.redirectWithFlash(c, "/operators", "success", "The invitation of "+inv.Email+" was revoked; its link no longer works.")
}

// roleForm asks which role another operator should have.
func (s *Server) roleForm(c echo.Context) error {
	op, err := s.operators.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if op.ID == currentOperator(c).ID {
		return s.redirectWithFlash(c, "/operators", "error", "You cannot change your own role: another admin can.")
	}
	return s.renderRoleForm(c, http.StatusOK, op, "")
}

func (s *Server) renderRoleForm(c echo.Context, status int, op *models.Operator, problem string) error {
	v := views.RoleFormView{Operator: operatorRow(*op, currentOperator(c), s.clock(c)), Roles: roleOptions(), Error: problem}
	return render(c, status, views.OperatorRolePage(s.page(c, "Change a role", "operators"), v))
}

// setRole gives another operator a role; it needs the admin's password, and never
// leaves the install without an admin.
func (s *Server) setRole(c echo.Context) error {
	ctx := c.Request().Context()
	me := currentOperator(c)
	op, err := s.operators.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	if r, err := s.reauthenticate(c); err != nil {
		return err
	} else if !r.confirmed {
		return s.renderRoleForm(c, r.refuse(c), op, "")
	}
	role := models.Role(c.FormValue("role"))
	changed, err := s.operators.SetRole(ctx, me.ID, op.ID, role)
	if fe, ok := services.AsFieldErrors(err); ok {
		return s.renderRoleForm(c, http.StatusUnprocessableEntity, op, fe["role"])
	}
	switch {
	case errors.Is(err, services.ErrCannotChangeOwnRole):
		return s.redirectWithFlash(c, "/operators", "error", "You cannot change your own role: another admin can.")
	case errors.Is(err, models.ErrLastAdmin):
		return s.redirectWithFlash(c, "/operators", "error", op.Email+" is the last admin: make another operator an admin first.")
	case err != nil:
		return err
	case !changed:
		return s.redirectWithFlash(c, "/operators", "success", op.Email+" already is "+role.Label()+".")
	}
	s.log.Info("operator role changed", "operator", op.ID, "role", role, "by", me.ID)
	return s.redirectWithFlash(c, "/operators", "success", op.Email+" is now "+role.Label()+": "+role.Can()+".")
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
	case errors.Is(err, models.ErrLastAdmin):
		return s.redirectWithFlash(c, "/operators", "error", target.Email+" is the last admin and cannot be removed: make another operator an admin first.")
	case err != nil:
		return err
	}
	s.log.Info("operator removed", "operator", target.ID, "by", me.ID)
	return s.redirectWithFlash(c, "/operators", "success", target.Email+" was removed and signed out.")
}
