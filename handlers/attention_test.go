package handlers_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// attentionFixture is a connect fixture with connections in every attention
// group: two apps besides the fixture's own (one whose credentials GetResponse
// rejected, one GetResponse refuses for now), and connections written straight
// into the store.
type attentionFixture struct {
	*connectFixture
	rejectedApp, refusedApp string
	ids                     map[string]string // name → connection ID
}

func newAttentionFixture(t *testing.T) *attentionFixture {
	t.Helper()
	f := &attentionFixture{connectFixture: newConnectFixture(t, getresponsetest.Options{}), ids: map[string]string{}}
	app, _ := f.store.AppByID(t.Context(), f.appID)
	now := models.Now()
	for _, a := range []struct {
		id     *string
		name   string
		health models.AppHealth
	}{{&f.rejectedApp, "Rejected Shop", models.AppCredentialsRejected}, {&f.refusedApp, "Refused Forms", models.AppRefused}} {
		*a.id = models.NewID("app")
		other := &models.App{ID: *a.id, Name: a.name, ClientID: a.name, ClientSecretEnc: "x", Edition: "standard", AuthURL: app.AuthURL, APIURL: app.APIURL,
			Health: a.health, HealthReason: "invalid_client", HealthSince: &now, CreatedAt: now, UpdatedAt: now}
		if err := f.store.DB().Create(other).Error; err != nil {
			t.Fatal(err)
		}
	}
	f.store.AppsWritten()
	for i, c := range []struct {
		name   string
		app    string
		status models.Status
		err    string
	}{
		{"healthy-b", f.appID, models.StatusActive, ""},
		{"rejected", f.appID, models.StatusNeedsReconnect, "GetResponse rejected the refresh token (invalid_grant); the customer must reconnect"},
		{"paused-op", f.rejectedApp, models.StatusActive, ""},
		{"failing", f.appID, models.StatusRefreshFailing, "GetResponse did not refresh the token (HTTP 403, code 1016: Your access to the API has been temporarily blocked); next attempt 10:00:00 UTC"},
		{"paused-wait", f.refusedApp, models.StatusRefreshFailing, ""},
		{"healthy-a", f.appID, models.StatusActive, ""},
		{"gone", f.appID, models.StatusDisconnected, ""},
	} {
		exp := now.Add(time.Duration(30-i) * time.Minute)
		next := now.Add(3 * time.Minute)
		id := fmt.Sprintf("con_att%02d", i)
		conn := &models.Connection{ID: id, AppID: c.app, AccountID: fmt.Sprintf("A%02d", i), AccountEmail: c.name + "@example.com", CustomerRef: "ref-" + c.name,
			Status: c.status, LastError: c.err, ExpiresAt: &exp, ConnectedAt: now, CreatedAt: now, UpdatedAt: now, RefreshTokenEnc: "x"}
		if c.status == models.StatusRefreshFailing {
			conn.NextAttemptAt = &next
		}
		if err := f.store.DB().Create(conn).Error; err != nil {
			t.Fatal(err)
		}
		f.ids[c.name] = id
	}
	return f
}

var (
	groupRowRe = regexp.MustCompile(`class="group-row group-([a-z]+)" data-testid="group-row"><th colspan="6" scope="colgroup">([^<]+?)\s*<span class="group-count">(\d+)</span>`)
	rowIDRe    = regexp.MustCompile(`<tr class="conn-row row-([a-z]+)"[^>]*>.*?href="/connections/(con_[a-z0-9]+)"`)
)

// rows returns the list's rows as (group, connection ID) in page order.
func listRows(body string) [][2]string {
	var out [][2]string
	for _, m := range rowIDRe.FindAllStringSubmatch(body, -1) {
		out = append(out, [2]string{m[1], m[2]})
	}
	return out
}

// rowHTML is a connection's row in a list page.
func rowHTML(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `href="/connections/`+id+`"`)
	if i < 0 {
		t.Fatalf("%s is not listed", id)
	}
	i = strings.LastIndex(body[:i], "<tr")
	return body[i : i+strings.Index(body[i:], "</tr>")]
}

