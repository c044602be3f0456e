package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// appService is what the app pages need.
type appService interface {
	Create(ctx context.Context, in services.AppInput) (*models.App, error)
	Update(ctx context.Context, id, actor string, in services.AppInput) (*models.App, error)
	Candidate(ctx context.Context, id string, in services.AppInput) (*models.App, error)
	Get(ctx context.Context, id string) (*models.App, error)
	List(ctx context.Context) ([]models.AppSummary, error)
	LiveConnections(ctx context.Context, id string) (int64, error)
	Delete(ctx context.Context, id, actor string, disconnect bool) (int64, error)
	Defaults(edition, domain string) (authURL, apiURL string)
	EditionDefaults(domain string) map[string][2]string
}

var editionLabels = map[string]string{
	"standard": "Standard (getresponse.com)",
	"max_us":   "GetResponse MAX (Enterprise), .com",
	"max_pl":   "GetResponse MAX (Enterprise), .pl",
}

func (s *Server) listApps(c echo.Context) error {
	apps, err := s.apps.List(c.Request().Context())
	if err != nil {
		return err
	}
	rows := make([]views.AppRow, 0, len(apps))
	for _, a := range apps {
		rows = append(rows, views.AppRow{ID: a.ID, Name: a.Name, Edition: editionLabels[a.Edition], ClientID: a.ClientID, Connections: a.Connections, Demo: a.Demo})
	}
	return render(c, http.StatusOK, views.AppsPage(s.page(c, "Apps", "apps"), rows))
}

// appFormInput binds the app form.
func appFormInput(c echo.Context) services.AppInput {
	return services.AppInput{
		Name:           c.FormValue("name"),
		ClientID:       c.FormValue("client_id"),
		ClientSecret:   c.FormValue("client_secret"),
		Edition:        c.FormValue("edition"),
		MaxDomain:      c.FormValue("max_domain"),
		AuthURL:        c.FormValue("auth_url"),
		APIURL:         c.FormValue("api_url"),
		ReturnOrigins:  c.FormValue("return_origins"),
		LogoURL:        c.FormValue("logo_url"),
		SupportContact: c.FormValue("support_contact"),
	}
}

// appForm fills the form's view model. No client secret is ever written into the
// page, not even one typed into the form just sent: after an error the form asks
// for it again.
func (s *Server) appForm(app *models.App, in services.AppInput, errs map[string]string) views.AppForm {
	if len(errs) > 0 && strings.TrimSpace(in.ClientSecret) != "" && errs["client_secret"] == "" {
		errs["client_secret"] = "Type the client secret again: grconnect never writes a secret back into a page."
	}
	f := views.AppForm{
		Name: in.Name, ClientID: in.ClientID, Edition: in.Edition, MaxDomain: in.MaxDomain,
		AuthURL: in.AuthURL, APIURL: in.APIURL, ReturnOrigins: in.ReturnOrigins, Errors: errs,
		LogoURL: in.LogoURL, SupportContact: in.SupportContact,
		RedirectURL: s.cfg.RedirectURL(), Defaults: s.apps.EditionDefaults(in.MaxDomain),
	}
	if app != nil {
		f.ID, f.SecretSet, f.SecretHint = app.ID, app.ClientSecretEnc != "", hint(app.ClientSecretHint)
	}
	return f
}

func (s *Server) newApp(c echo.Context) error {
	auth, api := s.apps.Defaults("standard", "")
	f := s.appForm(nil, services.AppInput{Edition: "standard", AuthURL: auth, APIURL: api}, nil)
	return render(c, http.StatusOK, views.AppFormPage(s.page(c, "Register an app", "apps"), f))
}

