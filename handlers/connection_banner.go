package handlers

import (
	"strconv"
	"strings"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/views"
)

// connectionState is what a connection's page needs to decide its banner and actions.
type connectionState struct {
	conn *models.Connection
	// appGone is set when the connection's app was deleted: nothing can reconnect it.
	appGone bool
	appID   string
	// app is the connection's app (nil when deleted).
	app *models.App
	// link is the newest reconnect link that still works, if any.
	link *views.LinkRow
	// pausedBy is the connection's app when it is unhealthy and the connection
	// live: its refreshes pause because of the app, whose alert says why.
	pausedBy *models.App
	k        clock
}

// appBroken reports whether GetResponse refuses the app's credentials or
// configuration: only the operator can fix that, and no customer can connect.
func (st connectionState) appBroken() bool {
	return st.app != nil && st.app.Health.OperatorMustAct()
}

// connectionBanner says what is wrong with a connection, once; nil when nothing
// is, or when the app's own alert already says it (a paused connection). A
// reconnect link the fix needs is shown in it, to copy.
func connectionBanner(st connectionState) *views.StatusBanner {
	c := st.conn
	var link *views.BannerLink
	if st.link != nil {
		link = &views.BannerLink{ID: "reconnect-url", Label: reconnectLabel(c.CustomerRef), URL: st.link.URL,
			Note: "Expires " + st.link.Expires.Relative + " (" + st.link.Expires.Text + ")."}
	}
	switch {
	case st.appGone:
		return &views.StatusBanner{Tone: "off", Title: "This connection's app was deleted",
			Cause: "Without its app, grconnect can neither refresh nor reconnect this connection."}
	case c.Status == models.StatusActive, st.pausedBy != nil:
		return nil // a paused connection: the app's alert above says why
	case c.Status == models.StatusNeedsReconnect:
		b := &views.StatusBanner{Tone: "bad", Title: "The customer must approve access again",
			Cause: sentence(errorWords(c.LastError, ""), "GetResponse rejected the refresh token"), Link: link}
		if st.appBroken() {
			b.Link = nil // no customer can reconnect until the app is fixed: its alert says so
		}
		return b
	case c.Status == models.StatusRefreshFailing:
		b := &views.StatusBanner{Tone: "warn", Title: "Refreshing fails for now; grconnect keeps trying",
			Cause: sentence(errorWords(c.LastError, ""), "GetResponse did not refresh the token")}
		if c.NextAttemptAt != nil {
			t := st.k.view(*c.NextAttemptAt)
			token := "The access token still works until it expires."
			if c.ExpiresAt != nil && !c.ExpiresAt.After(st.k.now) {
				token = "The access token expired " + relative(*c.ExpiresAt, st.k.now) + ": calls through it fail until a refresh works."
			}
			b.Detail, b.When = token+" Next automatic attempt (number "+strconv.Itoa(c.FailureCount+1)+"):", &t
		}
		return b
	case c.Status == models.StatusDisconnected:
		b := &views.StatusBanner{Tone: "off", Title: "Disconnected",
			Cause: "The tokens were erased; the history stays. For this account to work again, the customer approves access again through a reconnect link.", Link: link}
		if c.DisconnectedAt != nil {
			b.Cause = "The tokens were erased " + st.k.text(*c.DisconnectedAt) + "; the history stays. For this account to work again, the customer approves access again through a reconnect link."
		}
		if st.appBroken() {
			b.Link = nil
		}
		return b
	}
	return nil
}

// connectionActions decides a connection page's one primary action for its
// state, the menu of the others (disabled ones say why), and whether a test call
// applies. Every action of the page is here, in one place.
func connectionActions(st connectionState) views.ConnectionActions {
	c := st.conn
	base := "/connections/" + c.ID
	refresh := func(label string) views.PageAction {
		return views.PageAction{Label: label, FormAction: base + "/refresh", TestID: "refresh-now", ViewerNote: "Viewers cannot refresh connections."}
	}
	test := views.PageAction{Label: "Run test call", FormID: "test-form", TestID: "run-test-top", ViewerNote: "Viewers cannot run test calls: one can refresh the token."}
	makeLink := views.PageAction{Label: "Make reconnect link", FormAction: base + "/reconnect", TestID: "make-reconnect", ViewerNote: "Viewers cannot make reconnect links."}
	if st.link != nil {
		makeLink.Label = "Make a new reconnect link"
	}
	copyLink := views.PageAction{Label: "Copy reconnect link", CopyFor: "reconnect-url", TestID: "copy-reconnect"}
	disconnect := views.PageAction{Label: "Disconnect…", URL: base + "/disconnect", Danger: true, TestID: "disconnect", ViewerNote: "Viewers cannot disconnect connections."}
	reconnect := func() (primary views.PageAction, more []views.PageAction) {
		if st.link != nil {
			return copyLink, []views.PageAction{makeLink}
		}
		return makeLink, nil
	}
	live := c.Status.Live()
	switch {
	case st.appGone:
		a := views.ConnectionActions{Primary: &views.PageAction{Label: "Go to your apps", URL: "/apps", TestID: "banner-action"}}
		if live {
			a.More = []views.PageAction{disconnect}
		}
		return a
	case st.appBroken():
		fix := views.PageAction{Label: "Fix app settings", URL: "/apps/" + st.app.ID + "/edit", TestID: "fix-app", ViewerNote: "Viewers cannot change apps: ask an admin to fix it."}
		if st.app.Health == models.AppCredentialsRejected {
			fix.Label, fix.URL = "Update client secret", "/apps/"+st.app.ID+"/edit#client_secret"
		}
		blocked := makeLink
		blocked.Label = "Make reconnect link"
		blocked.Disabled = "Unavailable while GetResponse refuses the app: no customer could complete it."
		a := views.ConnectionActions{Primary: &fix}
		if live {
			probe := refresh("Refresh now (probes the app)")
			probe.Note = "Asks GetResponse anyway, as the app's probe: if it works, the app is healthy again and its paused connections resume."
			a.More, a.Test = []views.PageAction{probe, test, blocked, disconnect}, true
		} else if c.Status == models.StatusNeedsReconnect {
			a.More = []views.PageAction{blocked, disconnect}
		}
		return a
	case st.pausedBy != nil:
		probe := refresh("Retry now (probes the app)")
		probe.Note = "Refreshes of this connection wait while GetResponse refuses its app, " + st.pausedBy.Name + ". This asks GetResponse anyway, as the app's probe."
		return views.ConnectionActions{Primary: &probe, More: []views.PageAction{test, makeLink, disconnect}, Test: true}
	case c.Status == models.StatusActive:
		return views.ConnectionActions{Primary: &test, More: []views.PageAction{refresh("Refresh now"), makeLink, disconnect}, Test: true}
	case c.Status == models.StatusRefreshFailing:
		retry := refresh("Retry now")
		return views.ConnectionActions{Primary: &retry, More: []views.PageAction{test, makeLink, disconnect}, Test: true}
	case c.Status == models.StatusNeedsReconnect:
		p, more := reconnect()
		return views.ConnectionActions{Primary: &p, More: append(more, disconnect)}
	}
	p, more := reconnect() // disconnected: only the customer's reconnect brings it back
	return views.ConnectionActions{Primary: &p, More: more}
}

// sentence makes a stored error message a sentence, with a fallback.
func sentence(msg, fallback string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		msg = fallback
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

func reconnectLabel(customerRef string) string {
	if customerRef == "" {
		return "Reconnect link: send it to the customer"
	}
	return "Reconnect link for " + customerRef + ": send it to the customer"
}
