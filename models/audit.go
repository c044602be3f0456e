package models

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// AuditAction names what an audited change did: "<target type>.<verb>".
type AuditAction string

// The audited actions. Each is recorded once per change, with who did it (an
// operator's e-mail, "api:<key name>" or "cli"), from which address, on what, and
// what changed in words — never a password, token, key or secret.
const (
	AuditSignedIn        AuditAction = "operator.signed_in"
	AuditSignInFailed    AuditAction = "operator.sign_in_failed"
	AuditSignedOut       AuditAction = "operator.signed_out"
	AuditSessionsEnded   AuditAction = "operator.sessions_ended"
	AuditOperatorCreated AuditAction = "operator.created"
	AuditOperatorRemoved AuditAction = "operator.removed"
	AuditPasswordChanged AuditAction = "operator.password_changed"
	AuditAlertsChanged   AuditAction = "operator.alerts_changed"
	// A signed-in operator confirmed their password for sensitive actions, or
	// failed to.
	AuditReauthenticated AuditAction = "operator.reauthenticated"
	AuditReauthFailed    AuditAction = "operator.reauth_failed"
	// A password reset link was made (by an operator or the command line) or used.
	AuditResetLinkCreated AuditAction = "operator.reset_link_created"
	AuditResetLinkUsed    AuditAction = "operator.reset_link_used"

	AuditAppCreated       AuditAction = "app.created"
	AuditAppUpdated       AuditAction = "app.updated"
	AuditAppSecretChanged AuditAction = "app.secret_changed"
	AuditAppDeleted       AuditAction = "app.deleted"
	AuditWebhookChanged   AuditAction = "app.webhook_changed"
	AuditWebhookReplayed  AuditAction = "app.webhook_replayed"
	AuditCallbacksChanged AuditAction = "app.callbacks_changed"

	// A role changed (admin or viewer).
	AuditRoleChanged AuditAction = "operator.role_changed"

	// Invitations: made (by an admin), revoked, and accepted (the invitee joins:
	// that entry's target is the new operator).
	AuditInvitationCreated  AuditAction = "invitation.created"
	AuditInvitationRevoked  AuditAction = "invitation.revoked"
	AuditInvitationAccepted AuditAction = "invitation.accepted"

	AuditAPIKeyCreated AuditAction = "api_key.created"
	AuditAPIKeyRevoked AuditAction = "api_key.revoked"
	// A key got a new secret; the old one works for the overlap chosen.
	AuditAPIKeyRolled AuditAction = "api_key.rolled"

	AuditLinkCreated          AuditAction = "link.created"
	AuditLinkRevoked          AuditAction = "link.revoked"
	AuditReconnectLinkCreated AuditAction = "connection.reconnect_link_created"
	AuditRefreshed            AuditAction = "connection.refreshed"
	AuditDisconnected         AuditAction = "connection.disconnected"
	AuditParentLoginChanged   AuditAction = "connection.parent_login_changed"
	AuditEventsURLRotated     AuditAction = "connection.events_url_rotated"

	AuditBulkStarted AuditAction = "bulk_job.started"

	AuditRekeyed       AuditAction = "install.rekeyed"
	AuditKeyRotated    AuditAction = "install.key_rotated"
	AuditBackupCreated AuditAction = "install.backup_created"
	AuditRestored      AuditAction = "install.restored"
)

// AuditActions lists every action, for the audit page's filter.
var AuditActions = []AuditAction{
	AuditSignedIn, AuditSignInFailed, AuditSignedOut, AuditSessionsEnded, AuditOperatorCreated, AuditOperatorRemoved,
	AuditPasswordChanged, AuditAlertsChanged, AuditReauthenticated, AuditReauthFailed, AuditResetLinkCreated, AuditResetLinkUsed,
	AuditRoleChanged,
	AuditInvitationCreated, AuditInvitationRevoked, AuditInvitationAccepted,
	AuditAppCreated, AuditAppUpdated, AuditAppSecretChanged, AuditAppDeleted, AuditWebhookChanged, AuditWebhookReplayed, AuditCallbacksChanged,
	AuditAPIKeyCreated, AuditAPIKeyRevoked, AuditAPIKeyRolled,
	AuditLinkCreated, AuditLinkRevoked, AuditReconnectLinkCreated, AuditRefreshed, AuditDisconnected, AuditParentLoginChanged, AuditEventsURLRotated,
	AuditBulkStarted,
	AuditRekeyed, AuditKeyRotated, AuditBackupCreated, AuditRestored,
}

