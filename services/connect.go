package services

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// Connect-flow timings.
const (
	DefaultLinkTTL = 7 * 24 * time.Hour
	MaxLinkTTL     = 90 * 24 * time.Hour
	stateTTL       = 10 * time.Minute
	// maxPendingStates bounds the pending authorizations one link can have.
	maxPendingStates = 20
)

// ErrTooManyAttempts is returned by Start when a link already has many
// authorizations in progress.
var ErrTooManyAttempts = errors.New("too many connection attempts with this link in the last 10 minutes")

// Connect runs the customer's side: connect links, the authorization start and the
// OAuth callback that creates or renews a connection.
type Connect struct {
	store   *models.Store
	box     *secrets.Box
	apps    *Apps
	gr      *getresponse.Client
	baseURL string
	log     *slog.Logger
	now     func() time.Time
	// AppWorks is told when a code exchange proved that GetResponse accepts an
	// unhealthy app's credentials (the token engine's Tokens.AppWorks); AppFails
	// when GetResponse refused the app's credentials or configuration in one
	// (Tokens.AppFails: the app is marked and the operator alerted).
	AppWorks func(ctx context.Context, app *models.App, what, actor string)
	AppFails func(ctx context.Context, app *models.App, err error, actor string)
}

// ErrAppUnavailable: the link's app cannot connect anyone now — GetResponse
// refused its credentials or configuration, and only the operator can fix that.
var ErrAppUnavailable = errors.New("the integration is unavailable for now")

// Available reports whether app can connect a customer now: not while GetResponse
// is known to refuse its credentials or configuration (the operator must act).
func Available(app *models.App) bool {
	return app != nil && !app.Health.OperatorMustAct()
}

// NewConnect returns the connect-flow service. baseURL is grconnect's public URL.
func NewConnect(store *models.Store, box *secrets.Box, apps *Apps, gr *getresponse.Client, baseURL string, log *slog.Logger) *Connect {
	return &Connect{store: store, box: box, apps: apps, gr: gr, baseURL: baseURL, log: log, now: models.Now}
}

// RedirectURL is the OAuth redirect URL registered with GetResponse.
func (c *Connect) RedirectURL() string { return c.baseURL + "/oauth/callback" }

// StartInput is what the customer's "Connect GetResponse" press brings.
type StartInput struct {
	Token        string // the connect link's token
	BrowserNonce string // the browser's cookie, which the callback must bring back
	// MaxDomain is the GetResponse MAX address the customer typed, used only when
	// neither the link nor the app names one.
	MaxDomain string
	// PopupOrigin is the opener page's origin when the flow runs in a popup; it is
	// kept only when it is one of the app's return origins.
	PopupOrigin string
}

// Start begins an authorization for a link: it stores a fresh single-use state
// bound to the browser's nonce and returns GetResponse's authorize URL (on the
// customer's MAX domain for a MAX app) to redirect to. Starting invalidates
// nothing: several flows of one link may be pending, and the first to complete
// ends the others. A MAX domain the customer must give and did not comes back as
// FieldErrors on max_domain.
func (c *Connect) Start(ctx context.Context, in StartInput) (string, error) {
	link, err := c.OpenLink(ctx, in.Token)
	if err != nil {
		return "", err
	}
	if !Available(link.App) {
		return "", ErrAppUnavailable
	}
	domain, ask := LinkDomain(link)
	if ask {
		d, err := getresponse.NormalizeDomain(in.MaxDomain)
		if err != nil {
			return "", FieldErrors{"max_domain": "Enter your GetResponse MAX address, like mycompany.getresponse360.com."}
		}
		domain = d
	}
	state := models.RandomToken(32) // 256 bits
	now := c.now()
	linkID := link.ID
	as := &models.AuthState{
		ID: models.NewID("ast"), StateHash: hashToken(state), BrowserHash: hashToken(in.BrowserNonce),
		AppID: link.AppID, LinkID: &linkID, CustomerRef: link.CustomerRef, ConnectionID: link.ConnectionID,
		ReturnURL: link.ReturnURL, MaxDomain: domain, PopupOrigin: PopupOrigin(link.App, in.PopupOrigin),
		ExpiresAt: now.Add(stateTTL), CreatedAt: now,
	}
	// Anyone holding the link can start; a link has at most maxPendingStates
	// unexpired, unused authorizations (Housekeeping sweeps the expired ones).
	if err := c.store.CreatePendingAuthState(ctx, as, maxPendingStates); errors.Is(err, models.ErrTooMany) {
		return "", ErrTooManyAttempts
	} else if err != nil {
		return "", err
	}
	ga, err := c.apps.ClientFor(link.App, models.Identity{MaxDomain: domain}, c.RedirectURL())
	if err != nil {
		return "", err
	}
	return c.gr.AuthCodeURL(ga, state), nil
}