func (s *Server) createApp(c echo.Context) error {
	in := appFormInput(c)
	app, err := s.apps.Create(c.Request().Context(), in)
	if fe, ok := services.AsFieldErrors(err); ok {
		return render(c, http.StatusUnprocessableEntity, views.AppFormPage(s.page(c, "Register an app", "apps"), s.appForm(nil, in, fe)))
	}
	if err != nil {
		return err
	}
	s.log.Info("app created", "app", app.ID, "by", currentOperator(c).ID)
	kind, msg := s.checkCredentials(c, app)
	return s.redirectWithFlash(c, "/apps/"+app.ID, kind, "App registered. "+msg+" Paste the redirect URL below into GetResponse if you have not yet.")
}

func (s *Server) showApp(c echo.Context) error {
	return s.renderAppWith(c, http.StatusOK, c.Param("id"), appForms{})
}

// appForms are the app page's forms as submitted, to show again with their errors.
type appForms struct {
	link      views.LinkForm
	hook      *webhookSubmission
	callbacks *views.CallbacksView
}

// renderApp renders an app's page with its connect-link form in the given state.
func (s *Server) renderApp(c echo.Context, status int, id string, form views.LinkForm) error {
	return s.renderAppWith(c, status, id, appForms{link: form})
}

// renderAppWith renders an app's page with its forms in the given state.
func (s *Server) renderAppWith(c echo.Context, status int, id string, forms appForms) error {
	form := forms.link
	ctx := c.Request().Context()
	app, err := s.apps.Get(ctx, id)
	if err != nil {
		return err
	}
	n, err := s.apps.LiveConnections(ctx, app.ID)
	if err != nil {
		return err
	}
	links, err := s.connect.RecentLinks(ctx, app.ID, "", 10)
	if err != nil {
		return err
	}
	form.IsMax, form.DefaultDomain = services.IsMax(app), app.MaxDomain
	v := views.AppView{
		ID: app.ID, Name: app.Name, Edition: app.Edition, EditionLabel: editionLabels[app.Edition], ClientID: app.ClientID,
		SecretSet: app.ClientSecretEnc != "", SecretHint: hint(app.ClientSecretHint), MaxDomain: app.MaxDomain, AuthURL: app.AuthURL, APIURL: app.APIURL,
		TokenURL: app.APIURL + "/token", ReturnOrigins: app.Origins(), RedirectURL: s.cfg.RedirectURL(),
		LocalhostWarning: isLocalURL(s.cfg.BaseURL) && !app.Demo, Connections: n, Demo: app.Demo,
		LinkForm: form, LogoURL: app.LogoURL, SupportContact: app.SupportContact,
	}
	k := s.clock(c)
	v.Created, v.Updated = k.view(app.CreatedAt), k.view(app.UpdatedAt)
	for _, l := range links {
		v.Links = append(v.Links, linkRow(l, k))
	}
	if v.Webhook, err = s.webhookView(c, k, app, forms.hook); err != nil {
		return err
	}
	v.Callbacks = s.callbacksView(app, forms.callbacks)
	return render(c, status, views.AppPage(s.page(c, app.Name, "apps"), v))
}

func hint(last4 string) string {
	if last4 == "" {
		return ""
	}
	return "…" + last4
}

func (s *Server) editApp(c echo.Context) error {
	app, err := s.apps.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	in := services.AppInput{Name: app.Name, ClientID: app.ClientID, Edition: app.Edition, MaxDomain: app.MaxDomain,
		AuthURL: app.AuthURL, APIURL: app.APIURL, ReturnOrigins: app.ReturnOrigins,
		LogoURL: app.LogoURL, SupportContact: app.SupportContact}
	return render(c, http.StatusOK, views.AppFormPage(s.page(c, "Edit "+app.Name, "apps"), s.appForm(app, in, nil)))
}