// auditLabels says what each action did, in words, for the audit page and its filter.
var auditLabels = map[AuditAction]string{
	AuditSignedIn:             "Signed in",
	AuditSignInFailed:         "Sign-in failed",
	AuditSignedOut:            "Signed out",
	AuditSessionsEnded:        "Ended sessions",
	AuditOperatorCreated:      "Added an operator",
	AuditOperatorRemoved:      "Removed an operator",
	AuditPasswordChanged:      "Changed their password",
	AuditAlertsChanged:        "Changed alert e-mails",
	AuditReauthenticated:      "Confirmed their password",
	AuditReauthFailed:         "Gave a wrong password to confirm",
	AuditResetLinkCreated:     "Made a password reset link",
	AuditResetLinkUsed:        "Reset a password with a link",
	AuditRoleChanged:          "Changed a role",
	AuditInvitationCreated:    "Invited an operator",
	AuditInvitationRevoked:    "Revoked an invitation",
	AuditInvitationAccepted:   "Accepted an invitation",
	AuditAppCreated:           "Registered an app",
	AuditAppUpdated:           "Edited an app",
	AuditAppSecretChanged:     "Changed an app's client secret",
	AuditAppDeleted:           "Deleted an app",
	AuditWebhookChanged:       "Changed an app's webhook",
	AuditAPIKeyCreated:        "Created an API key",
	AuditAPIKeyRevoked:        "Revoked an API key",
	AuditAPIKeyRolled:         "Rolled an API key",
	AuditLinkCreated:          "Made a connect link",
	AuditLinkRevoked:          "Revoked a connect link",
	AuditReconnectLinkCreated: "Made a reconnect link",
	AuditRefreshed:            "Refreshed a connection",
	AuditDisconnected:         "Disconnected a connection",
	AuditParentLoginChanged:   "Changed a connection's parent login",
	AuditBulkStarted:          "Started a bulk refresh",
	AuditRekeyed:              "Re-sealed secrets with a new key",
	AuditKeyRotated:           "Rotated the install key",
	AuditBackupCreated:        "Made a backup",
	AuditRestored:             "Restored a backup",
}

// Label says what the action did, in words ("Registered an app"); an action this
// build does not know (written by a newer one) is its code.
func (a AuditAction) Label() string {
	if l, ok := auditLabels[a]; ok {
		return l
	}
	return string(a)
}

// The audit targets: what an entry is about. An action is "<target type>.<verb>"
// (but invitation.accepted is about the operator it made).
const (
	AuditTargetOperator   = "operator"
	AuditTargetInvitation = "invitation"
	AuditTargetApp        = "app"
	AuditTargetAPIKey     = "api_key"
	AuditTargetLink       = "link"
	AuditTargetConnection = "connection"
	AuditTargetBulkJob    = "bulk_job"
	AuditTargetInstall    = "install"
)

// AuditTargetTypes lists the target types, in the order filters offer them.
var AuditTargetTypes = []string{AuditTargetOperator, AuditTargetInvitation, AuditTargetApp, AuditTargetAPIKey,
	AuditTargetLink, AuditTargetConnection, AuditTargetBulkJob, AuditTargetInstall}

// auditTargetLabels names each target type for people: one, and the plural.
var auditTargetLabels = map[string][2]string{
	AuditTargetOperator:   {"operator", "Operators"},
	AuditTargetInvitation: {"invitation", "Invitations"},
	AuditTargetApp:        {"app", "Apps"},
	AuditTargetAPIKey:     {"API key", "API keys"},
	AuditTargetLink:       {"connect link", "Connect links"},
	AuditTargetConnection: {"connection", "Connections"},
	AuditTargetBulkJob:    {"bulk refresh", "Bulk refreshes"},
	AuditTargetInstall:    {"install", "The install"},
}

