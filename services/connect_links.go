package services

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// LinkInput is what an operator (or the API) asks a connect link for.
type LinkInput struct {
	AppID        string
	CustomerRef  string
	ReturnURL    string
	TTL          time.Duration // 0: DefaultLinkTTL
	ConnectionID string        // set for a reconnect link
	// MaxDomain is the customer's GetResponse MAX domain, when the operator knows
	// it (MAX apps only); "" takes the app's default or asks the customer.
	MaxDomain string
	// AllowTransfer lets the flow move a connection of the same GetResponse
	// account that belongs to another customer (recorded as connection.transferred).
	AllowTransfer bool
	CreatedBy     string
}

// Link is a connect link with its usable URL.
type Link struct {
	models.ConnectLink
	URL string
	App *models.App
}

// Expired reports whether the link can no longer start a connection.
func (l *Link) Expired(now time.Time) bool { return !now.Before(l.ExpiresAt) }

// State is the link's state in words: valid, used, revoked or expired.
func (l *Link) State(now time.Time) string {
	switch {
	case l.UsedAt != nil:
		return "used"
	case l.RevokedAt != nil:
		return "revoked"
	case l.Expired(now):
		return "expired"
	}
	return "valid"
}

// hashToken returns the stored form of a link token or OAuth state.
func hashToken(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// CreateLink validates in and makes a connect link. Problems come back as
// FieldErrors on customer_ref, return_url and ttl.
func (c *Connect) CreateLink(ctx context.Context, in LinkInput) (*Link, error) {
	app, err := c.apps.Get(ctx, in.AppID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, FieldErrors{"app_id": "No such app."}
	}
	if err != nil {
		return nil, err
	}
	fe := FieldErrors{}
	ref := strings.TrimSpace(in.CustomerRef)
	var connID *string
	domain := ""
	if raw := strings.TrimSpace(in.MaxDomain); raw != "" {
		d, err := getresponse.NormalizeDomain(raw)
		switch {
		case !IsMax(app):
			fe.Add("max_domain", "Only GetResponse MAX (Enterprise) apps take a MAX domain.")
		case err != nil:
			fe.Add("max_domain", "Enter the customer's GetResponse MAX address, like mycompany.getresponse360.com.")
		}
		domain = d
	}
	if in.ConnectionID != "" {
		conn, err := c.store.ConnectionByID(ctx, in.ConnectionID)
		if errors.Is(err, models.ErrNotFound) || (err == nil && conn.AppID != app.ID) {
			return nil, models.ErrNotFound
		} else if err != nil {
			return nil, err
		}
		if ref == "" {
			ref = conn.CustomerRef
		}
		if domain != "" && domain != conn.MaxDomain {
			fe.Add("max_domain", "A reconnect link renews the connection on its own MAX domain ("+conn.MaxDomain+").")
		}
		domain = conn.MaxDomain
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
		ConnectionID: connID, MaxDomain: domain, AllowTransfer: in.AllowTransfer,
		CreatedBy: in.CreatedBy, ExpiresAt: c.now().Add(ttl), CreatedAt: c.now(),
	}
	if link.TokenEnc, err = c.box.Seal(token, secrets.AAD("connect_link", link.ID, "token")); err != nil {
		return nil, err
	}
	var events []*models.Event
	valid := link.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	if connID != nil {
		events = append(events, &models.Event{ConnectionID: connID, AppID: &app.ID, Type: models.EventReconnectLinkCreated,
			Message: "Reconnect link created, valid until " + valid, Actor: in.CreatedBy})
		ctx = auditing(ctx, models.AuditReconnectLinkCreated, TargetConnection, *connID,
			fmt.Sprintf("Reconnect link %s created for customer %q (app %q), valid until %s", link.ID, ref, app.Name, valid))
	} else {
		details := fmt.Sprintf("Connect link for customer %q (app %q), valid until %s", ref, app.Name, valid)
		if in.AllowTransfer {
			details += "; it may move the account's connection from another customer"
		}
		ctx = auditing(ctx, models.AuditLinkCreated, TargetLink, link.ID, details)
	}
	if err := c.store.CreateConnectLink(ctx, &link, events...); err != nil {
		return nil, err
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
	case hasUnprintable(ref):
		return unprintableProblem
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
	ErrLinkRevoked  = errors.New("this connect link was revoked")
)

// OpenLink finds the link for a token. A used, revoked or expired link is returned
// along with ErrLinkUsed, ErrLinkRevoked or ErrLinkExpired, so the page can say
// whose link it was.
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
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrLinkNotFound // the app was deleted
	} else if err != nil {
		return nil, err
	}
	link.App = app
	switch {
	case l.UsedAt != nil:
		return link, ErrLinkUsed
	case l.RevokedAt != nil:
		return link, ErrLinkRevoked
	case link.Expired(c.now()):
		return link, ErrLinkExpired
	}
	return link, nil
}

// RevokeLink withdraws an unused link (its page then says so, and flows started
// from it cannot complete). A used link gives ErrLinkUsed; an unknown one
// models.ErrNotFound; revoking twice is harmless.
func (c *Connect) RevokeLink(ctx context.Context, id, actor string) (*models.ConnectLink, error) {
	ctx = auditing(ctx, models.AuditLinkRevoked, TargetLink, id, "Connect link revoked")
	l, err := c.store.RevokeConnectLink(ctx, id, actor)
	if errors.Is(err, models.ErrAlreadyUsed) {
		return nil, ErrLinkUsed
	}
	return l, err
}

// LinkDomain says on which GetResponse MAX domain a link's customer authorizes:
// the link's own (a reconnect link's is its connection's), else the app's
// default; ask is true when the customer must type it. Standard apps return
// "", false.
func LinkDomain(link *Link) (domain string, ask bool) {
	switch {
	case link.App == nil || !IsMax(link.App):
		return "", false
	case link.MaxDomain != "":
		return link.MaxDomain, false
	case link.ConnectionID != nil:
		// A reconnect link of a connection made before its app was MAX.
		return "", false
	case link.App.MaxDomain != "":
		return link.App.MaxDomain, false
	}
	return "", true
}

// GetLink returns one link with its URL, or models.ErrNotFound.
func (c *Connect) GetLink(ctx context.Context, id string) (*Link, error) {
	l, err := c.store.ConnectLinkByID(ctx, id)
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
