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

// roleInfo describes each role for people: its name, and what it allows said of
// an operator and to them.
var roleInfo = map[Role]struct{ label, can, youCan string }{
	RoleAdmin: {"Admin", "sees and changes everything: apps, connections, links, API keys, operators, backups",
		"see and change everything: apps, connections, links, API keys, operators, backups"},
	RoleViewer: {"Viewer", "sees every page and changes nothing but their own password, time zone, alert e-mails and sessions",
		"see every page and change nothing but your own password, time zone, alert e-mails and sessions"},
}

// Label is the role's name for people ("Admin").
func (r Role) Label() string { return roleInfo[r].label }

// Can says what an operator with the role may do ("sees and changes everything").
func (r Role) Can() string { return roleInfo[r].can }

// YouCan says it to the operator ("see and change everything").
func (r Role) YouCan() string { return roleInfo[r].youCan }

// Known reports whether r is one of Roles.
func (r Role) Known() bool { return slices.Contains(Roles, r) }

// IsAdmin reports whether the operator may change things.
func (o *Operator) IsAdmin() bool { return o.Role == RoleAdmin }
