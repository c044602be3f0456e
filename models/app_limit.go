package models

import (
	"context"
	"strconv"
)

// ConnectionAppID returns the app of connection id (ErrNotFound when there is
// none): what an API key limited to one app checks before acting on it.
func (s *Store) ConnectionAppID(ctx context.Context, id string) (string, error) {
	return s.appIDOf(ctx, "SELECT app_id FROM connections WHERE id = ?", id, "connection")
}

// ConnectLinkAppID returns the app of connect link id (ErrNotFound when there is none).
func (s *Store) ConnectLinkAppID(ctx context.Context, id string) (string, error) {
	return s.appIDOf(ctx, "SELECT app_id FROM connect_links WHERE id = ?", id, "connect link")
}

// DeliveryAppID returns the app of webhook delivery id (a number), or ErrNotFound.
func (s *Store) DeliveryAppID(ctx context.Context, id string) (string, error) {
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return "", storeError(ErrNotFound, "read the app of webhook delivery %q", id)
	}
	return s.appIDOf(ctx, "SELECT app_id FROM webhook_deliveries WHERE id = ?", id, "webhook delivery")
}

func (s *Store) appIDOf(ctx context.Context, query, id, what string) (string, error) {
	var ids []string
	if err := s.db.WithContext(ctx).Raw(query, id).Scan(&ids).Error; err != nil {
		return "", storeError(err, "read the app of %s %s", what, id)
	}
	if len(ids) == 0 {
		return "", storeError(ErrNotFound, "read the app of %s %s", what, id)
	}
	return ids[0], nil
}
