package views

import (
	"strconv"
	"strings"
)

func brandHref(p Page) string {
	if p.Public || p.Operator == "" {
		return "#"
	}
	return "/"
}

func flashKind(k string) string {
	switch k {
	case "error", "warning":
		return k
	}
	return "success"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func relKind(expiry bool) string {
	if expiry {
		return "expiry"
	}
	return "ago"
}

// relText phrases a relative time; a past expiry reads "expired 3 h ago".
func relText(t TimeView, expiry bool) string {
	if expiry && strings.HasSuffix(t.Relative, " ago") {
		return "expired " + t.Relative
	}
	return t.Relative
}

func eventClass(t string) string {
	switch {
	case strings.Contains(t, "failed"), strings.Contains(t, "needs_reconnect"), strings.Contains(t, "disconnected"):
		return "bad"
	case strings.Contains(t, "succeeded"), strings.Contains(t, "created"), strings.Contains(t, "reconnected"), strings.Contains(t, "recovered"):
		return "good"
	}
	return "info"
}

func derefTime(t *TimeView) TimeView {
	if t == nil {
		return TimeView{}
	}
	return *t
}

// countOf says "1 connection" or "3 connections".
func countOf(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatInt(n, 10) + " " + many
}

// hiddenNote says what the "All but disconnected" filter hides.
func hiddenNote(n int64) string {
	return "The list hides disconnected connections by default, and " + countOf(n, "connection is", "connections are") + " disconnected."
}

// verb picks a verb's form for a count: verb(1, "uses", "use").
func verb(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func noteOr(note, def string) string {
	if note != "" {
		return note
	}
	return def
}

// secretState describes a stored client secret: "Set, ends in …3f2a", or just "Set"
// when it is too short to show any of it.
func secretState(hint string) string {
	if hint == "" {
		return "Set"
	}
	return "Set, ends in " + hint
}

// orText is s, or fallback when s is empty.
func orText(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
