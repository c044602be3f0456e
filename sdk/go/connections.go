package grconnect

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The states of a connection.
const (
	StatusActive         = "active"
	StatusRefreshFailing = "refresh_failing"
	StatusNeedsReconnect = "needs_reconnect"
	StatusDisconnected   = "disconnected"
)

// Connection is one customer's connected GetResponse account. It never holds a token.
type Connection struct {
	ID          string  `json:"id"`
	AppID       string  `json:"app_id"`
	CustomerRef string  `json:"customer_ref"`
	MaxDomain   string  `json:"max_domain"`
	Status      string  `json:"status"`
	Account     Account `json:"account"`
	// ExpiresAt is when the access token expires; nil once disconnected.
	ExpiresAt      *time.Time `json:"expires_at"`
	LastRefreshAt  *time.Time `json:"last_refresh_at"`
	LastError      string     `json:"last_error"`
	FailureCount   int        `json:"failure_count"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	ConnectedAt    time.Time  `json:"connected_at"`
	DisconnectedAt *time.Time `json:"disconnected_at"`
	// EventsURL is where GetResponse's webhooks for this account go, when the
	// server offers it.
	EventsURL string `json:"events_url,omitempty"`
}

// Account is the GetResponse account behind a connection.
type Account struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	Name        string `json:"name"`
	CompanyName string `json:"company_name"`
}

// Connection returns one connection.
func (c *Client) Connection(ctx context.Context, id string) (*Connection, error) {
	if err := requireID("connection", id); err != nil {
		return nil, err
	}
	var conn Connection
	if err := c.call(ctx, request{method: http.MethodGet, path: "/connections/" + segment(id), idempotent: true}, &conn); err != nil {
		return nil, err
	}
	return &conn, nil
}

// ConnectionFilter narrows a list of connections; empty fields do not filter.
type ConnectionFilter struct {
	CustomerRef string
	Status      string // one of the Status… constants
	AppID       string
	// Limit is the page size, 1 to 500 (0: the server's default, 50).
	Limit int
}

// ConnectionPage is one page of connections.
type ConnectionPage struct {
	Connections []Connection `json:"connections"`
	// NextCursor fetches the next page; "" on the last one.
	NextCursor string `json:"-"`
}

// ConnectionsPage returns the page of connections that cursor names ("" for the first).
func (c *Client) ConnectionsPage(ctx context.Context, f ConnectionFilter, cursor string) (*ConnectionPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"customer_ref": f.CustomerRef, "status": f.Status, "app_id": f.AppID, "cursor": cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var page struct {
		Connections []Connection `json:"connections"`
		NextCursor  *string      `json:"next_cursor"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/connections", query: q, idempotent: true}, &page); err != nil {
		return nil, err
	}
	out := &ConnectionPage{Connections: page.Connections}
	if page.NextCursor != nil {
		out.NextCursor = *page.NextCursor
	}
	return out, nil
}

// Connections yields every connection that f matches, fetching page after page
// as the loop goes on. An error ends the sequence after it is yielded.
//
//	for conn, err := range gc.Connections(ctx, grconnect.ConnectionFilter{Status: grconnect.StatusNeedsReconnect}) {
//		if err != nil { return err }
//		…
//	}
func (c *Client) Connections(ctx context.Context, f ConnectionFilter) iter.Seq2[Connection, error] {
	return func(yield func(Connection, error) bool) {
		cursor := ""
		for {
			page, err := c.ConnectionsPage(ctx, f, cursor)
			if err != nil {
				yield(Connection{}, err)
				return
			}
			for _, conn := range page.Connections {
				if !yield(conn, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			cursor = page.NextCursor
		}
	}
}

// Refresh has grconnect refresh the connection's tokens now (it always asks
// GetResponse) and returns the connection as it is afterwards. The cached token
// is forgotten.
func (c *Client) Refresh(ctx context.Context, id string) (*Connection, error) {
	if err := requireID("connection", id); err != nil {
		return nil, err
	}
	c.ForgetToken(id)
	var conn Connection
	if err := c.call(ctx, request{method: http.MethodPost, path: "/connections/" + segment(id) + "/refresh"}, &conn); err != nil {
		return nil, err
	}
	return &conn, nil
}

// Disconnect erases the connection's tokens at grconnect; the record stays, as
// disconnected. The cached token is forgotten.
func (c *Client) Disconnect(ctx context.Context, id string) (*Connection, error) {
	if err := requireID("connection", id); err != nil {
		return nil, err
	}
	c.ForgetToken(id)
	var conn Connection
	if err := c.call(ctx, request{method: http.MethodDelete, path: "/connections/" + segment(id), idempotent: true}, &conn); err != nil {
		return nil, err
	}
	return &conn, nil
}

// ConnectSessionParams describes a connect link.
type ConnectSessionParams struct {
	// AppID is the app the customer connects to (may be left out with ConnectionID).
	AppID string
	// CustomerRef is your own ID of the customer (may be left out with ConnectionID).
	CustomerRef string
	// ReturnURL is where the customer is sent back; it must be on one of the app's
	// return origins.
	ReturnURL string
	// ConnectionID makes a reconnect link, which renews that connection.
	ConnectionID string
	// TTL is how long the link works (0: 7 days); whole seconds.
	TTL time.Duration
	// AllowTransfer lets the flow move a connection of the same GetResponse account
	// from another customer.
	AllowTransfer bool
	// MaxDomain is the customer's GetResponse MAX domain, when known.
	MaxDomain string
}

// ConnectSession is a single-use connect link for one customer.
type ConnectSession struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateConnectSession makes a connect link; send the customer to its URL.
func (c *Client) CreateConnectSession(ctx context.Context, p ConnectSessionParams) (*ConnectSession, error) {
	body := map[string]any{}
	for k, v := range map[string]string{"app_id": p.AppID, "customer_ref": p.CustomerRef, "return_url": p.ReturnURL,
		"connection_id": p.ConnectionID, "max_domain": p.MaxDomain} {
		if v != "" {
			body[k] = v
		}
	}
	if p.TTL > 0 {
		body["ttl_seconds"] = int64(p.TTL / time.Second)
	}
	if p.AllowTransfer {
		body["allow_transfer"] = true
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	var s ConnectSession
	if err := c.call(ctx, request{method: http.MethodPost, path: "/connect-sessions", body: b}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// RevokeConnectSession revokes an unused connect link.
func (c *Client) RevokeConnectSession(ctx context.Context, id string) error {
	if err := requireID("connect session", id); err != nil {
		return err
	}
	return c.call(ctx, request{method: http.MethodDelete, path: "/connect-sessions/" + segment(id), idempotent: true}, nil)
}
