package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestPausedConnectionsReadPausedEverywhere: once GetResponse rejects an app, its
// live connections read "Paused — app <name>", not a green Active, in the list,
// the overview and their pages, whose Refresh now says it probes the app. Bulk
// refresh offers only what a refresh can fix (refresh_failing of healthy apps),
// and its count is the overview's "Refresh failing".
func TestPausedConnectionsReadPausedEverywhere(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	f.fake.AddClient("beta-client", clientSecret, f.cfg.RedirectURL())
	beta := appForm("Beta Forms")
	beta.Set("client_id", "beta-client")
	fb := &connectFixture{testApp: f.testApp, op: f.op, appID: createApp(t, f.op, beta), clientID: "beta-client"}
	conn := func(cf *connectFixture, n int) *models.Connection {
		account := f.fake.AddAccount(getresponsetest.Account{AccountID: fmt.Sprintf("S%d", n), Email: fmt.Sprintf("s%d@example.com", n)})
		return cf.connect(fmt.Sprintf("customer-%d", n), account)
	}
	setStatus := func(c *models.Connection, st models.Status) {
		if err := f.store.DB().Model(&models.Connection{}).Where("id = ?", c.ID).Updates(map[string]any{"status": st, "last_error": "HTTP 503"}).Error; err != nil {
			t.Fatal(err)
		}
	}
	pausedActive, pausedFailing := conn(f, 1), conn(f, 2)
	needsReconnect, failing, active := conn(fb, 3), conn(fb, 4), conn(fb, 5)
	setStatus(pausedFailing, models.StatusRefreshFailing)
	setStatus(needsReconnect, models.StatusNeedsReconnect)
	setStatus(failing, models.StatusRefreshFailing)

	f.fake.FailToken(getresponsetest.TokenInvalidClient, 1)
	f.op.submit("/connections/"+pausedActive.ID, "/connections/"+pausedActive.ID+"/refresh", nil)
	if app, _ := f.store.AppByID(t.Context(), f.appID); app.Health != models.AppCredentialsRejected {
		t.Fatalf("app health = %q", app.Health)
	}
	const label = "Paused — app Acme Templates"

	list := f.op.get("/connections").body
	if n := strings.Count(list, `badge-paused" data-testid="status">`+label+`<`); n != 2 {
		t.Fatalf("the list shows %d connections as %q, want 2", n, label)
	}
	rowOf := func(body string, c *models.Connection) string {
		i := strings.Index(body, "/connections/"+c.ID+`"`)
		if i < 0 {
			t.Fatalf("%s is not listed", c.ID)
		}
		end := strings.Index(body[i:], "</tr>")
		return body[i : i+end]
	}
	for _, c := range []*models.Connection{pausedActive, pausedFailing} {
		row := rowOf(list, c)
		mustContain(t, row, label)
		mustNotContain(t, row, "badge-active", "badge-refresh_failing")
	}
	mustContain(t, rowOf(list, active), "badge-active")
	filtered := map[string][]*models.Connection{
		"paused": {pausedActive, pausedFailing}, "active": {active}, "refresh_failing": {failing}, "needs_reconnect": {needsReconnect},
	}
	for status, want := range filtered {
		body := f.op.get("/connections?status=" + status).body
		if n := strings.Count(body, `data-testid="connection-row"`); n != len(want) {
			t.Errorf("?status=%s lists %d connections, want %d", status, n, len(want))
		}
		for _, c := range want {
			rowOf(body, c)
		}
	}

	overview := f.op.get("/").body
	count := func(status string) string {
		m := regexp.MustCompile(`data-testid="count-` + status + `">(\d+)<`).FindStringSubmatch(overview)
		if m == nil {
			t.Fatalf("the overview has no count of %s", status)
		}
		return m[1]
	}
	for status, want := range map[string]string{"active": "1", "paused": "2", "refresh_failing": "1", "needs_reconnect": "1"} {
		if got := count(status); got != want {
			t.Errorf("overview %s = %s, want %s", status, got, want)
		}
	}
	mustContain(t, overview, label) // the attention list names the paused failing one so
	mustContain(t, list, "Refresh failing ("+count("refresh_failing")+")")

	page := f.op.get("/connections/" + pausedActive.ID).body
	mustContain(t, page, `data-testid="status">`+label+`<`, "Refresh now (probes the app)", `data-testid="refresh-note"`, "as the app&#39;s probe")
	mustNotContain(t, page, "badge-active")

	// The bulk refresh of failing connections takes the one a refresh can fix.
	r := f.op.submit("/connections", "/connections/bulk-refresh", url.Values{"scope": {"failing"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("bulk = %d", r.status)
	}
	f.bulk.Wait()
	job := f.op.get(r.location()).body
	mustContain(t, job, "Finished: 1 of 1 done", `data-testid="bulk-failed">0<`)
	if c, _ := f.store.ConnectionByID(t.Context(), failing.ID); c.Status != models.StatusActive {
		t.Fatalf("the failing connection after the bulk refresh: %s", c.Status)
	}
}
