package views

import (
	"net/http"
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
	if k == "error" {
		return "error"
	}
	return "success"
}

func statusText(code int) string {
	return strconv.Itoa(code) + " · " + http.StatusText(code)
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

func joinEvents(events []string) string { return strings.Join(events, ", ") }
