package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// What grconnect wants of a connection's GetResponse callbacks.
const (
	CallbacksRegister = "register" // registered at the connection's events URL
	CallbacksRemove   = "remove"   // removed (the connection was disconnected, or the app turned them off)
)

// Where a callback registration stands.
const (
	CallbacksPending = "pending" // to be sent (again, after a transient failure)
	CallbacksDone    = "done"
	CallbacksFailed  = "failed" // GetResponse refused; someone must act (Actor)
)

// ConnectionCallback is a connection's GetResponse callback registration: what
// grconnect wants at GetResponse and how far it got. A row is written in the
// transaction of the event that calls for it (a connect, a reconnect, a
// disconnect, an app's setting), so nothing is lost on a crash; a worker sends
// it, retrying with backoff.
type ConnectionCallback struct {
	ConnectionID string `gorm:"primaryKey"`
	AppID        string
	Want         string // CallbacksRegister or CallbacksRemove
	Actions      string // comma-separated callback actions to register
	State        string // CallbacksPending, CallbacksDone or CallbacksFailed
	// Version counts the wants written: an outcome is recorded only for the
	// version it was sent for.
	Version       int
	Attempts      int
	NextAttemptAt time.Time
	LeaseOwner    string
	LeaseUntil    *time.Time
	LastError     string // what GetResponse answered, in words
	Actor         string // who must act on LastError: customer, operator or wait
	Note          string // what the last success did besides, in words
	// AccessTokenEnc is a disconnected connection's last access token (sealed for
	// the connection), kept only until its callbacks are removed.
	AccessTokenEnc string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DoneAt         *time.Time
}

// upsertCallbackSQL writes a new want for one connection over whatever was
// there: pending again, attempts from zero, version one more.
const upsertCallbackSQL = ` ON CONFLICT (connection_id) DO UPDATE SET app_id = excluded.app_id, want = excluded.want,
	actions = excluded.actions, state = excluded.state, version = connection_callbacks.version + 1, attempts = 0,
	next_attempt_at = excluded.next_attempt_at, lease_owner = '', lease_until = NULL, last_error = '', actor = '', note = '',
	access_token_enc = excluded.access_token_enc, updated_at = excluded.updated_at, done_at = NULL`

// queueCallbacks sets connection connID's want (and actions, and the sealed
// access token a removal after a disconnect needs) in tx.
func queueCallbacks(tx *gorm.DB, connID, appID, want, actions, accessEnc string, now time.Time) error {
	return tx.Exec(`INSERT INTO connection_callbacks (connection_id, app_id, want, actions, state, version, attempts,
		next_attempt_at, access_token_enc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, 0, ?, ?, ?, ?)`+upsertCallbackSQL,
		connID, appID, want, actions, CallbacksPending, now, accessEnc, now, now).Error
}

// registerOnConnect asks for a new or reconnected connection's callbacks to be
// registered, when its app registers callbacks (called in the event's transaction).
func registerOnConnect(tx *gorm.DB, e *Event) error {
	if e.ConnectionID == nil || (e.Type != EventConnectionCreated && e.Type != EventConnectionReconnected) {
		return nil
	}
	var app App
	err := tx.Select("apps.id, apps.callback_actions").Joins("JOIN connections c ON c.app_id = apps.id").
		Where("c.id = ?", *e.ConnectionID).First(&app).Error
	if err != nil || app.CallbackActions == "" {
		return err
	}
	return queueCallbacks(tx, *e.ConnectionID, app.ID, CallbacksRegister, app.CallbackActions, "", e.CreatedAt)
}

// removeOnDisconnect asks for the callbacks of connection id, which is being
// disconnected, to be removed, when grconnect registered them (or meant to):
// called before the disconnect erases the tokens, it keeps a copy of the sealed
// access token the removal is sent with.
func removeOnDisconnect(tx *gorm.DB, id string, now time.Time) error {
	var cb ConnectionCallback
	err := tx.Select("connection_id, app_id, want").Where("connection_id = ?", id).Limit(1).Find(&cb).Error
	if err != nil || cb.Want != CallbacksRegister {
		return err
	}
	var enc []string
	if err := tx.Model(&Connection{}).Where("id = ?", id).Pluck("access_token_enc", &enc).Error; err != nil || len(enc) == 0 {
		return err
	}
	return queueCallbacks(tx, id, cb.AppID, CallbacksRemove, "", enc[0], now)
}

// requeueRegistration sends the registration of connection id again (its events
// URL changed), when its callbacks are meant to be registered.
func requeueRegistration(tx *gorm.DB, id string, now time.Time) error {
	var cb ConnectionCallback
	err := tx.Select("connection_id, app_id, want, actions").Where("connection_id = ?", id).Limit(1).Find(&cb).Error
	if err != nil || cb.Want != CallbacksRegister {
		return err
	}
	return queueCallbacks(tx, id, cb.AppID, CallbacksRegister, cb.Actions, "", now)
}

