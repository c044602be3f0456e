package services

import (
	"context"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/tokens"
)

// Connections reads connections and ends them. Lists and counts are read-only
// queries the handlers ask the store for directly; tokens are the engine's
// (services/tokens).
type Connections struct {
	store  *models.Store
	tokens *tokens.Tokens
}

// NewConnections returns the connections service.
func NewConnections(store *models.Store, engine *tokens.Tokens) *Connections {
	return &Connections{store: store, tokens: engine}
}

// Get returns connection id (models.ErrNotFound when there is none).
func (c *Connections) Get(ctx context.Context, id string) (*models.Connection, error) {
	return c.store.ConnectionByID(ctx, id)
}

// Disconnect erases a connection's tokens and marks it disconnected, in the
// audit log as actor's (ctx's actor) action. The engine forgets what it held of
// the connection first, so a database outage cannot hand out its tokens.
func (c *Connections) Disconnect(ctx context.Context, id, actor string) error {
	ctx = models.Auditing(ctx, models.AuditDisconnected, models.AuditTargetConnection, id, "Disconnected; tokens erased")
	c.tokens.Forget(id)
	return c.store.Disconnect(ctx, id, actor)
}