// PopupOrigin returns origin when it is one of app's return origins (the only
// pages a popup flow reports to), else "".
func PopupOrigin(app *models.App, origin string) string {
	origin = strings.ToLower(strings.TrimSpace(origin))
	if origin == "" || app == nil {
		return ""
	}
	for _, o := range app.Origins() {
		if o == origin {
			return o
		}
	}
	return ""
}

// CallbackInput is what GetResponse's redirect and the browser bring to the callback.
type CallbackInput struct {
	State, Code, Error, ErrorDescription string
	BrowserNonce                         string
}

// CallbackResult is a completed connection.
type CallbackResult struct {
	Connection *models.Connection
	Created    bool
	// Status is what happened, as the return URL and the popup say it:
	// connected, reconnected or transferred.
	Status string
	App    *models.App
	// ReturnURL is where to send the customer (with connection_id and status), or "".
	ReturnURL string
	// PopupOrigin is the opener to report to when the flow ran in a popup.
	PopupOrigin string
}

// CallbackProblem says why a callback could not complete, in words for the customer.
type CallbackProblem struct {
	// Kind says what went wrong; Kind.Info() its status, heading, whether the
	// customer may try again and who acts.
	Kind    ProblemKind
	Message string
	// RetryURL restarts the flow (the connect link) when it is still usable and
	// trying again can work (Kind.Info().Retry).
	RetryURL string
	// ReturnURL sends the customer back to the operator's site with the failure.
	ReturnURL string
	AppName   string
	// App is the app the flow was for, when known (its name, logo and support
	// contact brand the page).
	App *models.App
	// PopupOrigin is the opener to report to when the flow ran in a popup.
	PopupOrigin string
}

func (p *CallbackProblem) Error() string { return string(p.Kind) + ": " + p.Message }

// Callback completes an authorization in three steps: check the state (known,
// fresh, unused, same browser) and consume it, exchange the code and identify the
// account, then save the connection.
func (c *Connect) Callback(ctx context.Context, in CallbackInput) (*CallbackResult, error) {
	as, err := c.checkState(ctx, in)
	if err != nil {
		return nil, err
	}
	app, tok, acct, err := c.exchange(ctx, as, in)
	if err != nil {
		return nil, err
	}
	return c.save(ctx, as, app, tok, acct)
}

// problem is a CallbackProblem for an authorization that got as far as its state,
// with the ways to try again or go back.
func (c *Connect) problem(ctx context.Context, as *models.AuthState, kind ProblemKind, msg string) *CallbackProblem {
	p := &CallbackProblem{Kind: kind, Message: msg, PopupOrigin: as.PopupOrigin}
	c.describeRetry(ctx, as, p)
	return p
}

// checkState finds the callback's state, checks that it is fresh, unused and this
// browser's, consumes it, and turns GetResponse's own refusals into problems.
func (c *Connect) checkState(ctx context.Context, in CallbackInput) (*models.AuthState, error) {
	if in.State == "" {
		return nil, &CallbackProblem{Kind: ProblemStateMissing,
			Message: "This page was opened without the information GetResponse sends back. Start again from your connect link."}
	}
	as, err := c.store.AuthStateByHash(ctx, hashToken(in.State))
	if errors.Is(err, models.ErrNotFound) {
		return nil, &CallbackProblem{Kind: ProblemStateUnknown,
			Message: "This authorization was not started here, or it is too old. Start again from your connect link."}
	}
	if err != nil {
		return nil, err
	}
	// Only the browser that started the authorization is shown the way to try
	// again: the retry link is the connect link, which the state alone must not reveal.
	owner := in.BrowserNonce != "" && hashToken(in.BrowserNonce) == as.BrowserHash
	switch {
	case as.Superseded:
		return nil, c.linkUsedProblem(ctx, as)
	case as.UsedAt != nil:
		return nil, ownerOnly(c.problem(ctx, as, ProblemStateUsed, "This authorization was already completed. If you reloaded the page, your account may already be connected."), owner)
	case !c.now().Before(as.ExpiresAt):
		return nil, ownerOnly(c.problem(ctx, as, ProblemStateExpired, "This authorization took longer than 10 minutes and expired. Please try again."), owner)
	case !owner:
		return nil, ownerOnly(c.problem(ctx, as, ProblemForeignBrowser, "This authorization was started in another browser. Open the connect link in this browser and try again."), false)
	}
	if err := c.store.ConsumeAuthState(ctx, as.ID); errors.Is(err, models.ErrAlreadyUsed) {
		if again, aerr := c.store.AuthStateByHash(ctx, as.StateHash); aerr == nil && again.Superseded {
			return nil, c.linkUsedProblem(ctx, again)
		}
		return nil, c.problem(ctx, as, ProblemStateUsed, "This authorization was already completed.")
	} else if err != nil {
		return nil, err
	}
	switch {
	case in.Error == "access_denied":
		return nil, c.problem(ctx, as, ProblemAccessDenied, "You declined access on GetResponse, so nothing was connected. You can try again whenever you like.")
	case in.Error != "":
		return nil, c.problem(ctx, as, ProblemProviderError, "GetResponse did not grant access ("+truncate(in.Error, 60)+"). Please try again.")
	case in.Code == "":
		return nil, c.problem(ctx, as, ProblemNoCode, "GetResponse sent you back without an authorization. Please try again.")
	}
	return as, nil
}

