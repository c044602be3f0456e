package services

import (
	"context"
	"log/slog"

	"github.com/grconnect/grconnect/models"
)

// Actor is who asks for a change: an operator (their e-mail), the API ("api:<key
// name>") or the command line ("cli"), and from which address.
type Actor struct {
	Name string
	IP   string
}

// AnonymousActor names whoever acts without being signed in (a failed sign-in).
const AnonymousActor = "anonymous"

// CLIActor names the command line.
const CLIActor = "cli"

type actorKey struct{}

// WithActor returns ctx saying who acts. Changes made with it are recorded in the
// audit log; work without an actor (the refresher, webhooks, demo mode) is not an
// action of anyone's and is not.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf returns the actor of ctx, if there is one.
func ActorOf(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

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

// entryFor builds the audit entry of an action by ctx's actor (ok is false when
// ctx has none). The store names the target as it is when the entry is written.
func entryFor(ctx context.Context, action models.AuditAction, targetType, targetID, details string) (models.AuditEntry, bool) {
	a, ok := ActorOf(ctx)
	if !ok {
		return models.AuditEntry{}, false
	}
	name := a.Name
	if name == "" {
		name = AnonymousActor
	}
	return models.AuditEntry{Actor: name, IP: a.IP, Action: action, TargetType: targetType, TargetID: targetID, Details: details}, true
}

// auditing returns ctx carrying the audit entry of a change that the store writes
// in the change's own transaction (models.WithAudit); without an actor, ctx as it is.
func auditing(ctx context.Context, action models.AuditAction, targetType, targetID, details string) context.Context {
	return auditingNamed(ctx, action, targetType, targetID, "", details)
}

// auditingNamed is auditing with the target's name given: for a change that
// deletes its target (the store could not read the name afterwards) or makes it.
func auditingNamed(ctx context.Context, action models.AuditAction, targetType, targetID, targetName, details string) context.Context {
	if e, ok := entryFor(ctx, action, targetType, targetID, details); ok {
		e.TargetName = targetName
		return models.WithAudit(ctx, e)
	}
	return ctx
}

// RecordAudit writes the audit entry of a change that is not one transaction (a
// refresh, a failed sign-in, a key rotation, a backup) by ctx's actor; without an
// actor it writes nothing.
func RecordAudit(ctx context.Context, store *models.Store, action models.AuditAction, targetType, targetID, details string) error {
	e, ok := entryFor(ctx, action, targetType, targetID, details)
	if !ok {
		return nil
	}
	return store.RecordAudit(ctx, e)
}

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