// AuditTargetLabel names a target type for people ("API key"); plural for a filter ("API keys").
func AuditTargetLabel(targetType string, plural bool) string {
	l, ok := auditTargetLabels[targetType]
	if !ok {
		return targetType
	}
	if plural {
		return l[1]
	}
	return l[0]
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID         int64 `gorm:"primaryKey"`
	CreatedAt  time.Time
	Actor      string // an operator's e-mail, "api:<key name>", "cli" or "anonymous"
	IP         string // the client's address ("" for the command line)
	Action     AuditAction
	TargetType string // one of AuditTargetTypes
	TargetID   string
	// TargetName is the target's name when the entry was written (an app's name, an
	// operator's e-mail), so it outlives the target.
	TargetName string
	Details    string // what changed, in words; never a secret
}

// TableName names the table.
func (AuditEntry) TableName() string { return "audit_log" }

// auditKey is the context key of a change's pending audit entry.
type auditKey struct{}

// pendingAudit is an audit entry waiting for the change it describes.
type pendingAudit struct {
	entry   AuditEntry
	written bool
}

// WithAudit returns ctx carrying e: the audited write made with it (creating an
// operator, revoking a key, …) records e in its own transaction, and only when it
// changed something. One entry is written at most once, whatever ctx is used for.
func WithAudit(ctx context.Context, e AuditEntry) context.Context {
	return context.WithValue(ctx, auditKey{}, &pendingAudit{entry: e})
}

// writeAudit inserts the entry ctx carries, if any, inside tx. Store methods call
// it at the point where their change is certain, in its transaction.
func writeAudit(ctx context.Context, tx *gorm.DB) error {
	p, _ := ctx.Value(auditKey{}).(*pendingAudit)
	if p == nil || p.written {
		return nil
	}
	e := p.entry
	if e.CreatedAt.IsZero() {
		e.CreatedAt = Now()
	}
	if err := insertAudit(tx, &e); err != nil {
		return err
	}
	p.written = true
	return nil
}

// hasAudit reports whether ctx carries an audit entry not yet written.
func hasAudit(ctx context.Context) bool {
	p, _ := ctx.Value(auditKey{}).(*pendingAudit)
	return p != nil && !p.written
}

// audited runs fn in a transaction that also records ctx's audit entry when there
// is one (fn reports whether it changed anything), or straight on the database
// when there is none: single-statement writes stay single statements.
func (s *Store) audited(ctx context.Context, fn func(tx *gorm.DB) (changed bool, err error)) error {
	if !hasAudit(ctx) {
		_, err := fn(s.db.WithContext(ctx))
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		changed, err := fn(tx)
		if err != nil || !changed {
			return err
		}
		return writeAudit(ctx, tx)
	})
}

// insertAudit writes e. An entry without a target name gets the name its target
// has now (see auditTargetName), read in the same transaction.
func insertAudit(tx *gorm.DB, e *AuditEntry) error {
	if e.TargetName == "" && e.TargetID != "" {
		name, err := auditTargetName(tx, e.TargetType, e.TargetID)
		if err != nil {
			return err
		}
		e.TargetName = name
	}
	return tx.Exec("INSERT INTO audit_log (created_at, actor, ip, action, target_type, target_id, target_name, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		e.CreatedAt, clip(e.Actor, 200), clip(e.IP, 64), string(e.Action), e.TargetType, clip(e.TargetID, 200), clip(e.TargetName, 300), clip(e.Details, 2000)).Error
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// RecordAudit writes an audit entry of its own, for a change that is not one
// transaction of this store (a refresh, a failed sign-in, a backup).
func (s *Store) RecordAudit(ctx context.Context, e AuditEntry) error {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = Now()
	}
	return storeError(insertAudit(s.db.WithContext(ctx), &e), "record audit entry %s", e.Action)
}

// AuditFilter selects and pages the audit log, newest first.
type AuditFilter struct {
	Actor  string // exact
	Action string // an action, or a target type's prefix such as "app."
	// TargetType and TargetID select one target (either may be empty).
	TargetType, TargetID string
	// AppID keeps the entries about one app: the app itself, its connect links and
	// its connections (an API key limited to the app reads only those).
	AppID        string
	Since, Until *time.Time // created at or after Since, before Until
	// Before is a cursor: entries older than it (the previous page's NextCursor).
	Before string
	Limit  int
}

// AuditPage is one page of the audit log.
type AuditPage struct {
	Entries    []AuditEntry
	NextCursor string // "" on the last page
}

// ListAudit returns one page of audit entries, newest first. Pages are keyset
// cursors over the entry ID, so page 1,000 costs what page 1 does.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) (*AuditPage, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	q, err := auditQuery(s.db.WithContext(ctx), f)
	if err != nil {
		return nil, err
	}
	var rows []AuditEntry
	if err := q.Order("id DESC").Limit(f.Limit + 1).Find(&rows).Error; err != nil {
		return nil, storeError(err, "list audit entries")
	}
	page := &AuditPage{Entries: rows}
	if len(rows) > f.Limit {
		page.Entries = rows[:f.Limit]
		page.NextCursor = encodeAuditCursor(page.Entries[f.Limit-1].ID)
	}
	return page, nil
}

