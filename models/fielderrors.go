package models

import (
	"errors"
	"sort"
	"strings"
)

// FieldErrors maps a form field name to what is wrong with it. It is an error so
// services can return it; handlers show each message next to its field.
type FieldErrors map[string]string

// Error lists the problems in a stable order.
func (f FieldErrors) Error() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+f[k])
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Add records a problem with field unless one is already recorded.
func (f FieldErrors) Add(field, msg string) {
	if _, ok := f[field]; !ok {
		f[field] = msg
	}
}

// OrNil returns f as an error, or nil when it is empty.
func (f FieldErrors) OrNil() error {
	if len(f) == 0 {
		return nil
	}
	return f
}

// AsFieldErrors returns the FieldErrors inside err, if any.
func AsFieldErrors(err error) (FieldErrors, bool) {
	var fe FieldErrors
	ok := errors.As(err, &fe)
	return fe, ok
}
