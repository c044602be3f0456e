package getresponse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Token is the result of an exchange or refresh.
type Token struct {
	AccessToken string
	// RefreshToken is "" when the server returned none; keep the old one then.
	RefreshToken string
	TokenType    string
	// ExpiresIn is the lifetime the server announced, 0 if it sent none.
	ExpiresIn time.Duration
	// Expiry is the absolute expiry, zero if the server sent no expires_in.
	Expiry time.Time
	// RateLimit is what the token answer's X-RateLimit-* headers said
	// (refreshes count against the account's budget).
	RateLimit RateLimit
}

func (c *Client) oauthConfig(app App) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     app.ClientID,
		ClientSecret: app.ClientSecret,
		RedirectURL:  app.RedirectURL,
		Endpoint: oauth2.Endpoint{
			AuthURL:   app.AuthURL,
			TokenURL:  app.TokenURL(),
			AuthStyle: oauth2.AuthStyleInHeader, // Basic only: the secret never goes in the body
		},
	}
}

// AuthCodeURL returns the authorize URL to send the user to:
// response_type=code, client_id, redirect_uri and state; no scope (GetResponse
// has a single one) and no PKCE (undocumented there).
func (c *Client) AuthCodeURL(app App, state string) string {
	return c.oauthConfig(app).AuthCodeURL(state)
}

// Exchange trades an authorization code for tokens. Errors are *TokenError.
func (c *Client) Exchange(ctx context.Context, app App, code string) (*Token, error) {
	if err := checkApp(app, "exchange"); err != nil {
		return nil, err
	}
	if code == "" {
		return nil, &TokenError{Op: "exchange", Kind: KindInvalidRequest, Description: "empty authorization code"}
	}
	ctx, ht, cancel := c.tokenContext(ctx, app)
	defer cancel()
	tok, err := c.oauthConfig(app).Exchange(ctx, code)
	if err != nil {
		return nil, classifyTokenError("exchange", err, app.ClientSecret, code)
	}
	return convertToken(tok, ht.rateLimit()), nil
}

// Refresh asks the token endpoint for a new access token now, whatever the
// expiry of the current one. The returned RefreshToken is "" when the server
// sent none (keep the old one). Errors are *TokenError; an empty
// refreshToken is KindNoRefreshToken without any call.
func (c *Client) Refresh(ctx context.Context, app App, refreshToken string) (*Token, error) {
	if err := checkApp(app, "refresh"); err != nil {
		return nil, err
	}
	if refreshToken == "" {
		return nil, &TokenError{Op: "refresh", Kind: KindNoRefreshToken, Description: "no refresh token stored"}
	}
	ctx, ht, cancel := c.tokenContext(ctx, app)
	defer cancel()
	// An already expired token makes the TokenSource call the endpoint at once.
	src := c.oauthConfig(app).TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return nil, classifyTokenError("refresh", err, app.ClientSecret, refreshToken)
	}
	return convertToken(tok, ht.rateLimit()), nil
}