func (s *Server) updateApp(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.apps.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	in := appFormInput(c)
	// A new client secret or a move to another host needs the operator's password,
	// and nothing typed is shown to GetResponse before it is given.
	r, err := s.reauthenticate(c)
	if err != nil {
		return err
	}
	if r.typed && !r.confirmed {
		status := r.refuse(c)
		return render(c, status, views.AppFormPage(s.page(c, "Edit "+app.Name, "apps"), s.appForm(app, in, map[string]string{})))
	}
	in.Reauthenticated = r.confirmed
	needPassword := func() error {
		r.problem = "Enter your password: a new client secret or a move to another host needs it."
		return render(c, r.refuse(c), views.AppFormPage(s.page(c, "Edit "+app.Name, "apps"), s.appForm(app, in, map[string]string{})))
	}
	replaced := strings.TrimSpace(in.ClientSecret) != "" || strings.TrimSpace(in.ClientID) != app.ClientID
	var (
		checked  *services.CheckResult
		checkErr error // GetResponse could not be asked
	)
	if replaced && c.FormValue("save_anyway") != "yes" {
		// New credentials are shown to GetResponse before they replace the current
		// ones; a rejection asks first.
		var asked bool
		checked, checkErr, asked, err = s.askBeforeSavingRejected(c, app, in)
		if errors.Is(err, services.ErrReauthRequired) {
			return needPassword()
		}
		if asked || err != nil {
			return err
		}
	} else if c.FormValue("secret_required") == "yes" && strings.TrimSpace(in.ClientSecret) == "" {
		in.ClientSecret = ""
		f := s.appForm(app, in, map[string]string{"client_secret": "Type the client secret again to save it anyway: grconnect never writes a secret back into a page."})
		f.Rejected, f.SecretAgain = "GetResponse rejected the credentials you submitted.", true
		return render(c, http.StatusUnprocessableEntity, views.AppFormPage(s.page(c, "Edit "+app.Name, "apps"), f))
	}
	updated, err := s.apps.Update(ctx, app.ID, currentOperator(c).Email, in)
	if errors.Is(err, services.ErrReauthRequired) {
		return needPassword()
	}
	if fe, ok := services.AsFieldErrors(err); ok {
		return render(c, http.StatusUnprocessableEntity, views.AppFormPage(s.page(c, "Edit "+app.Name, "apps"), s.appForm(app, in, fe)))
	}
	if err != nil {
		return err
	}
	s.log.Info("app updated", "app", app.ID, "by", currentOperator(c).ID)
	kind, msg := "success", ""
	switch {
	case checked != nil && checked.Verdict == services.CheckAccepted:
		s.tokens.AppWorks(ctx, updated, "GetResponse accepted the new client ID and secret (checked by "+currentOperator(c).Email+")", currentOperator(c).Email)
		msg = checked.Says
	case checked != nil && checked.Verdict == services.CheckGrantRefused:
		s.tokens.CredentialsReplaced(ctx, updated, currentOperator(c).Email)
		kind, msg = "warning", checked.Says
	case checkErr != nil:
		s.tokens.CredentialsReplaced(ctx, updated, currentOperator(c).Email)
		kind, msg = "warning", unaskedMessage(checkErr)
	case replaced || !app.Health.Healthy():
		kind, msg = s.checkCredentials(c, updated)
		if replaced && kind != "error" {
			s.tokens.CredentialsReplaced(ctx, updated, currentOperator(c).Email)
		}
	}
	return s.redirectWithFlash(c, "/apps/"+updated.ID, kind, strings.TrimSpace("Changes saved. "+msg))
}

