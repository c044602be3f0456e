package grconnect

import (
	"context"
	"net/http"
	"time"
)

// Token is a connection's GetResponse access token.
type Token struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// String shows the token's last four characters only, so that a logged Token
// does not leak it.
func (t Token) String() string {
	tail := t.AccessToken
	if len(tail) > 4 {
		tail = "…" + tail[len(tail)-4:]
	}
	return t.TokenType + " " + tail + " (expires " + t.ExpiresAt.UTC().Format(time.RFC3339) + ")"
}

// flight is one token request that concurrent callers for a connection share.
type flight struct {
	done chan struct{}
	tok  Token
	err  error
	// stale is set (under Client.mu) when ForgetToken ran while the request was
	// out: its answer is handed to its callers but not cached.
	stale bool
}

// Token returns a usable access token for the connection: from the cache while it
// is valid beyond the token margin, else from grconnect, which refreshes it first
// when it is about to expire. Concurrent calls for one connection share one
// request. Call it before every GetResponse request; it is cheap.
func (c *Client) Token(ctx context.Context, connectionID string) (Token, error) {
	if err := requireID("connection", connectionID); err != nil {
		return Token{}, err
	}
	c.mu.Lock()
	if tok, ok := c.tokens[connectionID]; ok && c.now().Before(tok.ExpiresAt.Add(-c.tokenMargin)) {
		c.mu.Unlock()
		return tok, nil
	}
	f, shared := c.flights[connectionID]
	if !shared {
		f = &flight{done: make(chan struct{})}
		c.flights[connectionID] = f
		// The request outlives a caller that gives up: the others still want it,
		// and its answer fills the cache. The client's timeout bounds it.
		go c.fetchToken(context.WithoutCancel(ctx), connectionID, f)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return Token{}, ctx.Err()
	}
}

func (c *Client) fetchToken(ctx context.Context, connectionID string, f *flight) {
	var tok Token
	// Asking for a token twice is harmless, so it is retried like an idempotent call.
	err := c.call(ctx, request{method: http.MethodPost, path: "/connections/" + segment(connectionID) + "/token", idempotent: true}, &tok)
	c.mu.Lock()
	if c.flights[connectionID] == f {
		delete(c.flights, connectionID)
	}
	if err == nil && !f.stale {
		c.tokens[connectionID] = tok
	}
	c.mu.Unlock()
	f.tok, f.err = tok, err
	close(f.done)
}

// ForgetToken drops the connection's cached token, so that the next Token asks
// grconnect. Call it when GetResponse refused the token (HTTP 401). Refresh and
// Disconnect forget it themselves.
func (c *Client) ForgetToken(connectionID string) {
	c.mu.Lock()
	delete(c.tokens, connectionID)
	if f := c.flights[connectionID]; f != nil {
		f.stale = true
		delete(c.flights, connectionID)
	}
	c.mu.Unlock()
}
