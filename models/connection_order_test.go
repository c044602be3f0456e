package models_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// orderFixture is a store with connections in every state across three apps: a
// healthy one, one whose credentials GetResponse rejected and one GetResponse
// refuses for now.
type orderFixture struct {
	store *models.Store
	rows  []orderRow
	apps  map[string]models.AppHealth
}

type orderRow struct {
	id, email, ref, app string
	status              models.Status
	expires             time.Time
}

func (r orderRow) shown(apps map[string]models.AppHealth) models.Status {
	return r.status.Displayed(apps[r.app])
}

func newOrderFixture(t *testing.T) *orderFixture {
	t.Helper()
	store := modelstest.New(t)
	now := models.Now().Truncate(time.Second)
	f := &orderFixture{store: store, apps: map[string]models.AppHealth{}}
	healths := []models.AppHealth{models.AppHealthy, models.AppCredentialsRejected, models.AppRefused}
	var appIDs []string
	for i, h := range healths {
		app := &models.App{ID: models.NewID("app"), Name: fmt.Sprintf("App %d", i), ClientID: "c", ClientSecretEnc: "x", Edition: "standard",
			AuthURL: "https://a.example", APIURL: "https://a.example/v3", Health: h, CreatedAt: now, UpdatedAt: now}
		if err := store.DB().Create(app).Error; err != nil {
			t.Fatal(err)
		}
		f.apps[app.ID] = h
		appIDs = append(appIDs, app.ID)
	}
	statuses := []models.Status{models.StatusActive, models.StatusRefreshFailing, models.StatusNeedsReconnect, models.StatusDisconnected, models.StatusActive}
	// E-mails and refs in mixed case and with shared prefixes; expiries that tie.
	for i := range 45 {
		exp := now.Add(time.Duration(i%7) * time.Minute)
		r := orderRow{id: fmt.Sprintf("con_%03d", (i*17)%45), email: fmt.Sprintf("%s%02d@example.com", []string{"ann", "Bob", "ann.b", "zoë", "_x"}[i%5], (i*7)%45),
			ref: fmt.Sprintf("%s-%d", []string{"cust", "Cust", "acme"}[i%3], i%9), app: appIDs[i%3], status: statuses[i%5], expires: exp}
		c := &models.Connection{ID: r.id, AppID: r.app, AccountID: "A" + r.id, AccountEmail: r.email, CustomerRef: r.ref, Status: r.status,
			ExpiresAt: &exp, ConnectedAt: now, CreatedAt: now, UpdatedAt: now}
		if err := store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
		f.rows = append(f.rows, r)
	}
	return f
}

// want is the order's definition: the rows a filter (and app, when set)
// selects, sorted in Go.
func (f *orderFixture) want(filter, app string, sort models.ConnectionSort, desc bool) []string {
	var rows []orderRow
	for _, r := range f.rows {
		shown := r.shown(f.apps)
		switch {
		case app != "" && r.app != app:
			continue
		case filter == "":
		case filter == "live" && shown == models.StatusDisconnected:
			continue
		case filter != "live" && string(shown) != filter:
			continue
		}
		rows = append(rows, r)
	}
	key := func(r orderRow) string {
		switch sort {
		case models.SortEmail:
			return r.email
		case models.SortCustomer:
			return r.ref
		}
		return fmt.Sprintf("%020d", r.expires.UnixNano())
	}
	slices.SortFunc(rows, func(a, b orderRow) int {
		if sort == models.SortAttention {
			ga, gb := models.AttentionOf(a.status, f.apps[a.app]), models.AttentionOf(b.status, f.apps[b.app])
			if ga != gb {
				return int(ga) - int(gb)
			}
		}
		c := strings.Compare(key(a), key(b))
		if c == 0 {
			c = strings.Compare(a.id, b.id)
		}
		if desc {
			c = -c
		}
		return c
	})
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.id)
	}
	return ids
}