// askBeforeSavingRejected asks GetResponse about credentials an edit would save,
// before saving them. When GetResponse rejects them it renders the form again,
// everything typed kept but the secret, asking to keep the current credentials or
// save anyway (asked is true). Otherwise it returns what GetResponse said, or why
// it could not be asked (checkErr), and the edit goes on; both are nil when the
// edit moves the app to another host (checked after the move is confirmed).
func (s *Server) askBeforeSavingRejected(c echo.Context, app *models.App, in services.AppInput) (res *services.CheckResult, checkErr error, asked bool, err error) {
	ctx := c.Request().Context()
	candidate, err := s.apps.Candidate(ctx, app.ID, in)
	if fe, ok := services.AsFieldErrors(err); ok {
		return nil, nil, true, render(c, http.StatusUnprocessableEntity, views.AppFormPage(s.page(c, "Edit "+app.Name, "apps"), s.appForm(app, in, fe)))
	}
	if err != nil || candidate == nil {
		return nil, nil, false, err
	}
	checked, checkErr := s.tokens.TryCredentials(ctx, candidate)
	if checkErr != nil {
		return nil, checkErr, false, nil // saved as typed; the first refresh will tell
	}
	if checked.Verdict != services.CheckRejected {
		return &checked, nil, false, nil
	}
	secretTyped := strings.TrimSpace(in.ClientSecret) != ""
	in.ClientSecret = "" // never written back into a page: the field asks for it again
	errs := map[string]string{}
	if secretTyped {
		errs["client_secret"] = "Type the client secret again to save it anyway: grconnect never writes a secret back into a page."
	}
	f := s.appForm(app, in, errs)
	f.Rejected, f.SecretAgain = checked.Advice(), secretTyped
	return nil, nil, true, render(c, http.StatusUnprocessableEntity, views.AppFormPage(s.page(c, "Edit "+app.Name, "apps"), f))
}

// unaskedMessage says that GetResponse could not be asked about the credentials,
// without the dial's details (addresses, ports), which only the log keeps.
func unaskedMessage(err error) string {
	return "GetResponse could not be asked whether it accepts the client ID and secret (" + services.CallFailure(err) + "); they will be checked by the first refresh."
}

// checkApp asks GetResponse whether an app's credentials are accepted (the
// "Check credentials" button).
func (s *Server) checkApp(c echo.Context) error {
	app, err := s.apps.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	kind, msg := s.checkCredentials(c, app)
	return s.redirectWithFlash(c, "/apps/"+app.ID, kind, msg)
}

// checkCredentials runs the credentials check of an app as saved and says its
// outcome for a flash: a success, a rejection (what to do), or a warning when
// GetResponse refuses the check's grant or cannot be asked (nothing changed).
func (s *Server) checkCredentials(c echo.Context, app *models.App) (kind, msg string) {
	res, err := s.tokens.CheckApp(c.Request().Context(), app, currentOperator(c).Email)
	switch {
	case err != nil:
		s.log.Warn("credentials check failed", "app", app.ID, "error", err, "request_id", requestIDOf(c))
		return "warning", unaskedMessage(err)
	case res.Verdict == services.CheckAccepted:
		return "success", res.Says
	case res.Verdict == services.CheckGrantRefused:
		return "warning", res.Says
	}
	return "error", res.Advice()
}

func (s *Server) confirmDeleteApp(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.apps.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	n, err := s.apps.LiveConnections(ctx, app.ID)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.AppDeletePage(s.page(c, "Delete "+app.Name, "apps"), views.AppDeleteView{ID: app.ID, Name: app.Name, Connections: n}))
}

func (s *Server) deleteApp(c echo.Context) error {
	ctx := c.Request().Context()
	app, err := s.apps.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	op := currentOperator(c)
	n, err := s.apps.Delete(ctx, app.ID, op.Email, c.FormValue("disconnect") == "yes")
	if errors.Is(err, models.ErrInUse) {
		live, lerr := s.apps.LiveConnections(ctx, app.ID)
		if lerr != nil {
			return lerr
		}
		return render(c, http.StatusConflict, views.AppDeletePage(s.page(c, "Delete "+app.Name, "apps"),
			views.AppDeleteView{ID: app.ID, Name: app.Name, Connections: live, Error: "Tick the box to confirm that these connections will be disconnected."}))
	}
	if err != nil {
		return err
	}
	s.log.Info("app deleted", "app", app.ID, "by", op.ID, "disconnected", n)
	msg := app.Name + " was deleted."
	if n > 0 {
		msg += " Its connections were disconnected."
	}
	return s.redirectWithFlash(c, "/apps", "success", msg)
}

// isLocalURL reports whether a base URL points at this machine, which GetResponse
// refuses as a redirect URL.
func isLocalURL(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasPrefix(h, "127.") || h == "::1" || h == "0.0.0.0"
}
