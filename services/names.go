package services

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// unprintable reports whether r has no place in a name people read: a control
// character, a format character (zero-width space U+200B, joiners, bidirectional
// overrides that make a name read as another), a line or paragraph separator, a
// private-use or surrogate code point, or the replacement character of broken
// UTF-8.
func unprintable(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co, unicode.Cs) || r == utf8.RuneError
}

// hasUnprintable reports whether a name (of an app, an API key, an operator, a
// link's customer) holds a character that has no place in it, or is not UTF-8.
func hasUnprintable(s string) bool {
	return !utf8.ValidString(s) || strings.IndexFunc(s, unprintable) >= 0
}

// unprintableProblem is the form's words for hasUnprintable.
const unprintableProblem = "Use printable characters only (no control, zero-width or direction-changing characters)."