func ids(rows []models.ConnectionRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

// TestListOrdersPageByKeyset walks every order, forward and backward, under every
// state filter, for all apps and for each (healthy, credentials rejected, refused
// for now), three rows a page, and compares what the pages show with the order's
// definition: who must act first (then expiry) for the attention order, byte
// order of e-mails and references, expiry; each time the ID breaks ties.
func TestListOrdersPageByKeyset(t *testing.T) {
	f := newOrderFixture(t)
	ctx := context.Background()
	filters := []string{"live", ""}
	for _, st := range models.DisplayStatuses {
		filters = append(filters, string(st))
	}
	apps := []string{""}
	for id := range f.apps {
		apps = append(apps, id)
	}
	for _, app := range apps {
		for _, filter := range filters {
			for _, sort := range models.ConnectionSorts {
				for _, desc := range []bool{false, true} {
					if sort == models.SortAttention && desc {
						continue
					}
					name := fmt.Sprintf("%s/%s/%s/desc=%v", orAll(app), orAll(filter), sort, desc)
					want := f.want(filter, app, sort, desc)
					base := models.ConnectionFilter{Status: filter, AppID: app, Sort: sort, Desc: desc, Limit: 3}

					// Forward through Next.
					var got []string
					fl := base
					for pages := 0; ; pages++ {
						page, err := f.store.ListConnections(ctx, fl)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						got = append(got, ids(page.Rows)...)
						if pages > 0 && page.PrevCursor == "" {
							t.Errorf("%s: page %d has no Previous", name, pages+1)
						}
						if page.NextCursor == "" {
							break
						}
						if pages > 30 {
							t.Fatalf("%s: no end", name)
						}
						fl.After = page.NextCursor
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s forward:\n got %v\nwant %v", name, got, want)
					}

					// Backward from Last through Previous.
					var back []string
					fl = base
					fl.Last = true
					for pages := 0; ; pages++ {
						page, err := f.store.ListConnections(ctx, fl)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						back = append(ids(page.Rows), back...)
						if page.PrevCursor == "" {
							break
						}
						if pages > 30 {
							t.Fatalf("%s: no start", name)
						}
						fl = base
						fl.Before = page.PrevCursor
					}
					if !slices.Equal(back, want) {
						t.Errorf("%s backward:\n got %v\nwant %v", name, back, want)
					}
				}
			}
		}
	}
}

func orAll(filter string) string {
	if filter == "" {
		return "all"
	}
	return filter
}

// TestListCursorOfAnotherOrder: a cursor made for one order is refused by another
// (the page would start at a meaningless place), as is a cursor past the groups.
func TestListCursorOfAnotherOrder(t *testing.T) {
	f := newOrderFixture(t)
	ctx := context.Background()
	page, err := f.store.ListConnections(ctx, models.ConnectionFilter{Status: "live", Sort: models.SortEmail, Limit: 3})
	if err != nil || page.NextCursor == "" {
		t.Fatal(page, err)
	}
	for _, sort := range []models.ConnectionSort{models.SortAttention, models.SortExpiry} {
		if _, err := f.store.ListConnections(ctx, models.ConnectionFilter{Status: "live", Sort: sort, After: page.NextCursor}); err != models.ErrBadCursor {
			t.Errorf("an e-mail cursor in the %s order: %v, want ErrBadCursor", sort, err)
		}
	}
	if _, err := f.store.ListConnections(ctx, models.ConnectionFilter{Sort: "name"}); err != models.ErrBadCursor {
		t.Errorf("an unknown order: %v", err)
	}
}

// TestShownCountsFoldTheApps: the counts per state shown and per attention group
// agree with the rows' own states and groups.
func TestShownCountsFoldTheApps(t *testing.T) {
	f := newOrderFixture(t)
	c, err := f.store.CountConnectionsShown(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byStatus, byGroup := map[models.Status]int64{}, map[models.AttentionGroup]int64{}
	for _, r := range f.rows {
		byStatus[r.shown(f.apps)]++
		byGroup[models.AttentionOf(r.status, f.apps[r.app])]++
	}
	for _, st := range models.DisplayStatuses {
		if c.ByStatus[st] != byStatus[st] {
			t.Errorf("%s: counted %d, want %d", st, c.ByStatus[st], byStatus[st])
		}
	}
	for g := models.AttentionCustomer; g <= models.AttentionOff; g++ {
		if c.ByGroup[g] != byGroup[g] {
			t.Errorf("group %d: counted %d, want %d", g, c.ByGroup[g], byGroup[g])
		}
	}
	if byStatus[models.StatusPaused] == 0 || byGroup[models.AttentionOperator] == 0 || byGroup[models.AttentionWait] == 0 {
		t.Fatal("the fixture lacks paused connections")
	}
}
