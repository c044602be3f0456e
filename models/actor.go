package models

import "context"

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

// auditEntryFor builds the audit entry of an action by ctx's actor (ok is false when
// ctx has none). The store names the target as it is when the entry is written.
func auditEntryFor(ctx context.Context, action AuditAction, targetType, targetID, details string) (AuditEntry, bool) {
	a, ok := ActorOf(ctx)
	if !ok {
		return AuditEntry{}, false
	}
	name := a.Name
	if name == "" {
		name = AnonymousActor
	}
	return AuditEntry{Actor: name, IP: a.IP, Action: action, TargetType: targetType, TargetID: targetID, Details: details}, true
}

// Auditing returns ctx carrying the audit entry of a change that the store writes
// in the change's own transaction (WithAudit); without an actor, ctx as it is.
func Auditing(ctx context.Context, action AuditAction, targetType, targetID, details string) context.Context {
	return AuditingNamed(ctx, action, targetType, targetID, "", details)
}

// AuditingNamed is Auditing with the target's name given: for a change that
// deletes its target (the store could not read the name afterwards) or makes it.
func AuditingNamed(ctx context.Context, action AuditAction, targetType, targetID, targetName, details string) context.Context {
	if e, ok := auditEntryFor(ctx, action, targetType, targetID, details); ok {
		e.TargetName = targetName
		return WithAudit(ctx, e)
	}
	return ctx
}

// RecordAction writes the audit entry of a change that is not one transaction (a
// refresh, a failed sign-in, a key rotation, a backup) by ctx's actor; without an
// actor it writes nothing.
func (s *Store) RecordAction(ctx context.Context, action AuditAction, targetType, targetID, details string) error {
	e, ok := auditEntryFor(ctx, action, targetType, targetID, details)
	if !ok {
		return nil
	}
	return s.RecordAudit(ctx, e)
}
