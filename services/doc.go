// Package services holds grconnect's domain logic: operators, app registrations,
// connect flows, webhooks and events; the token engine is its own package,
// services/tokens. Services take a context and return typed errors; they know
// nothing of HTTP or HTML.
package services
