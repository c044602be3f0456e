package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
)

// TestViewersSeeTheAttentionActionsGated: the actions the dashboard offers by
// who must act — the list's row actions, a connection page's one action and its
// menu, the first-run checklist, the links of a refused app, "Make a new link"
// on a dead link's pages — are an admin's. A viewer gets every page an admin
// gets, without a form that changes anything: the actions that copy stay, the
// others are left out or shown disabled, each with why. An admin still gets them.
func TestViewersSeeTheAttentionActionsGated(t *testing.T) {
	t.Parallel()
	f := newAttentionFixture(t)
	vera := f.addOperator(f.op, veraEmail, veraPass, models.RoleViewer)
	// A reconnect link for the customer's row, which copies it; two dead links.
	if r := f.op.submit("/connections", "/connections/"+f.ids["rejected"]+"/reconnect", url.Values{"back": {"/connections"}}); r.status != http.StatusSeeOther {
		t.Fatalf("make a reconnect link = %d", r.status)
	}
	revokedURL, expiredURL := f.makeLink("customer-revoked", ""), f.makeLink("customer-expired", "")
	var revoked, expired models.ConnectLink
	f.store.DB().Where("customer_ref = ?", "customer-revoked").First(&revoked)
	f.store.DB().Where("customer_ref = ?", "customer-expired").First(&expired)
	if r := f.op.submit("/apps/"+f.appID+"/links/"+revoked.ID, "/apps/"+f.appID+"/links/"+revoked.ID+"/revoke", nil); r.status != http.StatusSeeOther {
		t.Fatalf("revoke = %d", r.status)
	}
	f.store.DB().Model(&models.ConnectLink{}).Where("id = ?", expired.ID).Update("expires_at", models.Now().Add(-time.Hour))

	// noChanges fails when the viewer's page posts anywhere but their own account.
	noChanges := func(path, body string) {
		t.Helper()
		for _, m := range postFormRe.FindAllStringSubmatch(body, -1) {
			if action := m[1]; action != "/logout" && !isSelfService(action) {
				t.Errorf("the viewer's %s offers a form to %s", path, action)
			}
		}
	}
	get := func(b *browser, path string) string {
		t.Helper()
		r := b.get(path)
		if r.status != http.StatusOK && r.status != http.StatusGone {
			t.Fatalf("GET %s = %d", path, r.status)
		}
		return r.body
	}

	// The list: the copy stays, the others go, and one note says why.
	admin, viewer := get(f.op, "/connections"), get(vera, "/connections")
	noChanges("/connections", viewer)
	for _, kind := range []string{"retry", "fix"} {
		if !strings.Contains(admin, `data-kind="`+kind+`"`) {
			t.Errorf("the admin's list has no %s action", kind)
		}
		if strings.Contains(viewer, `data-kind="`+kind+`"`) {
			t.Errorf("the viewer's list offers a %s action", kind)
		}
	}
	mustContain(t, rowHTML(t, viewer, f.ids["rejected"]), `data-kind="copy"`)
	mustContain(t, viewer, `data-testid="viewer-note">Viewers cannot retry refreshes, make reconnect links or fix apps: ask an admin.`)
	mustNotContain(t, admin, `data-testid="viewer-note"`)

	// Each connection page: its actions disabled for the viewer, with the reason;
	// a copy (the customer's reconnect link) stays, as it changes nothing.
	for name, want := range map[string]string{
		"healthy-a":   "Viewers cannot run test calls",
		"failing":     "Viewers cannot refresh connections.",
		"paused-op":   "Viewers cannot change apps: ask an admin to fix it.",
		"paused-wait": "Viewers cannot refresh connections.",
		"rejected":    "Viewers cannot make reconnect links.",
	} {
		path := "/connections/" + f.ids[name]
		admin, viewer := get(f.op, path), get(vera, path)
		noChanges(path, viewer)
		mustContain(t, viewer, want)
		mustNotContain(t, admin, "Viewers cannot", `disabled aria-describedby="primary-action-why"`)
		if name == "rejected" {
			mustContain(t, viewer, `data-copy="reconnect-url" data-testid="copy-reconnect"`)
		} else {
			mustContain(t, viewer, `disabled aria-describedby="primary-action-why"`)
		}
	}

	// The overview's checklist: what is done, and who does the rest.
	admin, viewer = get(f.op, "/"), get(vera, "/")
	mustContain(t, admin, `href="/api-keys">Create a key<`)
	mustContain(t, viewer, `data-testid="setup-checklist"`, "Viewers cannot set grconnect up: an admin does these steps.")
	mustNotContain(t, viewer, `href="/api-keys">Create a key<`)

	// A refused app: no links, and no fix offered to the viewer.
	path := "/apps/" + f.rejectedApp
	admin, viewer = get(f.op, path), get(vera, path)
	noChanges(path, viewer)
	mustContain(t, admin, `data-testid="links-unavailable"`, `data-testid="app-fix"`)
	mustContain(t, viewer, `data-testid="links-unavailable"`, "Viewers cannot make connect links.", "Viewers cannot change apps: ask an admin to fix it.")
	mustNotContain(t, viewer, `data-testid="app-fix"`)

	// A dead link's page in the dashboard, and the page the link itself opens.
	for _, l := range []struct {
		id, url string
	}{{revoked.ID, revokedURL}, {expired.ID, expiredURL}} {
		path := "/apps/" + f.appID + "/links/" + l.id
		admin, viewer := get(f.op, path), get(vera, path)
		noChanges(path, viewer)
		mustContain(t, admin, `/links/`+l.id+`/renew"`, `data-testid="renew-link"`)
		mustContain(t, viewer, "Viewers cannot make connect links: ask an admin for a new one.")
		public := strings.TrimPrefix(l.url, f.srv.URL)
		admin, viewer = get(f.op, public), get(vera, public)
		noChanges(public, viewer)
		mustContain(t, admin, `data-testid="renew-link"`)
		mustContain(t, viewer, `data-testid="operator-renew"`, "Viewers cannot make connect links: ask an admin for a new one.")
		mustNotContain(t, viewer, `data-testid="renew-link"`)
	}
	// And the server refuses the viewer's renewal whatever the page shows.
	if r := vera.submit("/apps/"+f.appID+"/links/"+revoked.ID, "/apps/"+f.appID+"/links/"+revoked.ID+"/renew", nil); r.status != http.StatusForbidden {
		t.Fatalf("a viewer's renewal = %d, want 403", r.status)
	}
}
