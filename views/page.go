// Package views holds grconnect's templ components. Views receive view-model structs
// and call nothing: every value they show is prepared by a handler.
package views

import "github.com/a-h/templ"

// Page is what every page's layout needs.
type Page struct {
	Title     string
	Operator  string // signed-in operator's email; "" on public pages
	CSRF      string
	Flash     string
	FlashKind string // "success" or "error"
	Demo      bool
	// Storage, when set, says the database refuses writes (and since when).
	Storage string
	// AppAlerts are the unhealthy apps (operator pages only); CauseAppID marks the
	// one a connection page belongs to.
	AppAlerts  []AppAlert
	CauseAppID string
	Nav        string // the active section: overview, connections, apps, operators
	Assets     Assets
	// Public pages (connect, callback) show no navigation.
	Public bool
	// AutoRefresh reloads the page every so many seconds (progress pages); 0 for never.
	AutoRefresh int
	// DetectZone asks the script to report the browser's time zone once (the
	// operator has none stored yet).
	DetectZone bool
	// Version is grconnect's version for the footer ("" on public pages).
	Version string
	// Reauth is the signed-in operator's confirmation for sensitive actions, for
	// ReauthField.
	Reauth Reauth
	// Viewer is set when the signed-in operator is a viewer: AdminOnly shows them
	// why an action is not there instead of the action.
	Viewer bool
}

// Reauth is whether the signed-in operator confirmed their password recently
// enough for sensitive actions, and why the last request was refused, if it was.
type Reauth struct {
	// Until is when the confirmation stops covering sensitive actions, in words
	// ("" when there is none: ReauthField asks for the password).
	Until string
	// Error says why a sensitive action was just refused (no or a wrong password,
	// too many attempts).
	Error string
}

// Assets are the content-hashed URLs of the static files.
type Assets struct {
	CSS, JS, Favicon string
}

// Field is one labelled form input with its current value and error.
type Field struct {
	Name         string
	Label        string
	Type         string // text (default), email, password, url, number, textarea, select
	Value        string
	Error        string
	Hint         string
	Placeholder  string
	Autocomplete string
	Required     bool
	// Note replaces the "optional" marker of a field that is not required ("MAX only").
	Note    string
	Options []Option // for select
	Attrs   templ.Attributes
}

// Option is one choice of a select field.
type Option struct {
	Value, Label string
}

// OptionGroup is a labelled group of a select's choices (<optgroup>).
type OptionGroup struct {
	Label   string
	Options []Option
}

// attrs returns the control's attributes, leaving out the empty ones.
func (f Field) attrs() templ.Attributes {
	a := templ.Attributes{"id": f.Name, "name": f.Name}
	switch f.Type {
	case "textarea":
		a["rows"] = "3"
	case "select":
	case "":
		a["type"], a["value"] = "text", f.Value
	default:
		a["type"] = f.Type
		if f.Type != "password" { // a password or secret is never written into a page
			a["value"] = f.Value
		}
	}
	for k, v := range map[string]string{"placeholder": f.Placeholder, "autocomplete": f.Autocomplete, "aria-describedby": f.describedBy()} {
		if v != "" {
			a[k] = v
		}
	}
	if f.Required {
		a["required"] = true
	}
	if f.Error != "" {
		a["aria-invalid"] = "true"
	}
	for k, v := range f.Attrs {
		a[k] = v
	}
	return a
}

func (f Field) describedBy() string {
	s := ""
	if f.Hint != "" {
		s = f.Name + "-hint"
	}
	if f.Error != "" {
		if s != "" {
			s += " "
		}
		s += f.Name + "-error"
	}
	return s
}
