package models

import (
	"slices"
	"strings"
)

// APIScope is one thing an API key may do. Every route of the JSON API needs
// exactly one (the OpenAPI document names it per operation); a key made without
// any has them all.
type APIScope string

// The scopes of API keys.
const (
	ScopeConnectSessionsWrite APIScope = "connect_sessions:write"
	ScopeConnectionsRead      APIScope = "connections:read"
	ScopeConnectionsWrite     APIScope = "connections:write"
	ScopeTokensRead           APIScope = "tokens:read"
	ScopeProxy                APIScope = "proxy"
	ScopeAuditRead            APIScope = "audit:read"
	ScopeWebhooksWrite        APIScope = "webhooks:write"
)

// APIScopes lists every scope, in the order forms and lists show them.
var APIScopes = []APIScope{
	ScopeConnectSessionsWrite, ScopeConnectionsRead, ScopeConnectionsWrite, ScopeTokensRead,
	ScopeProxy, ScopeAuditRead, ScopeWebhooksWrite,
}

// scopeGrants says, per scope, what it lets a key do, in words.
var scopeGrants = map[APIScope]string{
	ScopeConnectSessionsWrite: "make and revoke connect links for customers",
	ScopeConnectionsRead:      "list connections and read one (never a token)",
	ScopeConnectionsWrite:     "refresh and disconnect connections",
	ScopeTokensRead:           "get a connection's access token",
	ScopeProxy:                "call GetResponse through grconnect's proxy",
	ScopeAuditRead:            "read and export the audit log",
	ScopeWebhooksWrite:        "read the webhook delivery log and replay deliveries",
}

// Grants says what the scope lets a key do, in words.
func (s APIScope) Grants() string { return scopeGrants[s] }

// Known reports whether s is one of APIScopes.
func (s APIScope) Known() bool { return slices.Contains(APIScopes, s) }

// JoinScopes is the stored form of a scope list: space-separated, in the order
// of APIScopes, each once. All scopes (or none) is "", every scope.
func JoinScopes(scopes []APIScope) string {
	var out []string
	for _, s := range APIScopes {
		if slices.Contains(scopes, s) {
			out = append(out, string(s))
		}
	}
	if len(out) == len(APIScopes) {
		return ""
	}
	return strings.Join(out, " ")
}

// ScopeList returns the key's scopes; every scope when it was made without a list.
func (k *APIKey) ScopeList() []APIScope {
	if k.Scopes == "" {
		return APIScopes
	}
	var out []APIScope
	for _, f := range strings.Fields(k.Scopes) {
		out = append(out, APIScope(f))
	}
	return out
}

// AllScopes reports whether the key has every scope.
func (k *APIKey) AllScopes() bool { return k.Scopes == "" }

// Allows reports whether the key has scope s.
func (k *APIKey) Allows(s APIScope) bool {
	return k.Scopes == "" || slices.Contains(strings.Fields(k.Scopes), string(s))
}
