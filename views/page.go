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
	Nav       string // the active section: overview, connections, apps, operators
	Assets    Assets
	// Public pages (connect, callback) show no navigation.
	Public bool
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
	Options      []Option // for select
	Attrs        templ.Attributes
}

// Option is one choice of a select field.
type Option struct {
	Value, Label string
}

func (f Field) inputType() string {
	if f.Type == "" {
		return "text"
	}
	return f.Type
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
