package services

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/secrets"
)

// Connect-flow timings.
const (
	DefaultLinkTTL = 7 * 24 * time.Hour
	MaxLinkTTL     = 90 * 24 * time.Hour
	stateTTL       = 10 * time.Minute
)

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

// LinkInput is what an operator (or the API) asks a connect link for.
type LinkInput struct {
	AppID        string
	CustomerRef  string
	ReturnURL    string
	TTL          time.Duration // 0: DefaultLinkTTL
	ConnectionID string        // set for a reconnect link
	CreatedBy    string
}

// Link is a connect link with its usable URL.
type Link struct {
	models.ConnectLink
	URL string
	App *models.App
}

// Expired reports whether the link can no longer start a connection.
func (l *Link) Expired(now time.Time) bool { return !now.Before(l.ExpiresAt) }

// hashToken returns the stored form of a link token or OAuth state.
func hashToken(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// CreateLink validates in and makes a connect link. Problems come back as
// FieldErrors on customer_ref, return_url and ttl.
func (c *Connect) CreateLink(ctx context.Context, in LinkInput) (*Link, error) {
	app, err := c.apps.Get(ctx, in.AppID)
	if errors.Is(err, ErrNotFound) {
		return nil, FieldErrors{"app_id": "No such app."}
	}
	if err != nil {
		return nil, err
	}
	fe := FieldErrors{}
	ref := strings.TrimSpace(in.CustomerRef)
	var connID *string
	if in.ConnectionID != "" {
		conn, err := c.store.ConnectionByID(ctx, in.ConnectionID)
		if errors.Is(err, models.ErrNotFound) || (err == nil && conn.AppID != app.ID) {
			return nil, ErrNotFound
		} else if err != nil {
			return nil, err
		}
		if ref == "" {
			ref = conn.CustomerRef
		}
		connID = &conn.ID
	}
	if problem := checkCustomerRef(ref, connID == nil); problem != "" {
		fe.Add("customer_ref", problem)
	}
	returnURL := strings.TrimSpace(in.ReturnURL)
	if returnURL != "" {
		if problem := CheckReturnURL(app, returnURL); problem != "" {
			fe.Add("return_url", problem)
		}
	}
	ttl := in.TTL
	if ttl == 0 {
		ttl = DefaultLinkTTL
	}
	if ttl < 10*time.Minute || ttl > MaxLinkTTL {
		fe.Add("ttl", "A link lives between 10 minutes and 90 days.")
	}
	if err := fe.OrNil(); err != nil {
		return nil, err
	}
	token := models.RandomToken(20) // 160 bits
	link := models.ConnectLink{
		ID: models.NewID("lnk"), TokenHash: hashToken(token), AppID: app.ID, CustomerRef: ref, ReturnURL: returnURL,
		ConnectionID: connID, CreatedBy: in.CreatedBy, ExpiresAt: c.now().Add(ttl), CreatedAt: c.now(),
	}
	if link.TokenEnc, err = c.box.Seal(token, secrets.AAD("connect_link", link.ID, "token")); err != nil {
		return nil, err
	}
	if err := c.store.CreateConnectLink(ctx, &link); err != nil {
		return nil, err
	}
	if connID != nil {
		c.store.AddEvent(ctx, &models.Event{ConnectionID: connID, AppID: &app.ID, Type: "reconnect_link.created",
			Message: "Reconnect link created, valid until " + link.ExpiresAt.Format("2006-01-02 15:04 UTC"), Actor: in.CreatedBy})
	}
	return &Link{ConnectLink: link, URL: c.linkURL(token), App: app}, nil
}

func (c *Connect) linkURL(token string) string { return c.baseURL + "/connect/" + token }

// LinkURL reopens a stored link's URL, so it can be copied again.
func (c *Connect) LinkURL(l *models.ConnectLink) (string, error) {
	token, err := c.box.Open(l.TokenEnc, secrets.AAD("connect_link", l.ID, "token"))
	if err != nil {
		return "", err
	}
	return c.linkURL(token), nil
}

// RecentLinks returns the newest links of an app (or of one connection) with their URLs.
func (c *Connect) RecentLinks(ctx context.Context, appID, connectionID string, limit int) ([]Link, error) {
	rows, err := c.store.RecentConnectLinks(ctx, appID, connectionID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Link, 0, len(rows))
	for _, r := range rows {
		u, err := c.LinkURL(&r)
		if err != nil {
			return nil, err
		}
		out = append(out, Link{ConnectLink: r, URL: u})
	}
	return out, nil
}

func checkCustomerRef(ref string, required bool) string {
	switch {
	case ref == "" && required:
		return "Enter who this link is for, like customer-42."
	case utf8.RuneCountInString(ref) > 200:
		return "Use at most 200 characters."
	case strings.IndexFunc(ref, unicode.IsControl) >= 0:
		return "Use printable characters only."
	}
	return ""
}

// CheckReturnURL says what is wrong with a return URL for app ("" when it is
// allowed): it must be http(s) and on one of the app's return origins.
func CheckReturnURL(app *models.App, raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(raw) > 2000 {
		return "Enter an absolute http(s) URL."
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	for _, o := range app.Origins() {
		if o == origin {
			return ""
		}
	}
	if len(app.Origins()) == 0 {
		return "This app allows no return URLs. Add the origin to the app's return origins first."
	}
	return "Not on the app's return origins (" + strings.Join(app.Origins(), ", ") + ")."
}

// Link errors, for the public connect page.
var (
	ErrLinkNotFound = errors.New("this connect link does not exist")
	ErrLinkExpired  = errors.New("this connect link has expired")
	ErrLinkUsed     = errors.New("this connect link was already used")
)

// OpenLink finds the link for a token. An expired or used link is returned along
// with ErrLinkExpired or ErrLinkUsed, so the page can say whose link it was.
func (c *Connect) OpenLink(ctx context.Context, token string) (*Link, error) {
	if len(token) < 16 || len(token) > 64 {
		return nil, ErrLinkNotFound
	}
	l, err := c.store.ConnectLinkByTokenHash(ctx, hashToken(token))
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrLinkNotFound
	}
	if err != nil {
		return nil, err
	}
	link := &Link{ConnectLink: *l, URL: c.linkURL(token)}
	app, err := c.apps.Get(ctx, l.AppID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrLinkNotFound // the app was deleted
	} else if err != nil {
		return nil, err
	}
	link.App = app
	switch {
	case l.UsedAt != nil:
		return link, ErrLinkUsed
	case link.Expired(c.now()):
		return link, ErrLinkExpired
	}
	return link, nil
}

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
	if err := c.store.CreateAuthState(ctx, as); err != nil {
		return "", err
	}
	// Old states are only evidence of abandoned attempts; sweep them as we go.
	if _, err := c.store.DeleteExpiredAuthStates(ctx, now.Add(-24*time.Hour)); err != nil {
		c.log.Warn("sweep expired auth states", "error", err)
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

// Callback completes an authorization: it checks the state (known, fresh, unused,
// same browser), exchanges the code, identifies the account and saves the connection.
func (c *Connect) Callback(ctx context.Context, in CallbackInput) (*CallbackResult, error) {
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
	prob := func(kind, msg string, badInput bool) *CallbackProblem {
		p := &CallbackProblem{Kind: kind, Message: msg, BadInput: badInput}
		c.describeRetry(ctx, as, p)
		return p
	}
	switch {
	case as.UsedAt != nil:
		return nil, prob("state_used", "This authorization was already completed. If you reloaded the page, your account may already be connected.", true)
	case !c.now().Before(as.ExpiresAt):
		return nil, prob("state_expired", "This authorization took longer than 10 minutes and expired. Please try again.", true)
	case in.BrowserNonce == "" || hashToken(in.BrowserNonce) != as.BrowserHash:
		return nil, prob("foreign_browser", "This authorization was started in another browser. Open the connect link in this browser and try again.", true)
	}
	if err := c.store.ConsumeAuthState(ctx, as.ID); errors.Is(err, models.ErrAlreadyUsed) {
		return nil, prob("state_used", "This authorization was already completed.", true)
	} else if err != nil {
		return nil, err
	}
	switch {
	case in.Error == "access_denied":
		return nil, prob("access_denied", "You declined access on GetResponse, so nothing was connected. You can try again whenever you like.", true)
	case in.Error != "":
		return nil, prob("provider_error", "GetResponse did not grant access ("+truncate(in.Error, 60)+"). Please try again.", true)
	case in.Code == "":
		return nil, prob("no_code", "GetResponse sent you back without an authorization. Please try again.", true)
	}
	app, err := c.store.AppByID(ctx, as.AppID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, prob("state_unknown", "The app you were connecting to was removed.", true)
	} else if err != nil {
		return nil, err
	}
	ga, err := c.apps.Client(app, c.RedirectURL())
	if err != nil {
		return nil, err
	}
	tok, err := c.gr.Exchange(ctx, ga, in.Code)
	if err != nil {
		c.log.Warn("code exchange failed", "app", app.ID, "error", err)
		badInput := errors.Is(err, getresponse.ErrGrantRejected) || errors.Is(err, getresponse.ErrClientRejected)
		return nil, prob("exchange_failed", "GetResponse did not accept the authorization ("+describeGRError(err)+"). Please try again.", badInput)
	}
	acct, _, err := c.gr.Account(ctx, ga, tok.AccessToken)
	if err != nil {
		c.log.Warn("account lookup failed", "app", app.ID, "error", err)
		return nil, prob("account_failed", "Connected, but GetResponse did not tell us which account this is ("+describeGRError(err)+"). Please try again.", false)
	}
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
		Seal: func(id string) (models.SealedTokens, error) { return c.seal(id, tok) },
	})
	if errors.Is(err, models.ErrAccountMismatch) {
		return nil, prob("account_mismatch", "You signed in to a different GetResponse account ("+acct.Email+") than the one being reconnected. Sign in to the original account and try again.", true)
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

// seal encrypts a token response for connection id.
func (c *Connect) seal(id string, tok *getresponse.Token) (models.SealedTokens, error) {
	return sealTokens(c.box, id, tok, c.now())
}

func sealTokens(box *secrets.Box, id string, tok *getresponse.Token, now time.Time) (models.SealedTokens, error) {
	var st models.SealedTokens
	var err error
	if st.AccessEnc, err = box.Seal(tok.AccessToken, secrets.AAD("connection", id, "access_token")); err != nil {
		return st, err
	}
	if st.RefreshEnc, err = box.Seal(tok.RefreshToken, secrets.AAD("connection", id, "refresh_token")); err != nil {
		return st, err
	}
	st.Fingerprint = box.Fingerprint(tok.AccessToken)
	st.ExpiresAt = tok.Expiry.UTC().Truncate(time.Microsecond)
	if tok.Expiry.IsZero() {
		// GetResponse documents expires_in on every answer; assume its usual hour if it is missing.
		st.ExpiresAt = now.Add(time.Hour)
	}
	return st, nil
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

// describeGRError puts a GetResponse failure in a few words, never with a token.
func describeGRError(err error) string {
	var te *getresponse.TokenError
	var ae *getresponse.APIError
	switch {
	case errors.As(err, &te):
		if te.Code != "" {
			return te.Code
		}
		if te.HTTPStatus != 0 {
			return fmt.Sprintf("HTTP %d", te.HTTPStatus)
		}
		return string(te.Kind)
	case errors.As(err, &ae):
		return fmt.Sprintf("HTTP %d, code %d", ae.HTTPStatus, ae.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, getresponse.ErrTransient):
		return "network error"
	}
	return "unexpected error"
}

// GetLink returns one link with its URL, or ErrNotFound.
func (c *Connect) GetLink(ctx context.Context, id string) (*Link, error) {
	l, err := c.store.ConnectLinkByID(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	u, err := c.LinkURL(l)
	if err != nil {
		return nil, err
	}
	app, err := c.store.AppByID(ctx, l.AppID)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return nil, err
	}
	return &Link{ConnectLink: *l, URL: u, App: app}, nil
}