// TestConnectionsListLeadsWithWhoMustAct: the default list groups the live
// connections by who must act — the customer, the operator (its app's
// credentials rejected), GetResponse (failing, or its app refused for now), then
// the healthy — each group headed with its count, each row with its reason and
// its one action; the tabs count the states as the overview does.
func TestConnectionsListLeadsWithWhoMustAct(t *testing.T) {
	t.Parallel()
	f := newAttentionFixture(t)
	page := f.op.get("/connections")
	if page.status != http.StatusOK {
		t.Fatalf("list = %d", page.status)
	}
	var groups []string
	for _, m := range groupRowRe.FindAllStringSubmatch(page.body, -1) {
		groups = append(groups, m[1]+":"+strings.TrimSpace(m[2])+":"+m[3])
	}
	want := []string{"customer:The customer must reconnect:1", "operator:You must fix the app:1", "wait:Waiting on GetResponse:2", "healthy:Healthy:2"}
	if !slices.Equal(groups, want) {
		t.Fatalf("groups %v, want %v", groups, want)
	}
	var order []string
	for _, r := range listRows(page.body) {
		order = append(order, r[0]+":"+r[1])
	}
	// In each group, soonest expiry first.
	wantOrder := []string{"customer:" + f.ids["rejected"], "operator:" + f.ids["paused-op"], "wait:" + f.ids["paused-wait"], "wait:" + f.ids["failing"],
		"healthy:" + f.ids["healthy-a"], "healthy:" + f.ids["healthy-b"]}
	if !slices.Equal(order, wantOrder) {
		t.Fatalf("rows %v, want %v", order, wantOrder)
	}

	// Reasons in words, and one action each.
	row := rowHTML(t, page.body, f.ids["rejected"])
	// The reason is short in the cell, whole in its title; the action's name says whose.
	mustContain(t, row, `title="GetResponse rejected the refresh token (invalid_grant)" data-testid="reason">Refresh token rejected<`,
		`action="/connections/`+f.ids["rejected"]+`/reconnect"`, `aria-label="Make a reconnect link of rejected@example.com"`, ">Make link<", `name="back" value="/connections"`)
	row = rowHTML(t, page.body, f.ids["paused-op"])
	mustContain(t, row, "Paused — app Rejected Shop", `title="GetResponse rejected the app&#39;s client ID or secret (invalid_client)" data-testid="reason">Client ID or secret rejected<`,
		`href="/apps/`+f.rejectedApp+`/edit#client_secret"`, ">Fix credentials<")
	row = rowHTML(t, page.body, f.ids["failing"])
	mustContain(t, row, `title="GetResponse answered HTTP 403, code 1016: Your access to the API has been temporarily blocked; next try in 3 min"`,
		">API temporarily blocked; retry in 3 min<", `action="/connections/`+f.ids["failing"]+`/refresh"`, `aria-label="Retry the refresh now of failing@example.com"`, ">Retry<")
	mustNotContain(t, row, "10:00:00 UTC") // the reader's own "next try in", not the stored UTC clock
	row = rowHTML(t, page.body, f.ids["paused-wait"])
	mustContain(t, row, "Paused — app Refused Forms", ">GetResponse refuses the app for now<", `action="/connections/`+f.ids["paused-wait"]+`/refresh"`, ">Retry<")
	row = rowHTML(t, page.body, f.ids["healthy-a"])
	mustNotContain(t, row, `data-testid="row-action"`)
	mustContain(t, row, `class="row-link"`) // the whole row opens the connection
	mustNotContain(t, page.body, f.ids["gone"])

	// The tabs count as the overview does.
	overview := f.op.get("/").body
	for _, st := range []string{"active", "paused", "refresh_failing", "needs_reconnect", "disconnected"} {
		m := regexp.MustCompile(`data-testid="count-` + st + `">(\d+)<`).FindStringSubmatch(overview)
		tab := regexp.MustCompile(`data-testid="tab-` + st + `"[^>]*>[^<]+<span class="tab-count">(\d+)</span>`).FindStringSubmatch(page.body)
		if m == nil || tab == nil || m[1] != tab[1] {
			t.Errorf("%s: overview %v, tab %v", st, m, tab)
		}
	}
	mustContain(t, page.body, `data-testid="tab-live" aria-current="page">All live <span class="tab-count">6</span>`, `data-testid="tab-all"`)

	// The row's action makes the reconnect link and comes back to the list, where
	// the row now copies it.
	r := f.op.submit("/connections", "/connections/"+f.ids["rejected"]+"/reconnect", url.Values{"back": {"/connections?sort=attention"}})
	if r.status != http.StatusSeeOther || r.location() != "/connections?sort=attention" {
		t.Fatalf("make link from the list = %d → %q", r.status, r.location())
	}
	page = f.op.get(r.location())
	mustContain(t, page.body, "Reconnect link made for rejected@example.com")
	row = rowHTML(t, page.body, f.ids["rejected"])
	m := regexp.MustCompile(`<input type="hidden" id="rl-` + f.ids["rejected"] + `" value="([^"]+)">.*data-copy="rl-` + f.ids["rejected"] + `"[^>]*>Copy link<`).FindStringSubmatch(row)
	if m == nil || !strings.HasPrefix(html.UnescapeString(m[1]), f.srv.URL+"/connect/") {
		t.Fatalf("the row does not copy the new link: %s", row)
	}
	// A refresh from the list comes back to it; a back that is not the list does not.
	real := f.connect("customer-real", "")
	f.age(real.ID, time.Hour)
	r = f.op.submit("/connections", "/connections/"+real.ID+"/refresh", url.Values{"back": {"/connections?status=active"}})
	if r.location() != "/connections?status=active" {
		t.Errorf("a refresh from the list led to %q", r.location())
	}
	mustContain(t, f.op.get(r.location()).body, "Refreshed "+real.AccountEmail)
	for _, back := range []string{"https://evil.example/connections", "//evil.example", "/apps", "/connections/../apps", "/connectionsx"} {
		f.age(real.ID, time.Hour)
		r = f.op.submit("/connections", "/connections/"+real.ID+"/refresh", url.Values{"back": {back}})
		if r.location() != "/connections/"+real.ID {
			t.Errorf("back=%q led to %q, want the connection's page", back, r.location())
		}
	}
}

