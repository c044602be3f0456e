package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
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
	Start(ctx context.Context, in services.StartInput) (string, error)
	Callback(ctx context.Context, in services.CallbackInput) (*services.CallbackResult, error)
	RevokeLink(ctx context.Context, id, actor string) (*models.ConnectLink, error)
	SetParentLogin(ctx context.Context, id, login, actor string) error
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
	popup := services.PopupOrigin(link.App, c.QueryParam("popup"))
	if !services.Available(link.App) {
		return s.appUnavailable(c, link.App, popup)
	}
	return s.renderConnectPage(c, http.StatusOK, link, popup, "", "")
}

// appUnavailable renders, instead of the button to GetResponse, the page saying
// that the app cannot connect anyone for now: GetResponse refused its credentials
// or configuration, the operator has been told, and the app's support contact
// helps meanwhile. It offers no retry: only the operator can fix it.
func (s *Server) appUnavailable(c echo.Context, app *models.App, popup string) error {
	kind := services.ProblemAppUnavailable
	customerHeaders(c, app)
	v := views.ProblemView{Heading: kind.Info().Heading, Kind: string(kind), AppName: app.Name, Brand: s.brand(app), RequestID: requestIDOf(c),
		Message: "Connecting your GetResponse account to " + app.Name + " is unavailable for now: GetResponse does not accept " + app.Name +
			"'s integration settings at the moment, which is nothing you did. " + app.Name + " has been told; please come back to this link once they have fixed it.",
		ShowSupport: true}
	if popup != "" {
		v.Result = views.Result{Origin: popup, Status: "error", Error: string(kind)}
	}
	return render(c, kind.Info().Status, views.ProblemPage(s.publicPage(c, v.Heading), v))
}

// renderConnectPage renders a link's connect page; domain and domainErr are what
// the customer typed as their MAX address and what is wrong with it.
func (s *Server) renderConnectPage(c echo.Context, status int, link *services.Link, popup, domain, domainErr string) error {
	known, ask := services.LinkDomain(link)
	// The page's form leads, through grconnect's redirect, to the authorize page: on
	// the app's authorize origin, or — for a MAX customer who types their address —
	// on their own domain, which only https: covers.
	targets := []string{link.App.AuthURL}
	if ask {
		targets = append(targets, "https:")
	}
	customerHeaders(c, link.App, targets...)
	return render(c, status, views.ConnectPage(s.publicPage(c, "Connect GetResponse"), views.ConnectView{
		Brand: s.brand(link.App), AppName: link.App.Name, Token: c.Param("token"), Reconnect: link.ConnectionID != nil,
		Demo: link.App.Demo, ExpiresAt: formatTime(link.ExpiresAt),
		AskDomain: ask, MaxDomain: domain, DomainError: domainErr, Domain: known, Popup: popup,
	}))
}

// linkProblem renders the page for an unknown, expired, revoked or used link.
func (s *Server) linkProblem(c echo.Context, link *services.Link, err error) error {
	v := views.ProblemView{Heading: "This connect link does not work", Message: "Ask the company that sent it to you for a new one."}
	status := http.StatusNotFound
	var app *models.App
	if link != nil {
		app = link.App
	}
	switch {
	case errors.Is(err, services.ErrLinkNotFound):
		v.Message = "This connect link does not exist. Check that you copied all of it, or ask the company that sent it for a new one."
	case errors.Is(err, services.ErrLinkExpired):
		status = http.StatusGone
		v.Heading = "This connect link has expired"
		v.Message = "Links are valid for a limited time. Ask " + link.App.Name + " for a new one."
	case errors.Is(err, services.ErrLinkRevoked):
		status = http.StatusGone
		v.Heading = "This connect link was withdrawn"
		v.Message = link.App.Name + " withdrew this link, so it cannot connect an account. If you still need to connect, ask " + link.App.Name + " for a new link."
	case errors.Is(err, services.ErrLinkUsed):
		status = http.StatusGone
		v.Heading = "This connect link was already used"
		v.Message = "A GetResponse account was connected with it on " + formatTime(*link.UsedAt) + ". A link works once: if you need to connect again, ask " + link.App.Name + " for a new one."
	default:
		return err
	}
	v.Kind = linkProblemKind(err)
	customerHeaders(c, app)
	v.Brand = s.brand(app)
	if popup := services.PopupOrigin(app, c.FormValue("popup")); popup != "" {
		v.Result = views.Result{Origin: popup, Status: "error", Error: v.Kind}
	}
	v.RequestID = requestIDOf(c)
	return render(c, status, views.ProblemPage(s.publicPage(c, v.Heading), v))
}

func linkProblemKind(err error) string {
	switch {
	case errors.Is(err, services.ErrLinkExpired):
		return "link_expired"
	case errors.Is(err, services.ErrLinkRevoked):
		return "link_revoked"
	case errors.Is(err, services.ErrLinkUsed):
		return "link_used"
	}
	return "link_not_found"
}

// The OAuth state cookie (gorilla's CookieStore, newStateCookieStore) holds the
// browser's nonce for oauthStateAge: an authorization started in one browser can be
// completed only in that browser.
const (
	stateNonce    = "nonce"
	oauthStateAge = 15 * time.Minute
)

