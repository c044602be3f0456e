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
	Setup(ctx context.Context, email, password, confirm string) (*models.Operator, error)
	Create(ctx context.Context, email, password, confirm string) (*models.Operator, error)
	Authenticate(ctx context.Context, email, password, ip string) (*models.Operator, error)
	ChangePassword(ctx context.Context, id, current, password, confirm string) (int, error)
	Remove(ctx context.Context, actorID, id string) error
	List(ctx context.Context) ([]models.Operator, error)
	Get(ctx context.Context, id string) (*models.Operator, error)
}

// setupForm shows the first-run form; once an operator exists the page is gone.
func (s *Server) setupForm(c echo.Context) error {
	if err := s.requireFreshInstall(c); err != nil {
		return err
	}
	return render(c, http.StatusOK, views.SetupPage(s.page(c, "Set up grconnect", ""), views.SetupForm{}))
}

func (s *Server) setup(c echo.Context) error {
	if err := s.requireFreshInstall(c); err != nil {
		return err
	}
	email := c.FormValue("email")
	op, err := s.operators.Setup(c.Request().Context(), email, c.FormValue("password"), c.FormValue("password_confirm"))
	if fe, ok := services.AsFieldErrors(err); ok {
		return render(c, http.StatusUnprocessableEntity, views.SetupPage(s.page(c, "Set up grconnect", ""),
			views.SetupForm{Email: email, EmailError: fe["email"], PasswordError: fe["password"], ConfirmError: fe["password_confirm"]}))
	}
	if errors.Is(err, services.ErrSetupDone) {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	if err != nil {
		return err
	}
	s.log.Info("first operator created", "operator", op.ID)
	if err := s.sessions.signIn(c, op); err != nil {
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
	if op, err := s.sessions.operator(c); err == nil && op != nil {
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
	op, err := s.operators.Authenticate(c.Request().Context(), email, c.FormValue("password"), c.RealIP())
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
	if err := s.sessions.signIn(c, op); err != nil {
		return err
	}
	s.log.Info("operator signed in", "operator", op.ID)
	return c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) logout(c echo.Context) error {
	if err := s.sessions.signOut(c); err != nil {
		return err
	}
	// The session (and any flash in it) is gone: the sign-in page says it from the URL.
	return c.Redirect(http.StatusSeeOther, "/login?signed_out=1")
}

func (s *Server) passwordForm(c echo.Context) error {
	return render(c, http.StatusOK, views.PasswordPage(s.page(c, "Change password", ""), views.PasswordForm{}))
}

func (s *Server) changePassword(c echo.Context) error {
	op := currentOperator(c)
	epoch, err := s.operators.ChangePassword(c.Request().Context(), op.ID, c.FormValue("current"), c.FormValue("password"), c.FormValue("password_confirm"))
	if fe, ok := services.AsFieldErrors(err); ok {
		return render(c, http.StatusUnprocessableEntity, views.PasswordPage(s.page(c, "Change password", ""),
			views.PasswordForm{CurrentError: fe["current"], PasswordError: fe["password"], ConfirmError: fe["password_confirm"]}))
	}
	if err != nil {
		return err
	}
	if err := s.sessions.setEpoch(c, epoch); err != nil {
		return err
	}
	return s.redirectWithFlash(c, "/operators", "success", "Your password was changed. Your other sessions have ended.")
}
