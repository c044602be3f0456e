package models

import "slices"

// Role is what an operator may do on the dashboard.
type Role string

// The operator roles.
const (
	// RoleAdmin sees everything and changes everything.
	RoleAdmin Role = "admin"
	// RoleViewer sees every page an admin sees and changes nothing but their own
	// account (password, time zone, alert e-mails, their own sessions).
	RoleViewer Role = "viewer"
)

// Roles lists the roles, in the order forms offer them.
var Roles = []Role{RoleAdmin, RoleViewer}

// roleInfo describes each role for people.
var roleInfo = map[Role]struct{ label, can string }{
	RoleAdmin:  {"Admin", "sees and changes everything: apps, connections, links, API keys, operators, backups"},
	RoleViewer: {"Viewer", "sees every page and changes nothing but their own password, time zone, alert e-mails and sessions"},
}

// Label is the role's name for people ("Admin").
func (r Role) Label() string { return roleInfo[r].label }

// Can says what an operator with the role may do, in words.
func (r Role) Can() string { return roleInfo[r].can }

// Known reports whether r is one of Roles.
func (r Role) Known() bool { return slices.Contains(Roles, r) }

// IsAdmin reports whether the operator may change things.
func (o *Operator) IsAdmin() bool { return o.Role == RoleAdmin }
