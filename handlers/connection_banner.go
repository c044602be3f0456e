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
	// link is the newest still-valid reconnect link, if any.
	link *views.LinkRow
	// pausedBy is the connection's app when it is unhealthy and the connection
	// live: its refreshes pause because of the app, whose alert says why.
	pausedBy *models.App
	k        clock
}

// connectionBanner says what is wrong with a connection and the one action that
// fixes it; nil when nothing is wrong. Problems of the app (it was deleted) point to
// the app; a refresh token GetResponse rejected needs the customer, through a
// reconnect link; a transient failure is retried, and can be retried now.
func connectionBanner(st connectionState) *views.StatusBanner {
	c := st.conn
	reconnect := func() *views.BannerAction {
		form := "/connections/" + c.ID + "/reconnect"
		if st.link != nil {
			return &views.BannerAction{
				CopyID: "reconnect-url", CopyLabel: reconnectLabel(c.CustomerRef), CopyValue: st.link.URL,
				Note: "Expires " + st.link.Expires.Relative + " (" + st.link.Expires.Text + ").", OpenURL: st.link.URL,
				SecondaryLabel: "Make a new link", SecondaryAction: form,
			}
		}
		return &views.BannerAction{Label: "Create a reconnect link", FormAction: form, TestID: "make-reconnect"}
	}
	switch {
	case st.appGone:
		return &views.StatusBanner{Tone: "off", Title: "This connection's app was deleted",
			Cause:  "Without its app, grconnect can neither refresh nor reconnect this connection.",
			Action: &views.BannerAction{Label: "Go to your apps", URL: "/apps", TestID: "banner-action"}}
	case c.Status == models.StatusActive, st.pausedBy != nil:
		return nil // a paused connection: the app's alert above says why
	case c.Status == models.StatusNeedsReconnect:
		return &views.StatusBanner{Tone: "bad", Title: "The customer must approve access again",
			Cause: sentence(c.LastError, "GetResponse rejected the refresh token"), Action: reconnect()}
	case c.Status == models.StatusRefreshFailing:
		b := &views.StatusBanner{Tone: "warn", Title: "Refreshing fails for now; grconnect keeps trying",
			Cause:  sentence(c.LastError, "GetResponse did not refresh the token"),
			Action: &views.BannerAction{Label: "Retry now", FormAction: "/connections/" + c.ID + "/refresh", TestID: "refresh-now"}}
		if c.NextAttemptAt != nil {
			t := st.k.view(*c.NextAttemptAt)
			b.Detail, b.When = "The access token still works until it expires. Next automatic attempt (number "+strconv.Itoa(c.FailureCount+1)+"):", &t
		}
		return b
	case c.Status == models.StatusDisconnected:
		b := &views.StatusBanner{Tone: "off", Title: "Disconnected",
			Cause:  "The tokens were erased; the history stays. For this account to work again, the customer approves access again through a reconnect link.",
			Action: reconnect()}
		if c.DisconnectedAt != nil {
			b.Cause = "The tokens were erased " + st.k.text(*c.DisconnectedAt) + "; the history stays. For this account to work again, the customer approves access again through a reconnect link."
		}
		return b
	}
	return nil
}

// connectionActions says which actions of a connection's page can work now.
func connectionActions(st connectionState) views.ConnectionActions {
	c := st.conn
	switch {
	case st.appGone:
		return views.ConnectionActions{Refresh: "disabled", RefreshBlocked: "Unavailable: the app was deleted.",
			Test: "disabled", TestBlocked: "Unavailable: the app was deleted.", Disconnect: c.Status != models.StatusDisconnected}
	case st.pausedBy != nil:
		return views.ConnectionActions{Refresh: "primary", RefreshLabel: "Refresh now (probes the app)",
			RefreshNote: "Refreshes of this connection pause while its app, " + st.pausedBy.Name + ", is unhealthy. Refresh now asks GetResponse anyway, as the app's probe: if it works, the app is healthy again and its paused connections resume; if not, you see why.",
			Test:        "yes", Reconnect: true, Disconnect: true}
	case c.Status == models.StatusActive:
		return views.ConnectionActions{Refresh: "primary", Test: "yes", Reconnect: true, Disconnect: true}
	case c.Status == models.StatusRefreshFailing:
		return views.ConnectionActions{Refresh: "banner", Test: "yes", Reconnect: true, Disconnect: true}
	case c.Status == models.StatusNeedsReconnect:
		return views.ConnectionActions{
			Refresh: "disabled", RefreshBlocked: "Unavailable: GetResponse rejected the refresh token, so only the customer's reconnect can renew it.",
			Test: "disabled", TestBlocked: "Test calls need a usable access token: the customer must reconnect first.",
			Disconnect: true,
		}
	}
	return views.ConnectionActions{} // disconnected: nothing to refresh, test or disconnect
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
