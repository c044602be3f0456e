package handlers

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// operatorService is what the sign-in and operator pages need.
type operatorService interface {
	NeedsSetup(ctx context.Context) (bool, error)
	ValidSetupToken(token string) bool
	Setup(ctx context.Context, token, email, password, confirm string) (*models.Operator, error)
	SetRole(ctx context.Context, actorID, id string, role models.Role) (bool, error)
	Authenticate(ctx context.Context, in services.SignIn) (*models.Operator, string, error)
	ChangePassword(ctx context.Context, in services.PasswordChange) error
	Remove(ctx context.Context, actorID, id string) error
	List(ctx context.Context) ([]models.Operator, error)
	Get(ctx context.Context, id string) (*models.Operator, error)
	SetAlertEmail(ctx context.Context, id string, on bool) error
}

// setupForm shows the first-run form to whoever brings the setup URL that
// grconnect printed in its log; once an operator exists the page is gone.
func (s *Server) setupForm(c echo.Context) error {
	if err := s.requireFreshInstall(c); err != nil {
		return err
	}
	token := c.QueryParam("token")
	if !s.operators.ValidSetupToken(token) {
		return render(c, http.StatusForbidden, views.SetupPage(s.page(c, "Set up grconnect", ""), views.SetupForm{NeedToken: true}))
	}
	return render(c, http.StatusOK, views.SetupPage(s.page(c, "Set up grconnect", ""), views.SetupForm{Token: token}))
}

func (s *Server) setup(c echo.Context) error {
	if err := s.requireFreshInstall(c); err != nil {
		return err
	}
	email, token := c.FormValue("email"), c.FormValue("setup_token")
	op, err := s.operators.Setup(c.Request().Context(), token, email, c.FormValue("password"), c.FormValue("password_confirm"))
	if fe, ok := services.AsFieldErrors(err); ok {
		return render(c, http.StatusUnprocessableEntity, views.SetupPage(s.page(c, "Set up grconnect", ""),
			views.SetupForm{Token: token, Email: email, EmailError: fe["email"], PasswordError: fe["password"], ConfirmError: fe["password_confirm"]}))
	}
	switch {
	case errors.Is(err, services.ErrSetupToken):
		s.log.Warn("setup refused: no valid setup token", "ip", c.RealIP())
		return render(c, http.StatusForbidden, views.SetupPage(s.page(c, "Set up grconnect", ""), views.SetupForm{NeedToken: true}))
	case errors.Is(err, services.ErrSetupDone):
		return echo.NewHTTPError(http.StatusNotFound)
	case err != nil:
		return err
	}
	s.log.Info("first operator created", "operator", op.ID)
	if err := s.signIn(c, op, ""); err != nil {
		return err
	}
	return s.redirectWithFlash(c, "/", "success", "Welcome! Next, register your GetResponse app.")
}

func (s *Server) requireFreshInstall(c echo.Context) error {
	fresh, err := s.operators.NeedsSetup(c.Request().Context())
	if err != nil {
		return err
	}
	if !fresh {
		return echo.NewHTTPError(http.StatusNotFound, "Setup is complete. Sign in instead.")
	}
	return nil
}

func (s *Server) loginForm(c echo.Context) error {
	if fresh, err := s.operators.NeedsSetup(c.Request().Context()); err != nil {
		return err
	} else if fresh {
		return c.Redirect(http.StatusSeeOther, "/setup")
	}
	if currentSession(c) != nil {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	f := views.LoginForm{Next: safeNext(c.QueryParam("next"))}
	if c.QueryParam("signed_out") == "1" {
		f.Notice = "You are signed out."
	}
	return render(c, http.StatusOK, views.LoginPage(s.page(c, "Sign in", ""), f))
}

func (s *Server) login(c echo.Context) error {
	email, next := c.FormValue("email"), safeNext(c.FormValue("next"))
	in := services.SignIn{Email: email, Password: c.FormValue("password"), IP: c.RealIP()}
	if ck, err := c.Cookie(s.cookies.browser); err == nil {
		in.KnownBrowser = ck.Value
	}
	op, knownBrowser, err := s.operators.Authenticate(c.Request().Context(), in)
	var throttled *services.ThrottledError
	switch {
	case errors.As(err, &throttled):
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(throttled.RetryAfter.Seconds())+1))
		s.log.Warn("sign-in throttled", "ip", c.RealIP())
		return render(c, http.StatusTooManyRequests, views.LoginPage(s.page(c, "Sign in", ""),
			views.LoginForm{Email: email, Next: next, Error: throttled.Error()}))
	case errors.Is(err, services.ErrInvalidCredentials):
		s.log.Info("sign-in failed", "ip", c.RealIP())
		return render(c, http.StatusUnauthorized, views.LoginPage(s.page(c, "Sign in", ""),
			views.LoginForm{Email: email, Next: next, Error: "Wrong email or password."}))
	case err != nil:
		return err
	}
	if err := s.signIn(c, op, knownBrowser); err != nil {
		return err
	}
	s.log.Info("operator signed in", "operator", op.ID)
	return c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) logout(c echo.Context) error {
	if err := s.signOut(c); err != nil {
		return err
	}
	// The session (and any flash in it) is gone: the sign-in page says it from the URL.
	return c.Redirect(http.StatusSeeOther, "/login?signed_out=1")
}

func (s *Server) passwordForm(c echo.Context) error {
	return render(c, http.StatusOK, views.PasswordPage(s.page(c, "Change password", ""), views.PasswordForm{}))
}

func (s *Server) changePassword(c echo.Context) error {
	op, rs := currentOperator(c), currentSession(c)
	err := s.operators.ChangePassword(c.Request().Context(), services.PasswordChange{
		OperatorID: op.ID, KeepSessionID: rs.sess.ID, IP: c.RealIP(),
		Current: c.FormValue("current"), Password: c.FormValue("password"), Confirm: c.FormValue("password_confirm"),
	})
	var throttled *services.ThrottledError
	if errors.As(err, &throttled) {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(throttled.RetryAfter.Seconds())+1))
		s.log.Warn("password change throttled", "operator", op.ID, "ip", c.RealIP())
		return render(c, http.StatusTooManyRequests, views.PasswordPage(s.page(c, "Change password", ""),
			views.PasswordForm{CurrentError: throttled.Error()}))
	}
	if fe, ok := services.AsFieldErrors(err); ok {
		return render(c, http.StatusUnprocessableEntity, views.PasswordPage(s.page(c, "Change password", ""),
			views.PasswordForm{CurrentError: fe["current"], PasswordError: fe["password"], ConfirmError: fe["password_confirm"]}))
	}
	if err != nil {
		return err
	}
	s.log.Info("password changed; other sessions ended", "operator", op.ID)
	return s.redirectWithFlash(c, "/operators", "success", "Your password was changed. Your other sessions have ended.")
}
