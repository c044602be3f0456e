package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// connectService is what the customer's connect flow and the link pages need.
type connectService interface {
	CreateLink(ctx context.Context, in services.LinkInput) (*services.Link, error)
	OpenLink(ctx context.Context, token string) (*services.Link, error)
	RecentLinks(ctx context.Context, appID, connectionID string, limit int) ([]services.Link, error)
	GetLink(ctx context.Context, id string) (*services.Link, error)
	Start(ctx context.Context, token, browserNonce string) (string, error)
	Callback(ctx context.Context, in services.CallbackInput) (*services.CallbackResult, error)
	RedirectURL() string
}

// The OAuth browser cookie (cookieNames.oauth) binds an authorization to the
// browser that started it. It is HttpOnly and SameSite=Lax: GetResponse's redirect
// back is a top-level GET, which carries Lax cookies.

func (s *Server) connectPage(c echo.Context) error {
	link, err := s.connect.OpenLink(c.Request().Context(), c.Param("token"))
	if err != nil {
		return s.linkProblem(c, link, err)
	}
	noReferrer(c)
	allowFormRedirect(c, link.App.AuthURL)
	return render(c, http.StatusOK, views.ConnectPage(s.publicPage(c, "Connect GetResponse"), views.ConnectView{
		AppName: link.App.Name, Token: c.Param("token"), Reconnect: link.ConnectionID != nil, Demo: link.App.Demo,
		ExpiresAt: formatTime(link.ExpiresAt),
	}))
}

// linkProblem renders the page for an unknown, expired or used link.
func (s *Server) linkProblem(c echo.Context, link *services.Link, err error) error {
	v := views.ProblemView{Heading: "This connect link does not work", Message: "Ask the company that sent it to you for a new one."}
	status := http.StatusNotFound
	switch {
	case errors.Is(err, services.ErrLinkNotFound):
		v.Message = "This connect link does not exist. Check that you copied all of it, or ask the company that sent it for a new one."
	case errors.Is(err, services.ErrLinkExpired):
		status = http.StatusGone
		v.Heading = "This connect link has expired"
		v.Message = "Links are valid for a limited time. Ask " + link.App.Name + " for a new one."
	case errors.Is(err, services.ErrLinkUsed):
		status = http.StatusGone
		v.Heading = "This connect link was already used"
		v.Message = "Your GetResponse account was connected with it. If you need to connect again, ask " + link.App.Name + " for a new link."
	default:
		return err
	}
	noReferrer(c)
	return render(c, status, views.ProblemPage(s.publicPage(c, v.Heading), v))
}

func (s *Server) startConnect(c echo.Context) error {
	nonce := ""
	if ck, err := c.Cookie(s.cookies.oauth); err == nil && len(ck.Value) >= 32 {
		nonce = ck.Value // several flows in one browser share its nonce
	} else {
		nonce = models.RandomToken(20)
	}
	target, err := s.connect.Start(c.Request().Context(), c.Param("token"), nonce)
	if errors.Is(err, services.ErrTooManyAttempts) {
		c.Response().Header().Set("Retry-After", "600")
		return echo.NewHTTPError(http.StatusTooManyRequests, "This link was used to start too many connections in the last 10 minutes. Wait a few minutes, then try again.")
	}
	if err != nil {
		link, _ := s.connect.OpenLink(c.Request().Context(), c.Param("token"))
		return s.linkProblem(c, link, err)
	}
	c.SetCookie(&http.Cookie{
		Name: s.cookies.oauth, Value: nonce, Path: s.cookies.oauthPath, MaxAge: int((15 * time.Minute).Seconds()),
		HttpOnly: true, Secure: s.cfg.IsHTTPS(), SameSite: http.SameSiteLaxMode,
	})
	noReferrer(c)
	return c.Redirect(http.StatusSeeOther, target)
}

func (s *Server) oauthCallback(c echo.Context) error {
	noReferrer(c)
	in := services.CallbackInput{
		State: c.QueryParam("state"), Code: c.QueryParam("code"),
		Error: c.QueryParam("error"), ErrorDescription: c.QueryParam("error_description"),
	}
	if ck, err := c.Cookie(s.cookies.oauth); err == nil {
		in.BrowserNonce = ck.Value
	}
	res, err := s.connect.Callback(c.Request().Context(), in)
	var prob *services.CallbackProblem
	if errors.As(err, &prob) {
		s.log.Info("authorization not completed", "reason", prob.Kind)
		status := http.StatusBadGateway
		switch {
		case prob.Kind == "foreign_browser":
			status = http.StatusForbidden
		case prob.BadInput:
			status = http.StatusBadRequest
		}
		v := views.ProblemView{Heading: problemHeading(prob.Kind), Message: prob.Message, RetryURL: prob.RetryURL, ReturnURL: prob.ReturnURL, AppName: prob.AppName, Kind: prob.Kind}
		return render(c, status, views.ProblemPage(s.publicPage(c, v.Heading), v))
	}
	if err != nil {
		return err
	}
	s.log.Info("connection authorized", "connection", res.Connection.ID, "created", res.Created)
	if res.ReturnURL != "" {
		return c.Redirect(http.StatusSeeOther, res.ReturnURL)
	}
	return render(c, http.StatusOK, views.ConnectSuccessPage(s.publicPage(c, "Connected"), views.SuccessView{
		AppName: res.App.Name, AccountEmail: res.Connection.AccountEmail, AccountName: res.Connection.AccountName, Reconnected: !res.Created,
	}))
}

func problemHeading(kind string) string {
	switch kind {
	case "access_denied":
		return "Access was not granted"
	case "state_expired":
		return "This attempt expired"
	case "state_used":
		return "Already completed"
	case "foreign_browser":
		return "Started in another browser"
	case "account_mismatch":
		return "A different account"
	case "exchange_failed", "account_failed":
		return "GetResponse did not complete the connection"
	}
	return "This connection attempt is not valid"
}

// publicPage is the layout model for customer-facing pages: no navigation, no operator.
func (s *Server) publicPage(c echo.Context, title string) views.Page {
	p := s.page(c, title, "")
	p.Public, p.Operator = true, ""
	return p
}

// noReferrer keeps codes and link tokens out of Referer headers sent onwards.
func noReferrer(c echo.Context) {
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
}