// auditExportBatch is how many entries EachAudit reads at a time.
const auditExportBatch = 500

// EachAudit calls fn with every entry f selects, newest first, reading them in
// batches (keyset pages over the ID), so an export of a year of entries never
// holds them all in memory nor one long read. f.Limit is ignored; f.Before starts
// the walk. It stops at fn's first error, which it returns.
func (s *Store) EachAudit(ctx context.Context, f AuditFilter, fn func(AuditEntry) error) error {
	f.Limit = auditExportBatch
	for {
		page, err := s.ListAudit(ctx, f)
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		if page.NextCursor == "" {
			return nil
		}
		f.Before = page.NextCursor
	}
}

// auditQuery applies f's filters (not its limit) to q.
func auditQuery(q *gorm.DB, f AuditFilter) (*gorm.DB, error) {
	q = q.Model(&AuditEntry{})
	if f.Actor != "" {
		q = q.Where("actor = ?", f.Actor)
	}
	if f.Action != "" {
		q = q.Where("action IN ?", actionsMatching(f.Action))
	}
	if f.TargetType != "" {
		q = q.Where("target_type = ?", f.TargetType)
	}
	if f.TargetID != "" {
		q = q.Where("target_id = ?", f.TargetID)
	}
	if f.Since != nil {
		q = q.Where("created_at >= ?", f.Since.UTC())
	}
	if f.Until != nil {
		q = q.Where("created_at < ?", f.Until.UTC())
	}
	if f.AppID != "" {
		q = q.Where(`((target_type = ? AND target_id = ?)
			OR (target_type = ? AND target_id IN (SELECT id FROM connections WHERE app_id = ?))
			OR (target_type = ? AND target_id IN (SELECT id FROM connect_links WHERE app_id = ?)))`,
			AuditTargetApp, f.AppID, AuditTargetConnection, f.AppID, AuditTargetLink, f.AppID)
	}
	if f.Before != "" {
		id, err := decodeAuditCursor(f.Before)
		if err != nil {
			return nil, err
		}
		q = q.Where("id < ?", id)
	}
	return q, nil
}

// actionsMatching returns the actions a filter names: one action, or every action
// of a prefix such as "app.". An unknown action matches itself (and no entry).
func actionsMatching(filter string) []string {
	if !strings.HasSuffix(filter, ".") {
		return []string{filter}
	}
	var out []string
	for _, a := range AuditActions {
		if strings.HasPrefix(string(a), filter) {
			out = append(out, string(a))
		}
	}
	if len(out) == 0 {
		return []string{filter}
	}
	return out
}

func encodeAuditCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("a" + strconv.FormatInt(id, 10)))
}

func decodeAuditCursor(s string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < 2 || raw[0] != 'a' {
		return 0, ErrBadCursor
	}
	id, err := strconv.ParseInt(string(raw[1:]), 10, 64)
	if err != nil || id <= 0 {
		return 0, ErrBadCursor
	}
	return id, nil
}

// auditSweepBatch bounds one DELETE of old audit entries, so a first sweep of a
// year's backlog never holds the write lock for long.
const auditSweepBatch = 5000

// DeleteAuditBefore deletes the audit entries older than cutoff, in batches, and
// returns how many it deleted.
func (s *Store) DeleteAuditBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM audit_log WHERE id IN
			(SELECT id FROM audit_log WHERE created_at < ? ORDER BY id LIMIT ?)`, cutoff, auditSweepBatch)
		if res.Error != nil {
			return total, storeError(res.Error, "delete old audit entries")
		}
		total += res.RowsAffected
		if res.RowsAffected < auditSweepBatch {
			return total, nil
		}
	}
}