// SetAppCallbacks stores the callback actions app id registers ("" for none) and
// applies them to its connections that hold tokens: each is registered again
// with the new actions, or, when the app turns callbacks off, those registered
// are removed. It reports how many connections it queued.
func (s *Store) SetAppCallbacks(ctx context.Context, id, actions string) (queued int64, err error) {
	defer s.AppsWritten()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := Now()
		res := tx.Model(&App{}).Where("id = ? AND deleted_at IS NULL", id).Updates(map[string]any{"callback_actions": actions, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		live := []Status{StatusActive, StatusRefreshFailing}
		if actions != "" {
			res = tx.Exec(`INSERT INTO connection_callbacks (connection_id, app_id, want, actions, state, version, attempts,
				next_attempt_at, access_token_enc, created_at, updated_at)
				SELECT c.id, c.app_id, ?, ?, ?, 1, 0, ?, '', ?, ? FROM connections c WHERE c.app_id = ? AND c.status IN ?`+upsertCallbackSQL,
				CallbacksRegister, actions, CallbacksPending, now, now, now, id, live)
		} else {
			res = tx.Exec(`UPDATE connection_callbacks SET want = ?, actions = '', state = ?, version = version + 1, attempts = 0,
				next_attempt_at = ?, lease_owner = '', lease_until = NULL, last_error = '', actor = '', note = '', updated_at = ?, done_at = NULL
				WHERE app_id = ? AND want = ? AND connection_id IN (SELECT id FROM connections WHERE app_id = ? AND status <> ?)`,
				CallbacksRemove, CallbacksPending, now, now, id, CallbacksRegister, id, StatusDisconnected)
		}
		if res.Error != nil {
			return res.Error
		}
		queued = res.RowsAffected
		return writeAudit(ctx, tx)
	})
	return queued, storeError(err, "set the callbacks of app %s", id)
}

// CallbackOf returns connection id's callback registration, or ErrNotFound when
// grconnect never meant to register any.
func (s *Store) CallbackOf(ctx context.Context, id string) (*ConnectionCallback, error) {
	var cb ConnectionCallback
	err := s.db.WithContext(ctx).Omit("access_token_enc").Where("connection_id = ?", id).First(&cb).Error
	if err != nil {
		return nil, storeError(translate(err), "read the callbacks of connection %s", id)
	}
	return &cb, nil
}

// DueCallbacks leases up to limit pending callback registrations whose time has
// come to owner (unique to this call).
func (s *Store) DueCallbacks(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]ConnectionCallback, error) {
	var ids []string
	err := s.db.WithContext(ctx).Model(&ConnectionCallback{}).
		Where("state = ? AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?)", CallbacksPending, now, now).
		Order("next_attempt_at").Limit(limit).Pluck("connection_id", &ids).Error
	if err != nil || len(ids) == 0 {
		return nil, storeError(err, "list due callback registrations")
	}
	res := s.db.WithContext(ctx).Model(&ConnectionCallback{}).
		Where("connection_id IN ? AND state = ? AND (lease_until IS NULL OR lease_until < ?)", ids, CallbacksPending, now).
		Updates(map[string]any{"lease_owner": owner, "lease_until": now.Add(lease)})
	if res.Error != nil || res.RowsAffected == 0 {
		return nil, storeError(res.Error, "lease callback registrations")
	}
	var out []ConnectionCallback
	err = s.db.WithContext(ctx).Where("connection_id IN ? AND lease_owner = ?", ids, owner).Find(&out).Error
	return out, storeError(err, "read leased callback registrations")
}

// CallbackOutcome is what one registration attempt came to.
type CallbackOutcome struct {
	State  string // CallbacksDone, CallbacksFailed, or CallbacksPending to try again at NextAt
	NextAt time.Time
	Error  string
	Actor  string
	Note   string
	Event  *Event // the timeline entry, if any
}

// SaveCallbackOutcome records the outcome of an attempt at version of connection
// id's registration, releasing owner's lease. When the want changed meanwhile
// (a newer version), the outcome is dropped and the newer want stays pending.
func (s *Store) SaveCallbackOutcome(ctx context.Context, id, owner string, version int, o CallbackOutcome, now time.Time) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		updates := map[string]any{"state": o.State, "attempts": gorm.Expr("attempts + 1"), "last_error": o.Error, "actor": o.Actor,
			"note": o.Note, "lease_owner": "", "lease_until": nil, "updated_at": now}
		switch o.State {
		case CallbacksPending:
			updates["next_attempt_at"] = o.NextAt
		default:
			updates["done_at"], updates["access_token_enc"] = now, ""
		}
		res := tx.Model(&ConnectionCallback{}).Where("connection_id = ? AND lease_owner = ? AND version = ?", id, owner, version).Updates(updates)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return tx.Model(&ConnectionCallback{}).Where("connection_id = ? AND lease_owner = ?", id, owner).
				Updates(map[string]any{"lease_owner": "", "lease_until": nil}).Error
		}
		if o.Event != nil {
			return addEvent(tx, o.Event)
		}
		return nil
	})
	return storeError(err, "save the callback registration of connection %s", id)
}

// CallbackAccessToken returns the sealed access token kept for removing the
// callbacks of disconnected connection id ("" when none is kept).
func (s *Store) CallbackAccessToken(ctx context.Context, id string) (string, error) {
	var enc []string
	err := s.db.WithContext(ctx).Model(&ConnectionCallback{}).Where("connection_id = ?", id).Pluck("access_token_enc", &enc).Error
	if err != nil || len(enc) == 0 {
		return "", storeError(err, "read the callback token of connection %s", id)
	}
	return enc[0], nil
}
