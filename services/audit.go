package services

import (
	"context"
	"log/slog"

	"github.com/grconnect/grconnect/models"
)

// Audit target types (models.AuditTargetTypes).
const (
	TargetOperator   = models.AuditTargetOperator
	TargetInvitation = models.AuditTargetInvitation
	TargetApp        = models.AuditTargetApp
	TargetAPIKey     = models.AuditTargetAPIKey
	TargetLink       = models.AuditTargetLink
	TargetConnection = models.AuditTargetConnection
	TargetBulkJob    = models.AuditTargetBulkJob
	TargetInstall    = models.AuditTargetInstall
)

// TargetTypes are the audit target types, in the order filters list them.
var TargetTypes = models.AuditTargetTypes

// Audit reads the audit log.
type Audit struct {
	store *models.Store
	log   *slog.Logger
}

// NewAudit returns the audit log's reader.
func NewAudit(store *models.Store, log *slog.Logger) *Audit {
	return &Audit{store: store, log: log}
}

// List returns one page of entries, newest first.
func (a *Audit) List(ctx context.Context, f models.AuditFilter) (*models.AuditPage, error) {
	return a.store.ListAudit(ctx, f)
}

// Each calls fn with every entry f selects, newest first, read in batches.
func (a *Audit) Each(ctx context.Context, f models.AuditFilter, fn func(models.AuditEntry) error) error {
	return a.store.EachAudit(ctx, f, fn)
}

// LiveTargets returns which of refs still exist (see models.Store.LiveAuditTargets).
func (a *Audit) LiveTargets(ctx context.Context, refs []models.AuditTargetRef) (map[models.AuditTargetRef]string, error) {
	return a.store.LiveAuditTargets(ctx, refs)
}