// CheckCredentials asks the token endpoint for a client_credentials token
// (HTTP Basic with the app's client ID and secret, X-Domain for MAX) and
// returns nil when GetResponse accepts the credentials; the token itself is
// dropped. Otherwise it returns a *TokenError with Op "check": a wrong ID or
// secret is KindInvalidClient (ActorOperator), an unreachable or failing
// GetResponse is ActorWait. KindUnauthorizedClient means the credentials
// authenticated but the app may not use client_credentials.
func (c *Client) CheckCredentials(ctx context.Context, app App) error {
	if err := checkApp(app, "check"); err != nil {
		return err
	}
	ctx, _, cancel := c.tokenContext(ctx, app)
	defer cancel()
	cc := &clientcredentials.Config{
		ClientID:     app.ClientID,
		ClientSecret: app.ClientSecret,
		TokenURL:     app.TokenURL(),
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	if _, err := cc.Token(ctx); err != nil {
		return classifyTokenError("check", err, app.ClientSecret)
	}
	return nil
}

func checkApp(app App, op string) error {
	if app.APIURL == "" || app.ClientID == "" {
		return &TokenError{Op: op, Kind: KindInvalidRequest, Description: "app has no API URL or client ID"}
	}
	return nil
}

func (c *Client) tokenContext(ctx context.Context, app App) (context.Context, *headerTransport, context.CancelFunc) {
	timeout := c.TokenTimeout
	if timeout <= 0 {
		timeout = DefaultTokenTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	hc, ht := c.tokenHTTPClient(app)
	return context.WithValue(ctx, oauth2.HTTPClient, hc), ht, cancel
}

// convertToken copies x/oauth2's token, undoing its habit of filling in the
// sent refresh token when the answer had none.
func convertToken(t *oauth2.Token, rl RateLimit) *Token {
	out := &Token{AccessToken: t.AccessToken, TokenType: t.TokenType, RateLimit: rl}
	if v := t.Extra("refresh_token"); v != nil && fmt.Sprint(v) != "" {
		out.RefreshToken = t.RefreshToken
	}
	if t.ExpiresIn > 0 {
		out.ExpiresIn = time.Duration(t.ExpiresIn) * time.Second
		out.Expiry = t.Expiry
	}
	return out
}

// classifyTokenError turns what x/oauth2 returns into a *TokenError. secrets
// are scrubbed from any server text that ends up in the error.
func classifyTokenError(op string, err error, secrets ...string) *TokenError {
	te := &TokenError{Op: op}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		// No HTTP answer, or a 2xx that was not a token (malformed JSON,
		// missing access_token): all worth a retry.
		te.Kind = KindTransient
		te.Err = err
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			te.Description = "token request timed out"
		case errors.Is(err, context.Canceled):
			te.Description = "token request cancelled"
		case strings.HasPrefix(err.Error(), "oauth2: "):
			te.Description = "unreadable token answer"
			te.Err = errors.New(redact(err.Error(), secrets))
		default:
			te.Description = "token request failed"
		}
		return te
	}

	status := re.Response.StatusCode
	header := re.Response.Header
	te.HTTPStatus = status
	te.RateLimit = ParseRateLimit(header)
	te.Code = re.ErrorCode
	te.Description = re.ErrorDescription
	env, isEnv := parseEnvelope(re.Body)
	var envp *envelope
	if isEnv {
		envp = &env
		if te.Code == "" && env.Code != 0 {
			te.Code = strconv.Itoa(env.Code)
		}
		if te.Description == "" {
			te.Description = env.Message
			if te.Description == "" {
				te.Description = env.CodeDescription
			}
		}
	}
	oauthCode := re.ErrorCode
	if isEnv && oauthCode == "" {
		if c := envelopeOAuthCode(env); c != "" {
			oauthCode, te.Code = c, c
		}
	}

	switch {
	case status >= 300 && status < 400:
		te.Kind = KindRedirected
		te.Code = ""
		te.Description = fmt.Sprintf("the token endpoint answered a redirect (HTTP %d) to another address; check the app's API URL", status)
	case status == http.StatusTooManyRequests || (isEnv && env.Code == CodeQuotaReached):
		te.Kind = KindRateLimited
	case isEnv && waitCode(env.Code):
		te.Kind = KindRefused
	case status >= 500:
		te.Kind = KindTransient
	case oauthCode == "invalid_grant":
		te.Kind = KindInvalidGrant
	case oauthCode == "invalid_client":
		te.Kind = KindInvalidClient
	case oauthCode == "unauthorized_client":
		te.Kind = KindUnauthorizedClient
	case isEnv && env.Code == CodeAPIBlocked:
		te.Kind = KindBlocked
	case isEnv && (env.Code == CodeAuthFailed || configCode(env.Code)):
		te.Kind = KindMisconfigured
	case status == http.StatusUnauthorized:
		// RFC 6749 §5.2: a failed client authentication answers 401.
		te.Kind = KindInvalidClient
		if te.Code == "" {
			te.Code = "invalid_client"
		}
	case status >= 400 && status < 500:
		te.Kind = KindInvalidRequest
	case oauthCode != "":
		// A 2xx carrying an RFC error member, other than the ones above.
		te.Kind = KindInvalidRequest
	default:
		te.Kind = KindTransient
	}
	if te.Kind.Actor() == ActorWait {
		te.RetryAfter = retryAfter(status, header, envp, time.Now())
	}
	if te.Description == "" {
		te.Description = http.StatusText(status)
	}
	te.Description = truncate(redact(te.Description, secrets))
	te.Code = truncate(redact(te.Code, secrets))
	return te
}

// envelopeOAuthCode finds an RFC 6749 error code named in a GetResponse
// envelope's text (GetResponse may wrap invalid_grant in its own envelope).
func envelopeOAuthCode(env envelope) string {
	text := strings.ToLower(env.Message + " " + env.CodeDescription + " " + string(env.Context))
	for _, c := range []string{"invalid_grant", "invalid_client", "unauthorized_client"} {
		if strings.Contains(text, c) {
			return c
		}
	}
	return ""
}

// redact removes every non-empty secret from s, raw and URL-escaped.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		s = strings.ReplaceAll(s, sec, "[redacted]")
		if esc := url.QueryEscape(sec); esc != sec {
			s = strings.ReplaceAll(s, esc, "[redacted]")
		}
	}
	return s
}