func (s *Server) startConnect(c echo.Context) error {
	state, _ := s.stateCookies.Get(c.Request(), s.cookies.oauth) // a bad cookie: a new one
	nonce, _ := state.Values[stateNonce].(string)
	if len(nonce) < 32 {
		nonce = models.RandomToken(20)
	} // else several flows in one browser share its nonce
	ctx := c.Request().Context()
	in := services.StartInput{Token: c.Param("token"), BrowserNonce: nonce, MaxDomain: c.FormValue("max_domain"), PopupOrigin: c.FormValue("popup")}
	target, err := s.connect.Start(ctx, in)
	if fe, ok := services.AsFieldErrors(err); ok {
		link, lerr := s.connect.OpenLink(ctx, in.Token)
		if lerr != nil {
			return s.linkProblem(c, link, lerr)
		}
		return s.renderConnectPage(c, http.StatusUnprocessableEntity, link, services.PopupOrigin(link.App, in.PopupOrigin), in.MaxDomain, fe["max_domain"])
	}
	if errors.Is(err, services.ErrAppUnavailable) {
		link, lerr := s.connect.OpenLink(ctx, in.Token)
		if lerr != nil {
			return s.linkProblem(c, link, lerr)
		}
		return s.appUnavailable(c, link.App, services.PopupOrigin(link.App, in.PopupOrigin))
	}
	if errors.Is(err, services.ErrTooManyAttempts) {
		c.Response().Header().Set("Retry-After", "600")
		return echo.NewHTTPError(http.StatusTooManyRequests, "This link was used to start too many connections in the last 10 minutes. Wait a few minutes, then try again.")
	}
	if err != nil {
		link, _ := s.connect.OpenLink(ctx, in.Token)
		return s.linkProblem(c, link, err)
	}
	state.Values[stateNonce] = nonce
	if err := state.Save(c.Request(), c.Response()); err != nil {
		return err
	}
	customerHeaders(c, nil)
	return c.Redirect(http.StatusSeeOther, target)
}

func (s *Server) oauthCallback(c echo.Context) error {
	customerHeaders(c, nil)
	in := services.CallbackInput{
		State: c.QueryParam("state"), Code: c.QueryParam("code"),
		Error: c.QueryParam("error"), ErrorDescription: c.QueryParam("error_description"),
	}
	if state, err := s.stateCookies.Get(c.Request(), s.cookies.oauth); err == nil {
		in.BrowserNonce, _ = state.Values[stateNonce].(string)
	}
	res, err := s.connect.Callback(c.Request().Context(), in)
	var prob *services.CallbackProblem
	if errors.As(err, &prob) {
		s.log.Info("authorization not completed", "reason", prob.Kind)
		info := prob.Kind.Info()
		customerHeaders(c, prob.App)
		v := views.ProblemView{Heading: info.Heading, Message: prob.Message, RetryURL: prob.RetryURL, ReturnURL: prob.ReturnURL,
			AppName: prob.AppName, Kind: string(prob.Kind), Brand: s.brand(prob.App), RequestID: requestIDOf(c),
			ShowSupport: info.OperatorActs()}
		if !info.Retry {
			v.RetryURL = "" // trying again cannot work: never offer it
		}
		if prob.PopupOrigin != "" {
			v.Result = views.Result{Origin: prob.PopupOrigin, Status: "error", Error: string(prob.Kind)}
			if v.RetryURL != "" {
				v.RetryURL = withPopup(v.RetryURL, prob.PopupOrigin)
			}
		}
		return render(c, info.Status, views.ProblemPage(s.publicPage(c, v.Heading), v))
	}
	if err != nil {
		return err
	}
	s.log.Info("connection authorized", "connection", res.Connection.ID, "status", res.Status)
	if res.ReturnURL != "" && res.PopupOrigin == "" {
		return c.Redirect(http.StatusSeeOther, res.ReturnURL)
	}
	customerHeaders(c, res.App)
	v := views.SuccessView{
		Brand: s.brand(res.App), AppName: res.App.Name, AccountEmail: res.Connection.AccountEmail, AccountName: res.Connection.AccountName,
		Reconnected: res.Status == "reconnected",
	}
	if res.PopupOrigin != "" {
		v.Result = views.Result{Origin: res.PopupOrigin, Status: res.Status, ConnectionID: res.Connection.ID}
	}
	return render(c, http.StatusOK, views.ConnectSuccessPage(s.publicPage(c, "Connected"), v))
}

// withPopup keeps the popup flow going on a connect link's retry.
func withPopup(link, origin string) string {
	return link + "?" + url.Values{"popup": {origin}}.Encode()
}

// brand is how the customer's pages show an app (nil: unknown).
func (s *Server) brand(app *models.App) views.Brand {
	b := views.Brand{CustomerCSS: s.assets.URL("customer.css"), ResultJS: s.assets.URL("connect-result.js")}
	if app != nil {
		b.AppName, b.LogoURL = app.Name, app.LogoURL
		b.SupportEmail, b.SupportURL = views.SupportParts(app.SupportContact)
	}
	return b
}

// customerHeaders adjusts the security headers for the customer's pages: they may
// run in the operator's connect popup, which must keep its opener
// (Cross-Origin-Opener-Policy unsafe-none), may show the app's logo from its own
// origin, and send no Referer onwards (codes and link tokens stay private).
func customerHeaders(c echo.Context, app *models.App, formTargets ...string) {
	h := c.Response().Header()
	h.Set("Cross-Origin-Opener-Policy", "unsafe-none")
	img := "'self' data:"
	if app != nil && app.LogoURL != "" {
		if o := origin(app.LogoURL); o != "" {
			img += " " + o
		}
	}
	form := "'self'"
	for _, t := range formTargets {
		if t == "https:" {
			form += " https:"
		} else if o := origin(t); o != "" {
			form += " " + o
		}
	}
	h.Set("Content-Security-Policy", csp(img, form))
}

// origin returns an http(s) URL's scheme://host, or "".
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// publicPage is the layout model for customer-facing pages: no navigation, no operator.
func (s *Server) publicPage(c echo.Context, title string) views.Page {
	p := s.page(c, title, "")
	p.Public, p.Operator = true, ""
	return p
}
