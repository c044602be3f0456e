package services

import (
	"context"
	"strings"

	"github.com/grconnect/grconnect/models"
)

// SetParentLogin sets the X-Parent-Login a connection's API calls send (for a
// GetResponse user who belongs to several parent accounts); "" sends none.
// A bad login comes back as FieldErrors on parent_login.
func (c *Connect) SetParentLogin(ctx context.Context, id, login, actor string) error {
	login = strings.TrimSpace(login)
	if len(login) > 100 || strings.IndexFunc(login, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return models.FieldErrors{"parent_login": "A GetResponse login is at most 100 letters, digits and signs, without spaces."}
	}
	details := "X-Parent-Login set to " + login
	if login == "" {
		details = "X-Parent-Login removed"
	}
	ctx = models.Auditing(ctx, models.AuditParentLoginChanged, TargetConnection, id, details)
	return c.store.SetParentLogin(ctx, id, login, actor)
}
