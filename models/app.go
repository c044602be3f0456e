package models

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"
)

// App is a GetResponse OAuth application registration.
type App struct {
	ID               string `gorm:"primaryKey"`
	Name             string
	ClientID         string
	ClientSecretEnc  string // sealed; see package secrets
	ClientSecretHint string // last four characters, for "set, ends in …3f2a"
	Edition          string // standard, max_us, max_pl
	// MaxDomain is a MAX app's default domain: links of the app use it without
	// asking the customer. "" makes every MAX customer give their own.
	MaxDomain        string
	LogoURL          string // shown on the customer's pages; "" for none
	SupportContact   string // an e-mail address or URL the customer's pages offer; "" for none
	AuthURL          string
	APIURL           string
	ReturnOrigins    string // newline-separated origins a connect flow may return to
	Demo             bool
	WebhookURL       string // where connection events are POSTed; "" for none
	WebhookSecretEnc string // sealed signing secret of the webhook (whsec_<base64>)
	// WebhookEvents are the event types the webhook gets: "" for every type (also
	// those added later), else a comma-separated list (see WebhookSubscribed).
	WebhookEvents string
	// WebhookPreviousSecretEnc is the signing secret a rotation replaced: deliveries
	// carry its signature beside the new one until WebhookPreviousUntil.
	WebhookPreviousSecretEnc string
	WebhookPreviousUntil     *time.Time
	// CallbackActions are the GetResponse callback actions registered for each new
	// or reconnected connection (comma-separated; "" registers none).
	CallbackActions string
	// Health says who must act when the app's refreshes fail for everyone (see
	// AppHealth); HealthReason says what GetResponse answered, in words.
	Health         AppHealth
	HealthReason   string
	HealthSince    *time.Time
	HealthRetryAt  *time.Time // the next probe may run from then
	HealthFailures int        // probes failed in a row
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DeletedAt      *time.Time
}

// Origins returns the allowed return origins as a list.
func (a *App) Origins() []string {
	var out []string
	for _, o := range strings.Split(a.ReturnOrigins, "\n") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// AppSummary is an app with the number of its live (not disconnected) connections.
type AppSummary struct {
	App
	Connections int64
}

// CreateApp inserts app. A live app with the same name gives ErrDuplicate. ID must be
// set by the caller (the client secret is sealed with it).
func (s *Store) CreateApp(ctx context.Context, app *App) error {
	if app.Health == "" {
		app.Health = AppHealthy
	}
	defer s.AppsWritten()
	err := s.audited(ctx, func(tx *gorm.DB) (bool, error) { return true, translate(tx.Create(app).Error) })
	return storeError(err, "create app %s", app.ID)
}

// appHealthColumns belong to the engine (SetAppHealth, ClaimAppProbe): an edit of
// the app never writes them back as they were read.
var appHealthColumns = []string{"health", "health_reason", "health_since", "health_retry_at", "health_failures"}

// UpdateApp saves every field of app but its health.
func (s *Store) UpdateApp(ctx context.Context, app *App) error {
	defer s.AppsWritten()
	res := s.db.WithContext(ctx).Where("deleted_at IS NULL").Omit(appHealthColumns...).Save(app)
	if res.Error != nil {
		return storeError(translate(res.Error), "update app %s", app.ID)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// UpdateAppAudited saves every field of app but its health and records ev (the edit, for the
// audit trail) in the same transaction.
func (s *Store) UpdateAppAudited(ctx context.Context, app *App, ev *Event) error {
	defer s.AppsWritten()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("deleted_at IS NULL").Omit(appHealthColumns...).Save(app)
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		if err := writeAudit(ctx, tx); err != nil {
			return err
		}
		return addEvent(tx, ev)
	})
	return storeError(err, "update app %s", app.ID)
}

// AppByID returns a live app.
func (s *Store) AppByID(ctx context.Context, id string) (*App, error) {
	var app App
	err := s.db.WithContext(ctx).Where("id = ? AND deleted_at IS NULL", id).First(&app).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch app %s", id)
	}
	return &app, nil
}

// DemoApp returns the live demo app, if there is one.
func (s *Store) DemoApp(ctx context.Context) (*App, error) {
	var app App
	// The demo app is demo mode's first app (its broken practice app comes later).
	err := s.db.WithContext(ctx).Where("demo = ? AND deleted_at IS NULL", true).Order("created_at, id").First(&app).Error
	if err != nil {
		return nil, storeError(translate(err), "fetch the demo app")
	}
	return &app, nil
}

// ListApps returns the live apps by name, each with its live connection count.
func (s *Store) ListApps(ctx context.Context) ([]AppSummary, error) {
	var apps []AppSummary
	err := s.db.WithContext(ctx).Model(&App{}).
		Select("apps.*, (SELECT COALESCE(SUM(n), 0) FROM connection_counts cc WHERE cc.app_id = apps.id AND cc.status <> ?) AS connections", StatusDisconnected).
		Where("deleted_at IS NULL").Order("name").Scan(&apps).Error
	return apps, storeError(err, "list apps")
}

// AppNames returns the live apps' IDs and names, by name (no counts: cheap for menus).
func (s *Store) AppNames(ctx context.Context) ([]App, error) {
	var apps []App
	err := s.db.WithContext(ctx).Select("id, name").Where("deleted_at IS NULL").Order("name").Find(&apps).Error
	return apps, storeError(err, "list app names")
}

// CountLiveConnections returns how many connections of app are not disconnected.
func (s *Store) CountLiveConnections(ctx context.Context, appID string) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Raw("SELECT COALESCE(SUM(n), 0) FROM connection_counts WHERE app_id = ? AND status <> ?",
		appID, StatusDisconnected).Scan(&n).Error
	return n, storeError(err, "count live connections of app %s", appID)
}

// DeleteApp marks the app deleted and erases its client secret. With
// disconnectConnections its live connections are disconnected (tokens erased,
// history kept, an event each); without it, an app that still has live connections
// gives ErrInUse.
func (s *Store) DeleteApp(ctx context.Context, id, actor string, disconnectConnections bool) (disconnected int64, err error) {
	defer s.AppsWritten()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var ids []string
		if err := tx.Model(&Connection{}).Where("app_id = ? AND status <> ?", id, StatusDisconnected).Pluck("id", &ids).Error; err != nil {
			return err
		}
		if len(ids) > 0 && !disconnectConnections {
			return ErrInUse
		}
		now := Now()
		res := tx.Model(&App{}).Where("id = ? AND deleted_at IS NULL", id).Updates(map[string]any{
			"deleted_at": now, "client_secret_enc": "", "client_secret_hint": "", "updated_at": now,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		for _, cid := range ids {
			if _, err := disconnect(tx, cid, actor, "App deleted; connection disconnected and its tokens erased"); err != nil {
				return err
			}
		}
		disconnected = int64(len(ids))
		return writeAudit(ctx, tx)
	})
	return disconnected, storeError(err, "delete app %s", id)
}
