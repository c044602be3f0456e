package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// invitePage is the public page an invitation link opens: the invitee chooses
// their password.
func (s *Server) invitePage(c echo.Context) error {
	inv, err := s.invitations.Open(c.Request().Context(), c.Param("token"))
	if err != nil {
		return s.inviteProblem(err)
	}
	return render(c, http.StatusOK, views.InvitationPage(s.publicPage(c, "Join grconnect"), views.InvitationForm{
		Email: inv.Email, Role: inv.Role.Label(), Can: inv.Role.YouCan(), InvitedBy: inv.CreatedBy, Token: c.Param("token"),
		Expires: s.clock(c).view(inv.ExpiresAt)}))
}

// acceptInvitation creates the operator with the password they chose, uses the
// invitation up and signs them in.
func (s *Server) acceptInvitation(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("token")
	op, err := s.invitations.Accept(ctx, token, c.FormValue("password"), c.FormValue("password_confirm"))
	if fe, ok := services.AsFieldErrors(err); ok {
		inv, oerr := s.invitations.Open(ctx, token)
		if oerr != nil {
			return s.inviteProblem(oerr)
		}
		return render(c, http.StatusUnprocessableEntity, views.InvitationPage(s.publicPage(c, "Join grconnect"), views.InvitationForm{
			Email: inv.Email, Role: inv.Role.Label(), Can: inv.Role.YouCan(), InvitedBy: inv.CreatedBy, Token: token,
			Expires: s.clock(c).view(inv.ExpiresAt), EmailError: fe["email"], PasswordError: fe["password"], ConfirmError: fe["password_confirm"]}))
	}
	if err != nil {
		return s.inviteProblem(err)
	}
	s.log.Info("invitation accepted", "operator", op.ID, "role", op.Role)
	if err := s.signIn(c, op, ""); err != nil {
		return err
	}
	return s.redirectWithFlash(c, "/", "success", "Welcome to grconnect. You joined as "+op.Role.Label()+": you "+op.Role.YouCan()+".")
}

func (s *Server) inviteProblem(err error) error {
	if errors.Is(err, services.ErrInvitationInvalid) {
		return echo.NewHTTPError(http.StatusGone, "This invitation does not work any more: it was used, revoked or replaced by a newer one, or is older than "+
			everyText(services.InvitationTTL)+". Ask an admin of your grconnect for a new one.")
	}
	return err
}
