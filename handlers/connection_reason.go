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
		return strings.Replace(full, "GetResponse rejected the refresh token", "Refresh token rejected", 1), full
	case models.AttentionOperator, models.AttentionWait:
		if !r.AppHealth.Healthy() {
			full = appHealthWords(r.AppHealth, r.AppHealthReason)
			return shortHealth.Replace(full), full
		}
		full = errorWords(r.LastError, "GetResponse did not refresh the token")
		if r.NextAttemptAt != nil {
			if r.NextAttemptAt.After(k.now) {
				full += "; next try " + relative(*r.NextAttemptAt, k.now)
			} else {
				full += "; retrying now"
			}
		}
		return strings.TrimPrefix(full, "GetResponse answered "), full
	case models.AttentionOff:
		if r.DisconnectedAt != nil {
			full = "Disconnected " + relative(*r.DisconnectedAt, k.now)
		}
	}
	return full, full
}

// shortHealth words an app's state for a list row.
var shortHealth = strings.NewReplacer(
	"GetResponse rejected the app's client ID or secret", "App's client ID or secret rejected",
	"GetResponse refused the app's settings", "App's settings refused",
	"GetResponse refuses the app's calls for now", "GetResponse refuses the app for now",
)

// rowAction is a list row's one action: the reconnect link to copy (or to make),
// the app's settings to fix, or a retry; none for a healthy connection.
func rowAction(r models.ConnectionRow, links map[string]services.Link) *views.RowAction {
	if r.AppHealth.OperatorMustAct() && r.Status != models.StatusDisconnected {
		// Nothing of the connection's own helps until the app works again.
		a := &views.RowAction{Label: "Fix app settings", URL: "/apps/" + r.AppID + "/edit", Kind: "fix"}
		if r.AppHealth == models.AppCredentialsRejected {
			a.Label, a.URL = "Fix app credentials", "/apps/"+r.AppID+"/edit#client_secret"
		}
		return a
	}
	switch r.Attention() {
	case models.AttentionCustomer:
		if l, ok := links[r.ID]; ok {
			return &views.RowAction{Label: "Copy reconnect link", CopyValue: l.URL, URL: "/connections/" + r.ID + "#status-banner", Kind: "copy"}
		}
		return &views.RowAction{Label: "Make reconnect link", FormAction: "/connections/" + r.ID + "/reconnect", Kind: "reconnect"}
	case models.AttentionWait:
		return &views.RowAction{Label: "Retry now", FormAction: "/connections/" + r.ID + "/refresh", Kind: "retry"}
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
