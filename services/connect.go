package services

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/secrets"
	"github.com/grconnect/grconnect/services/getresponse"
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
}

// NewConnect returns the connect-flow service. baseURL is grconnect's public URL.
func NewConnect(store *models.Store, box *secrets.Box, apps *Apps, gr *getresponse.Client, baseURL string, log *slog.Logger) *Connect {
	return &Connect{store: store, box: box, apps: apps, gr: gr, baseURL: baseURL, log: log, now: models.Now}
}

// RedirectURL is the OAuth redirect URL registered with GetResponse.
func (c *Connect) RedirectURL() string { return c.baseURL + "/oauth/callback" }

// Start begins an authorization for a link: it stores a fresh single-use state
// bound to browserNonce (the browser's cookie) and returns GetResponse's
// authorize URL to redirect to.
func (c *Connect) Start(ctx context.Context, token, browserNonce string) (string, error) {
	link, err := c.OpenLink(ctx, token)
	if err != nil {
		return "", err
	}
	state := models.RandomToken(32) // 256 bits
	now := c.now()
	linkID := link.ID
	as := &models.AuthState{
		ID: models.NewID("ast"), StateHash: hashToken(state), BrowserHash: hashToken(browserNonce),
		AppID: link.AppID, LinkID: &linkID, CustomerRef: link.CustomerRef, ConnectionID: link.ConnectionID,
		ReturnURL: link.ReturnURL, MaxDomain: link.App.MaxDomain, ExpiresAt: now.Add(stateTTL), CreatedAt: now,
	}
	// Anyone holding the link can start; a link has at most maxPendingStates
	// unexpired, unused authorizations (Housekeeping sweeps the expired ones).
	if err := c.store.CreatePendingAuthState(ctx, as, maxPendingStates); errors.Is(err, models.ErrTooMany) {
		return "", ErrTooManyAttempts
	} else if err != nil {
		return "", err
	}
	ga, err := c.apps.Client(link.App, c.RedirectURL())
	if err != nil {
		return "", err
	}
	return c.gr.AuthCodeURL(ga, state), nil
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
	App        *models.App
	// ReturnURL is where to send the customer (with connection_id and status), or "".
	ReturnURL string
}

// CallbackProblem says why a callback could not complete, in words for the customer.
type CallbackProblem struct {
	Kind    string // state_missing, state_unknown, state_expired, state_used, foreign_browser, access_denied, no_code, exchange_failed, account_failed, account_mismatch
	Message string
	// RetryURL restarts the flow (the connect link) when it is still usable.
	RetryURL string
	// ReturnURL sends the customer back to the operator's site with the failure.
	ReturnURL string
	AppName   string
	// BadInput is true when the request itself was wrong (4xx), false when
	// GetResponse failed (a gateway error).
	BadInput bool
}

func (p *CallbackProblem) Error() string { return p.Kind + ": " + p.Message }

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
func (c *Connect) problem(ctx context.Context, as *models.AuthState, kind, msg string, badInput bool) *CallbackProblem {
	p := &CallbackProblem{Kind: kind, Message: msg, BadInput: badInput}
	c.describeRetry(ctx, as, p)
	return p
}

// checkState finds the callback's state, checks that it is fresh, unused and this
// browser's, consumes it, and turns GetResponse's own refusals into problems.
func (c *Connect) checkState(ctx context.Context, in CallbackInput) (*models.AuthState, error) {
	if in.State == "" {
		return nil, &CallbackProblem{Kind: "state_missing", BadInput: true,
			Message: "This page was opened without the information GetResponse sends back. Start again from your connect link."}
	}
	as, err := c.store.AuthStateByHash(ctx, hashToken(in.State))
	if errors.Is(err, models.ErrNotFound) {
		return nil, &CallbackProblem{Kind: "state_unknown", BadInput: true,
			Message: "This authorization is not one grconnect started, or it was already cleaned up. Start again from your connect link."}
	}
	if err != nil {
		return nil, err
	}
	// Only the browser that started the authorization is shown the way to try
	// again: the retry link is the connect link, which the state alone must not reveal.
	owner := in.BrowserNonce != "" && hashToken(in.BrowserNonce) == as.BrowserHash
	switch {
	case as.UsedAt != nil:
		return nil, ownerOnly(c.problem(ctx, as, "state_used", "This authorization was already completed. If you reloaded the page, your account may already be connected.", true), owner)
	case !c.now().Before(as.ExpiresAt):
		return nil, ownerOnly(c.problem(ctx, as, "state_expired", "This authorization took longer than 10 minutes and expired. Please try again.", true), owner)
	case !owner:
		return nil, ownerOnly(c.problem(ctx, as, "foreign_browser", "This authorization was started in another browser. Open the connect link in this browser and try again.", true), false)
	}
	if err := c.store.ConsumeAuthState(ctx, as.ID); errors.Is(err, models.ErrAlreadyUsed) {
		return nil, c.problem(ctx, as, "state_used", "This authorization was already completed.", true)
	} else if err != nil {
		return nil, err
	}
	switch {
	case in.Error == "access_denied":
		return nil, c.problem(ctx, as, "access_denied", "You declined access on GetResponse, so nothing was connected. You can try again whenever you like.", true)
	case in.Error != "":
		return nil, c.problem(ctx, as, "provider_error", "GetResponse did not grant access ("+truncate(in.Error, 60)+"). Please try again.", true)
	case in.Code == "":
		return nil, c.problem(ctx, as, "no_code", "GetResponse sent you back without an authorization. Please try again.", true)
	}
	return as, nil
}

