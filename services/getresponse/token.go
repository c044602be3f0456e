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
	ctx, cancel := c.tokenContext(ctx, app)
	defer cancel()
	tok, err := c.oauthConfig(app).Exchange(ctx, code)
	if err != nil {
		return nil, classifyTokenError("exchange", err, app.ClientSecret, code)
	}
	return convertToken(tok), nil
}

// Refresh asks the token endpoint for a new access token now, whatever the
// expiry of the current one. The returned RefreshToken is "" when the server
// sent none (keep the old one). Errors are *TokenError.
func (c *Client) Refresh(ctx context.Context, app App, refreshToken string) (*Token, error) {
	if err := checkApp(app, "refresh"); err != nil {
		return nil, err
	}
	if refreshToken == "" {
		return nil, &TokenError{Op: "refresh", Kind: KindNeedsReconnect, Description: "no refresh token stored"}
	}
	ctx, cancel := c.tokenContext(ctx, app)
	defer cancel()
	// An already expired token makes the TokenSource call the endpoint at once.
	src := c.oauthConfig(app).TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	tok, err := src.Token()
	if err != nil {
		return nil, classifyTokenError("refresh", err, app.ClientSecret, refreshToken)
	}
	return convertToken(tok), nil
}

func checkApp(app App, op string) error {
	if app.APIURL == "" || app.ClientID == "" {
		return &TokenError{Op: op, Kind: KindInvalidRequest, Description: "app has no API URL or client ID"}
	}
	return nil
}

func (c *Client) tokenContext(ctx context.Context, app App) (context.Context, context.CancelFunc) {
	timeout := c.TokenTimeout
	if timeout <= 0 {
		timeout = DefaultTokenTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return context.WithValue(ctx, oauth2.HTTPClient, c.tokenHTTPClient(app)), cancel
}

// convertToken copies x/oauth2's token, undoing its habit of filling in the
// sent refresh token when the answer had none.
func convertToken(t *oauth2.Token) *Token {
	out := &Token{AccessToken: t.AccessToken, TokenType: t.TokenType}
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
	te.HTTPStatus = status
	te.Code = re.ErrorCode
	te.Description = re.ErrorDescription
	env, isEnv := parseEnvelope(re.Body)
	if isEnv {
		if te.Code == "" {
			te.Code = strconv.Itoa(env.Code)
			if env.Code == 0 {
				te.Code = ""
			}
		}
		if te.Description == "" {
			te.Description = env.Message
			if te.Description == "" {
				te.Description = env.CodeDescription
			}
		}
	}

	switch {
	case status == http.StatusTooManyRequests || (isEnv && env.Code == CodeQuotaReached):
		te.Kind = KindRateLimited
		te.RetryAfter = waitHint(re.Response.Header)
		if te.RetryAfter == 0 && isEnv {
			te.RetryAfter, _ = env.timeToReset()
		}
	case status >= 500:
		te.Kind = KindTransient
		te.RetryAfter = waitHint(re.Response.Header)
	case isReconnectCode(re.ErrorCode):
		te.Kind = KindNeedsReconnect
	case isEnv && envelopeNeedsReconnect(env):
		te.Kind = KindNeedsReconnect
		if c := envelopeOAuthCode(env); c != "" {
			te.Code = c
		}
	case status == http.StatusUnauthorized:
		// RFC 6749 §5.2: a failed client authentication answers 401.
		te.Kind = KindNeedsReconnect
		if te.Code == "" {
			te.Code = "invalid_client"
		}
	default:
		te.Kind = KindInvalidRequest
	}
	if te.Description == "" {
		te.Description = http.StatusText(status)
	}
	te.Description = truncate(redact(te.Description, secrets))
	te.Code = truncate(redact(te.Code, secrets))
	return te
}

func isReconnectCode(code string) bool {
	return code == "invalid_grant" || code == "invalid_client"
}

// envelopeNeedsReconnect decides from a GetResponse envelope on the token
// endpoint: its text naming invalid_grant/invalid_client, or codes 1014,
// 1017, 1018.
func envelopeNeedsReconnect(env envelope) bool {
	switch env.Code {
	case CodeAuthFailed, CodeAPIBlocked, CodeIPBlocked:
		return true
	}
	return envelopeOAuthCode(env) != ""
}

func envelopeOAuthCode(env envelope) string {
	text := strings.ToLower(env.Message + " " + env.CodeDescription + " " + string(env.Context))
	for _, c := range []string{"invalid_grant", "invalid_client"} {
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
