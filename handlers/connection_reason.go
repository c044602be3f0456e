package handlers

import (
	"regexp"
	"strings"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/views"
)

// nextAttemptSuffix is the "; next attempt 14:05:09 UTC" a failure's message ends
// with: the list says when in the reader's own zone instead.
var nextAttemptSuffix = regexp.MustCompile(`; next attempt \d\d:\d\d:\d\d UTC$`)

// notRefreshed is a failed refresh's message around GetResponse's answer.
var notRefreshed = regexp.MustCompile(`^GetResponse did not refresh the token \((.+)\)$`)

// errorWords is a stored failure message as a list shows it: without the clause
// saying who must act (the row's group says that) or when the next attempt is.
func errorWords(msg, fallback string) string {
	msg = strings.TrimSpace(nextAttemptSuffix.ReplaceAllString(msg, ""))
	msg = strings.TrimSuffix(msg, "; the customer must reconnect")
	if m := notRefreshed.FindStringSubmatch(msg); m != nil {
		msg = "GetResponse answered " + m[1]
	}
	if msg == "" {
		return fallback
	}
	return msg
}

// appHealthWords says in a few words why an app's connections are paused.
func appHealthWords(h models.AppHealth, reason string) string {
	what := ""
	if reason != "" {
		what = " (" + reason + ")"
	}
	switch h {
	case models.AppCredentialsRejected:
		return "GetResponse rejected the app's client ID or secret" + what
	case models.AppMisconfigured:
		return "GetResponse refused the app's settings" + what
	}
	return "GetResponse refuses the app's calls for now" + what
}

// rowReason says why a list row is in its attention group, briefly (the group's
// heading says who must act): the last error of a failing connection, the app's
// state for a paused one, when a disconnected one was disconnected; nothing for
// a healthy one. full is the same in whole sentences, for the row's tooltip.
func rowReason(r models.ConnectionRow, k clock) (short, full string) {
	switch r.Attention() {
	case models.AttentionCustomer:
		full = errorWords(r.LastError, "GetResponse rejected the refresh token")
		if strings.HasPrefix(full, "GetResponse rejected the refresh token") {
			return "Refresh token rejected", full
		}
		return full, full
	case models.AttentionOperator, models.AttentionWait:
		if !r.AppHealth.Healthy() {
			full = appHealthWords(r.AppHealth, r.AppHealthReason)
			return appHealthShort[r.AppHealth], full
		}
		full = errorWords(r.LastError, "GetResponse did not refresh the token")
		short = strings.TrimPrefix(full, "GetResponse answered ")
		if m := grAnswer.FindStringSubmatch(full); m != nil {
			short = "HTTP " + m[1] + ", code " + m[2]
			if words, ok := grCodeWords[m[2]]; ok {
				short = words
			}
		}
		if r.NextAttemptAt != nil {
			when := "retrying now"
			if r.NextAttemptAt.After(k.now) {
				when = "retry " + relative(*r.NextAttemptAt, k.now)
			}
			short, full = short+"; "+when, full+"; next try "+strings.TrimPrefix(when, "retry ")
		}
		return short, full
	case models.AttentionOff:
		if r.DisconnectedAt != nil {
			full = "Disconnected " + relative(*r.DisconnectedAt, k.now)
		}
	}
	return full, full
}

// appHealthShort words an app's state for a list row (its tooltip says what
// GetResponse answered).
var appHealthShort = map[models.AppHealth]string{
	models.AppCredentialsRejected: "Client ID or secret rejected",
	models.AppMisconfigured:       "App settings refused",
	models.AppRefused:             "GetResponse refuses the app for now",
}

// grAnswer finds GetResponse's status and code in a failure's words.
var grAnswer = regexp.MustCompile(`HTTP (\d+), code (\d+)`)

// grCodeWords say GetResponse's error codes as its own descriptions do, briefly.
var grCodeWords = map[string]string{
	"1":    "GetResponse unavailable",
	"1014": "Token or X-Domain refused",
	"1015": "Rate limit reached",
	"1016": "API temporarily blocked",
	"1017": "API permanently blocked",
	"1018": "IP address blocked",
	"1019": "GetResponse maintenance",
	"1021": "Invalid headers",
	"1024": "MAX domain not found",
}

// rowAction is a list row's one action: the reconnect link to copy (or to make),
// the app's settings to fix, or a retry; none for a healthy connection.
func rowAction(r models.ConnectionRow, links map[string]services.Link) *views.RowAction {
	if r.AppHealth.OperatorMustAct() && r.Status != models.StatusDisconnected {
		// Nothing of the connection's own helps until the app works again.
		a := &views.RowAction{Label: "Fix settings", Title: "Fix the app's settings", URL: "/apps/" + r.AppID + "/edit", Kind: "fix"}
		if r.AppHealth == models.AppCredentialsRejected {
			a.Label, a.Title, a.URL = "Fix credentials", "Fix the app's credentials (client ID, secret)", "/apps/"+r.AppID+"/edit#client_secret"
		}
		return a
	}
	switch r.Attention() {
	case models.AttentionCustomer:
		if l, ok := links[r.ID]; ok {
			return &views.RowAction{Label: "Copy link", Title: "Copy the reconnect link", CopyValue: l.URL, URL: "/connections/" + r.ID + "#status-banner", Kind: "copy"}
		}
		return &views.RowAction{Label: "Make link", Title: "Make a reconnect link", FormAction: "/connections/" + r.ID + "/reconnect", Kind: "reconnect"}
	case models.AttentionWait:
		return &views.RowAction{Label: "Retry", Title: "Retry the refresh now", FormAction: "/connections/" + r.ID + "/refresh", Kind: "retry"}
	}
	return nil
}

// listBack is where an action started from the connections list returns: the
// list page it was on (its "back" field), or "" to stay on the connection's page.
func listBack(back string) string {
	back = safeNext(back)
	if back == "/connections" || strings.HasPrefix(back, "/connections?") {
		return back
	}
	return ""
}