// exchange trades the code for tokens and asks GetResponse whose account they open.
func (c *Connect) exchange(ctx context.Context, as *models.AuthState, in CallbackInput) (*models.App, *getresponse.Token, *getresponse.Account, error) {
	app, err := c.store.AppByID(ctx, as.AppID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil, nil, c.problem(ctx, as, ProblemStateUnknown, "The app you were connecting to was removed.")
	} else if err != nil {
		return nil, nil, nil, err
	}
	ga, err := c.apps.ClientFor(app, models.Identity{MaxDomain: as.MaxDomain}, c.RedirectURL())
	if err != nil {
		return nil, nil, nil, err
	}
	tok, err := c.gr.Exchange(ctx, ga, in.Code)
	if err != nil {
		c.log.Warn("code exchange failed", "app", app.ID, "error", err)
		return nil, nil, nil, c.exchangeProblem(ctx, as, app, err)
	}
	if !app.Health.Healthy() && c.AppWorks != nil {
		// A code exchanged for tokens proves GetResponse accepts the app's credentials.
		c.AppWorks(ctx, app, "a customer's authorization was exchanged for tokens", "customer")
		app.Health = models.AppHealthy
	}
	acct, _, err := c.gr.Account(ctx, ga, tok.AccessToken)
	if err != nil {
		c.log.Warn("account lookup failed", "app", app.ID, "error", err)
		return nil, nil, nil, c.problem(ctx, as, ProblemAccountFailed, "Connected, but GetResponse did not tell us which account this is ("+describeGRError(err)+"). Please try again.")
	}
	return app, tok, acct, nil
}

// save stores the connection (new, the same identity's renewed, or moved from
// another customer when the link allows it) with its tokens sealed, and says where
// the customer goes next.
func (c *Connect) save(ctx context.Context, as *models.AuthState, app *models.App, tok *getresponse.Token, acct *getresponse.Account) (*CallbackResult, error) {
	name := strings.TrimSpace(acct.FirstName + " " + acct.LastName)
	connID := ""
	if as.ConnectionID != nil {
		connID = *as.ConnectionID
	}
	linkID := ""
	if as.LinkID != nil {
		linkID = *as.LinkID
	}
	saved, err := c.store.SaveAuthorization(ctx, models.Authorization{
		AppID: app.ID, LinkID: linkID, ConnectionID: connID, CustomerRef: as.CustomerRef, MaxDomain: as.MaxDomain,
		AccountID: acct.AccountID, AccountEmail: models.NormalizeEmail(acct.Email), AccountName: name, CompanyName: acct.CompanyName,
		Seal: func(id string) (models.SealedTokens, error) { return sealTokens(c.box, id, tok, c.now()) },
	})
	switch {
	case errors.Is(err, models.ErrAccountMismatch):
		return nil, c.problem(ctx, as, ProblemAccountMismatch, "You signed in to a different GetResponse account ("+acct.Email+") than the one being reconnected. Sign in to the original account and try again.")
	case errors.Is(err, models.ErrTransferRefused):
		c.log.Info("transfer refused", "app", app.ID, "connection", saved.Connection.ID)
		p := c.problem(ctx, as, ProblemAccountTaken, "The GetResponse account "+acct.Email+" is already connected to "+app.Name+
			" for someone else, so it was not connected again. If it should move to you, contact "+app.Name+".")
		return nil, p
	case errors.Is(err, models.ErrAlreadyUsed):
		return nil, c.linkUsedProblem(ctx, as)
	case errors.Is(err, models.ErrRevoked):
		return nil, c.revokedProblem(ctx, as)
	case err != nil:
		return nil, err
	}
	conn := saved.Connection
	status := "connected"
	switch saved.Outcome {
	case models.AuthorizationReconnected:
		status = "reconnected"
	case models.AuthorizationTransferred:
		status = "transferred"
	}
	res := &CallbackResult{Connection: conn, Created: saved.Outcome == models.AuthorizationCreated, Status: status, App: app, PopupOrigin: as.PopupOrigin}
	if as.ReturnURL != "" {
		res.ReturnURL = withQuery(as.ReturnURL, url.Values{"connection_id": {conn.ID}, "status": {status}})
	}
	return res, nil
}