// TestConnectionsListSortsByEachColumn: each sortable heading orders the list,
// says so (aria-sort) and links to its reverse; every order pages to the end and
// back by its own keyset.
func TestConnectionsListSortsByEachColumn(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	base := models.Now().Truncate(time.Second)
	var emails []string
	for i := range 130 {
		exp := base.Add(time.Duration(i%40) * time.Minute)
		email := fmt.Sprintf("%s%03d@example.com", []string{"Zed", "amy", "Bob", "carl"}[i%4], (i*37)%130)
		c := &models.Connection{ID: fmt.Sprintf("con_s%03d", i), AppID: f.appID, AccountID: fmt.Sprintf("S%03d", i), Status: models.StatusActive,
			AccountEmail: email, CustomerRef: fmt.Sprintf("cust-%03d", (i*53)%130), ExpiresAt: &exp, ConnectedAt: base}
		if err := f.store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
		emails = append(emails, email)
	}
	page := f.op.get("/connections").body
	mustContain(t, page, `class="c-status" aria-sort="ascending"><a class="sort" href="/connections"`)
	m := regexp.MustCompile(`class="c-account"><a class="sort" href="([^"]+)"`).FindStringSubmatch(page)
	if m == nil || html.UnescapeString(m[1]) != "/connections?sort=email" {
		t.Fatalf("the Account heading links to %v", m)
	}
	walk := func(path string) []string {
		var seen []string
		for pages := 0; path != ""; pages++ {
			if pages > 5 {
				t.Fatalf("too many pages from %s", path)
			}
			body := f.op.get(path).body
			for _, r := range listRows(body) {
				c, err := f.store.ConnectionByID(t.Context(), r[1])
				if err != nil {
					t.Fatal(err)
				}
				seen = append(seen, c.AccountEmail)
			}
			path = ""
			for _, m := range pagerRe.FindAllStringSubmatch(body, -1) {
				if strings.HasPrefix(m[2], "Next") {
					path = html.UnescapeString(m[1])
				}
			}
		}
		return seen
	}
	sorted := slices.Clone(emails)
	slices.Sort(sorted) // byte order: upper case first
	if got := walk("/connections?sort=email"); !slices.Equal(got, sorted) {
		t.Fatalf("by e-mail: %v…, want %v…", got[:5], sorted[:5])
	}
	body := f.op.get("/connections?sort=email").body
	mustContain(t, body, `class="c-account" aria-sort="ascending"><a class="sort" href="/connections?sort=-email"`)
	slices.Reverse(sorted)
	if got := walk("/connections?sort=-email"); !slices.Equal(got, sorted) {
		t.Fatalf("by e-mail, descending: %v…, want %v…", got[:5], sorted[:5])
	}
	mustContain(t, f.op.get("/connections?sort=-email").body, `class="c-account" aria-sort="descending"`)
	for _, bad := range []string{"sort=name", "sort=-attention", "sort=email&after=" + url.QueryEscape("bm90LWEtY3Vyc29y")} {
		if r := f.op.get("/connections?" + bad); r.status != http.StatusBadRequest {
			t.Errorf("%s = %d, want 400", bad, r.status)
		}
	}
}

// TestSearchSaysWhatItSearches: the search box and an empty result name the
// fields the search looks in, and the empty result names the search.
func TestSearchSaysWhatItSearches(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	f.connect("customer-1", "")
	page := f.op.get("/connections").body
	mustContain(t, page, `placeholder="E-mail, name, customer ref, account ID, MAX domain"`,
		"Finds the text anywhere in the e-mail, account name, customer reference, account ID and MAX domain, ignoring case; one or two characters find the start of an e-mail, name or customer reference, or an exact account ID.")
	r := f.op.get("/connections?q=zzqx9")
	mustContain(t, r.body, "Nothing matches “zzqx9”", `data-testid="search-explained"`,
		"looks for “zzqx9” anywhere in each connection",
		`data-testid="total">`, "0", "matching")
	// A search of two characters finds only starts, and says so.
	r = f.op.get("/connections?q=zq")
	mustContain(t, r.body, "Nothing matches “zq”", "A search of one or two characters looks for the start of each connection",
		"Type three or more to search anywhere")
	if strings.Contains(r.body, "looks for “zq” anywhere") {
		t.Error("a two-character search is explained as a search anywhere")
	}
}
