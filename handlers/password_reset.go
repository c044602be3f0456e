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

// passwordResets is what the password reset pages need of the operators.
type passwordResets interface {
	CreatePasswordReset(ctx context.Context, email string, by *models.Operator) (*services.PasswordResetLink, error)
	OpenPasswordReset(ctx context.Context, token string) (*models.Operator, error)
	ResetPassword(ctx context.Context, token, password, confirm string) (*models.Operator, error)
}

// resetTTLText says how long a reset link works, in words.
var resetTTLText = everyText(services.PasswordResetTTL)

// resetURL is where a password reset link's token is used.
func (s *Server) resetURL(token string) string { return s.cfg.BaseURL + "/reset-password/" + token }

// confirmResetOperator asks before making a reset link for another operator.
func (s *Server) confirmResetOperator(c echo.Context) error {
	op, err := s.operators.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if op.ID == currentOperator(c).ID {
		return c.Redirect(http.StatusSeeOther, "/account/password")
	}
	return render(c, http.StatusOK, views.OperatorResetPage(s.page(c, "Reset a password", "operators"), operatorRow(*op, currentOperator(c), s.clock(c))))
}

// resetOperator makes a one-time reset link for another operator and shows it,
// once, in its own answer (never through the session or a redirect).
func (s *Server) resetOperator(c echo.Context) error {
	ctx := c.Request().Context()
	me := currentOperator(c)
	op, err := s.operators.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	if op.ID == me.ID {
		return c.Redirect(http.StatusSeeOther, "/account/password")
	}
	if r, err := s.reauthenticate(c); err != nil {
		return err
	} else if !r.confirmed {
		return render(c, r.refuse(c), views.OperatorResetPage(s.page(c, "Reset a password", "operators"), operatorRow(*op, me, s.clock(c))))
	}
	link, err := s.resets.CreatePasswordReset(ctx, op.Email, me)
	if err != nil {
		return err
	}
	s.log.Info("password reset link created", "operator", op.ID, "by", me.ID)
	v := views.ResetLinkView{Email: op.Email, URL: s.resetURL(link.Token), Expires: s.clock(c).view(link.ExpiresAt)}
	return render(c, http.StatusOK, views.OperatorResetLinkPage(s.page(c, "Password reset link", "operators"), v))
}

// resetForm is the public page a reset link opens.
func (s *Server) resetForm(c echo.Context) error {
	op, err := s.resets.OpenPasswordReset(c.Request().Context(), c.Param("token"))
	if err != nil {
		return s.resetProblem(c, err)
	}
	return render(c, http.StatusOK, views.PasswordResetPage(s.publicPage(c, "Choose a new password"), views.ResetForm{Email: op.Email, Token: c.Param("token")}))
}

// resetPassword sets the new password, uses the link up and signs the operator in.
func (s *Server) resetPassword(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("token")
	op, err := s.resets.ResetPassword(ctx, token, c.FormValue("password"), c.FormValue("password_confirm"))
	if fe, ok := services.AsFieldErrors(err); ok {
		who, oerr := s.resets.OpenPasswordReset(ctx, token)
		if oerr != nil {
			return s.resetProblem(c, oerr)
		}
		return render(c, http.StatusUnprocessableEntity, views.PasswordResetPage(s.publicPage(c, "Choose a new password"),
			views.ResetForm{Email: who.Email, Token: token, PasswordError: fe["password"], ConfirmError: fe["password_confirm"]}))
	}
	if err != nil {
		return s.resetProblem(c, err)
	}
	s.log.Info("password reset", "operator", op.ID)
	if err := s.signIn(c, op, ""); err != nil {
		return err
	}
	return s.redirectWithFlash(c, "/", "success", "Your new password is saved, and you are signed in.")
}

func (s *Server) resetProblem(c echo.Context, err error) error {
	if errors.Is(err, services.ErrResetLinkInvalid) {
		return echo.NewHTTPError(http.StatusGone, "This password reset link does not work any more: it was used, replaced by a newer one, retired when the account's password or sessions changed, or is older than "+resetTTLText+". Ask another operator for a new one.")
	}
	return err
}