// exchange trades the code for tokens and asks GetResponse whose account they open.
func (c *Connect) exchange(ctx context.Context, as *models.AuthState, in CallbackInput) (*models.App, *getresponse.Token, *getresponse.Account, error) {
	app, err := c.store.AppByID(ctx, as.AppID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil, nil, c.problem(ctx, as, "state_unknown", "The app you were connecting to was removed.", true)
	} else if err != nil {
		return nil, nil, nil, err
	}
	ga, err := c.apps.Client(app, c.RedirectURL())
	if err != nil {
		return nil, nil, nil, err
	}
	tok, err := c.gr.Exchange(ctx, ga, in.Code)
	if err != nil {
		c.log.Warn("code exchange failed", "app", app.ID, "error", err)
		badInput := errors.Is(err, getresponse.ErrGrantRejected) || errors.Is(err, getresponse.ErrClientRejected)
		return nil, nil, nil, c.problem(ctx, as, "exchange_failed", "GetResponse did not accept the authorization ("+describeGRError(err)+"). Please try again.", badInput)
	}
	acct, _, err := c.gr.Account(ctx, ga, tok.AccessToken)
	if err != nil {
		c.log.Warn("account lookup failed", "app", app.ID, "error", err)
		return nil, nil, nil, c.problem(ctx, as, "account_failed", "Connected, but GetResponse did not tell us which account this is ("+describeGRError(err)+"). Please try again.", false)
	}
	return app, tok, acct, nil
}

// save stores the connection (new, or the same app's and account's renewed) with
// its tokens sealed, and says where the customer goes next.
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
	conn, created, err := c.store.SaveAuthorization(ctx, models.Authorization{
		AppID: app.ID, LinkID: linkID, ConnectionID: connID, CustomerRef: as.CustomerRef,
		AccountID: acct.AccountID, AccountEmail: models.NormalizeEmail(acct.Email), AccountName: name, CompanyName: acct.CompanyName,
		Seal: func(id string) (models.SealedTokens, error) { return sealTokens(c.box, id, tok, c.now()) },
	})
	if errors.Is(err, models.ErrAccountMismatch) {
		return nil, c.problem(ctx, as, "account_mismatch", "You signed in to a different GetResponse account ("+acct.Email+") than the one being reconnected. Sign in to the original account and try again.", true)
	}
	if err != nil {
		return nil, err
	}
	res := &CallbackResult{Connection: conn, Created: created, App: app}
	if as.ReturnURL != "" {
		status := "connected"
		if !created {
			status = "reconnected"
		}
		res.ReturnURL = withQuery(as.ReturnURL, url.Values{"connection_id": {conn.ID}, "status": {status}})
	}
	return res, nil
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
		p.AppName = app.Name
	}
	if as.LinkID != nil {
		if l, err := c.store.ConnectLinkByID(ctx, *as.LinkID); err == nil && l.UsedAt == nil && c.now().Before(l.ExpiresAt) {
			if u, err := c.LinkURL(l); err == nil {
				p.RetryURL = u
			}
		}
	}
	if as.ReturnURL != "" {
		p.ReturnURL = withQuery(as.ReturnURL, url.Values{"status": {"error"}, "error": {p.Kind}})
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