// exchangeProblem is the page for a code GetResponse would not exchange. When its
// answer is about the app's credentials or configuration, the app is marked (the
// operator is alerted) and the customer is told the integration is unavailable
// for now and that the operator has been told: trying again cannot help. A MAX
// address the customer typed themselves is theirs to correct. Anything else
// (an expired code, GetResponse failing for now) can be tried again.
func (c *Connect) exchangeProblem(ctx context.Context, as *models.AuthState, app *models.App, err error) *CallbackProblem {
	var te *getresponse.TokenError
	typedDomain := as.MaxDomain != "" && as.MaxDomain != app.MaxDomain && !c.linkNamesDomain(ctx, as)
	switch {
	case typedDomain && errors.As(err, &te) && te.Kind == getresponse.KindMisconfigured:
		return c.problem(ctx, as, ProblemExchangeFailed, "GetResponse did not accept the MAX address "+as.MaxDomain+
			" ("+describeGRError(err)+"). Check the address you use for GetResponse, then try again.")
	case getresponse.ActorOf(err) == getresponse.ActorOperator:
		if c.AppFails != nil {
			c.AppFails(ctx, app, err, "customer")
		}
		p := c.problem(ctx, as, ProblemAppUnavailable, "")
		p.Message = "Connecting your GetResponse account to " + p.who() + " is unavailable for now: GetResponse refused the integration's settings (" +
			describeGRError(err) + "), which is nothing you did. " + p.who() + " has been told; trying again will not help until they have fixed it. Nothing was connected and your GetResponse account was not changed."
		return p
	}
	return c.problem(ctx, as, ProblemExchangeFailed, "GetResponse did not accept the authorization ("+describeGRError(err)+"). Please try again.")
}

// linkNamesDomain reports whether the flow's MAX domain came from its link (the
// operator named it) rather than from the customer.
func (c *Connect) linkNamesDomain(ctx context.Context, as *models.AuthState) bool {
	if as.LinkID == nil {
		return false
	}
	l, err := c.store.ConnectLinkByID(ctx, *as.LinkID)
	return err == nil && l.MaxDomain != "" && l.MaxDomain == as.MaxDomain
}

// linkUsedProblem is the page for a flow whose link another flow completed first,
// or an operator revoked meanwhile.
func (c *Connect) linkUsedProblem(ctx context.Context, as *models.AuthState) *CallbackProblem {
	var link *models.ConnectLink
	if as.LinkID != nil {
		if l, err := c.store.ConnectLinkByID(ctx, *as.LinkID); err == nil {
			link = l
		}
	}
	if link != nil && link.RevokedAt != nil && link.UsedAt == nil {
		return c.revokedProblem(ctx, as)
	}
	p := c.problem(ctx, as, ProblemLinkUsed, "")
	when := ""
	if link != nil && link.UsedAt != nil {
		when = " on " + link.UsedAt.UTC().Format("2006-01-02 15:04 UTC")
	}
	p.Message = "This link was already used" + when + " to connect a GetResponse account, so it cannot be used again. If you need to connect, ask " + p.who() + " for a new link."
	return p
}

// revokedProblem is the page for a flow whose link was revoked before it completed.
func (c *Connect) revokedProblem(ctx context.Context, as *models.AuthState) *CallbackProblem {
	p := c.problem(ctx, as, ProblemLinkRevoked, "")
	p.Message = "This connect link was withdrawn before you finished, so nothing was connected. If you still need to connect, ask " + p.who() + " for a new link."
	return p
}

// who names the app for the customer.
func (p *CallbackProblem) who() string {
	if p.AppName != "" {
		return p.AppName
	}
	return "the company that sent it"
}

// ownerOnly keeps a problem's retry link (the connect link) for the browser that
// started the authorization.
func ownerOnly(p *CallbackProblem, owner bool) *CallbackProblem {
	if !owner {
		p.RetryURL = ""
	}
	return p
}

// describeRetry fills in how the customer can try again or go back.
func (c *Connect) describeRetry(ctx context.Context, as *models.AuthState, p *CallbackProblem) {
	if app, err := c.store.AppByID(ctx, as.AppID); err == nil {
		p.AppName, p.App = app.Name, app
	}
	if as.LinkID != nil && p.Kind.Info().Retry {
		if l, err := c.store.ConnectLinkByID(ctx, *as.LinkID); err == nil && l.UsedAt == nil && l.RevokedAt == nil && c.now().Before(l.ExpiresAt) {
			if u, err := c.LinkURL(l); err == nil {
				p.RetryURL = u
			}
		}
	}
	if as.ReturnURL != "" {
		p.ReturnURL = withQuery(as.ReturnURL, url.Values{"status": {"error"}, "error": {string(p.Kind)}})
	}
}

// withQuery adds params to a URL's query.
func withQuery(raw string, params url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}
