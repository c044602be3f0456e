package models_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// TestListSearchFollowsItsDefinition checks the list's search against its
// definition, on both of its ways (read from the search index, and the list walked
// row by row): a search of three characters or more finds any part of an e-mail,
// account name, customer reference, account ID or MAX domain, ignoring case; a
// shorter one an exact account ID, or a prefix of the email in lower case, of the
// account name or of the customer reference, compared byte for byte. The names are
// ones that a linguistic collation orders differently (case, accents, punctuation,
// other scripts): on PostgreSQL the test databases use ICU's en-US collation,
// where "apple" sorts between "A" and "A" + U+10FFFF.
func TestListSearchFollowsItsDefinition(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	now := models.Now()
	app := &models.App{ID: models.NewID("app"), Name: "Acme", ClientID: "c", ClientSecretEnc: "x", Edition: "standard",
		AuthURL: "https://a.example", APIURL: "https://a.example/v3", CreatedAt: now, UpdatedAt: now}
	if err := store.DB().Create(app).Error; err != nil {
		t.Fatal(err)
	}
	names := []string{"apple", "Apple", "APPLE pie", "Äpfel", "a-b", "ab", "A b", "a", "ß", "zz", "émile",
		"Émile", "Emile", "日本", "x_y", "x%y", "xy", `say "hi"`, "Zoë", "zoe", "ŁUKASZ", "Černý"}
	var rows []searchRow
	for i, n := range names {
		id := models.NewID("con")
		exp := now.Add(time.Duration(i) * time.Minute)
		c := &models.Connection{ID: id, AppID: app.ID, AccountID: "A" + n, AccountEmail: strings.ToLower(n) + "@example.com",
			AccountName: n, CustomerRef: "ref-" + n, Status: models.StatusActive, ExpiresAt: &exp, ConnectedAt: now}
		if i%3 == 0 {
			c.MaxDomain = "mail." + strings.ToLower(strings.ReplaceAll(n, " ", "")) + ".example"
		}
		if err := store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
		rows = append(rows, searchRow{id, c.AccountEmail, n, c.CustomerRef, c.AccountID, c.MaxDomain})
	}
	queries := []string{"A", "a", "Ap", "ap", "APPLE", "apple", "pLe", "É", "é", "E", "émi", "ÉMILE", "a-", "ab", "a b", "A b",
		"日", "日本", "ß", "x_", "x%", "x_y", "x%y", "%y@", `"hi"`, `y "`, "Z", "z", "ref-A", "ref-a", "Aapple", "zz@", "q", "łukasz",
		"černý", "ČERNÝ", "mail.", "l.APPLE", "pie.exa", "@EXAMPLE.com", "nothing"}
	for _, sparse := range []int{2000, 0} {
		old := models.SetSearchSparseForTest(sparse)
		for _, q := range queries {
			var want []string
			for _, r := range rows {
				if searchMatches(r, q) {
					want = append(want, r.id)
				}
			}
			page, err := store.ListConnections(ctx, models.ConnectionFilter{Query: q, Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range page.Rows {
				got = append(got, r.ID)
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("index up to %d matches, query %q: got %d rows %v, want %d %v", sparse, q, len(got), searchNames(rows, got), len(want), searchNames(rows, want))
			}
			n, _, err := store.CountConnections(ctx, models.ConnectionFilter{Query: q}, 1000)
			if err != nil || n != int64(len(want)) {
				t.Errorf("index up to %d matches, query %q: count %d (%v), want %d", sparse, q, n, err, len(want))
			}
		}
		models.SetSearchSparseForTest(old)
	}
}

// searchMatches is the search's definition.
func searchMatches(r searchRow, q string) bool {
	if utf8.RuneCountInString(q) < models.SearchMinLength {
		return r.account == q || strings.HasPrefix(r.email, strings.ToLower(q)) || strings.HasPrefix(r.name, q) || strings.HasPrefix(r.ref, q)
	}
	for _, f := range []string{r.email, r.name, r.ref, r.account, r.domain} {
		if strings.Contains(strings.ToLower(f), strings.ToLower(q)) {
			return true
		}
	}
	return false
}

// TestListSearchFindsNamesAnywhere: the searches an operator types, on both ways
// a search runs.
func TestListSearchFindsNamesAnywhere(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	now := models.Now()
	app := &models.App{ID: models.NewID("app"), Name: "Acme", ClientID: "c", ClientSecretEnc: "x", Edition: "standard",
		AuthURL: "https://a.example", APIURL: "https://a.example/v3", CreatedAt: now, UpdatedAt: now}
	if err := store.DB().Create(app).Error; err != nil {
		t.Fatal(err)
	}
	add := func(ref, email, name, account, domain string, status models.Status) string {
		id := models.NewID("con")
		c := &models.Connection{ID: id, AppID: app.ID, CustomerRef: ref, AccountEmail: email, AccountName: name, AccountID: account,
			MaxDomain: domain, Status: status, ExpiresAt: &now, ConnectedAt: now}
		if err := store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
		return id
	}
	hans := add("shop-17", "hans@fischer-bikes.de", "Hans Fischer", "VfEy1", "", models.StatusActive)
	max := add("shop-18", "info@bikes.example", "Bike Team", "Qw3rt", "mail.Fischer-Bikes.de", models.StatusNeedsReconnect)
	jana := add("cz-0042", "jana.novak@seznam.cz", "Jana Novák", "Zz9a1", "", models.StatusActive)
	petr := add("PL-NOVAK-7", "petr@firma.pl", "Petr Dvořák", "Kk4b2", "", models.StatusDisconnected)
	add("other", "someone@example.com", "Some One", "Aa1b2", "", models.StatusActive)
	// Renamed after it was indexed: the search follows.
	if err := store.DB().Exec("UPDATE connections SET account_name = ? WHERE id = ?", "Hans-Peter Fischer", hans).Error; err != nil {
		t.Fatal(err)
	}
	for _, sparse := range []int{2000, 0} {
		old := models.SetSearchSparseForTest(sparse)
		for _, c := range []struct {
			q      string
			status string
			want   []string
		}{
			{"fischer", "", []string{hans, max}},
			{"FISCHER-bikes", "", []string{hans, max}},
			{"fischer-bikes", "needs_reconnect", []string{max}},
			{"Novak", "", []string{jana, petr}},
			{"novak", "live", []string{jana}},
			{"NOVÁK", "", []string{jana}},
			{"dvořák", "", []string{petr}},
			{"peter fisch", "", []string{hans}},
			{"vfey", "", []string{hans}},
			{"il.fischer", "", []string{max}},
			{"0042", "", []string{jana}},
			{"bikes", "", []string{hans, max}},
			{"fisher", "", nil},
		} {
			page, err := store.ListConnections(ctx, models.ConnectionFilter{Query: c.q, Status: c.status, Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range page.Rows {
				got = append(got, r.ID)
			}
			slices.Sort(got)
			slices.Sort(c.want)
			if !slices.Equal(got, c.want) {
				t.Errorf("index up to %d matches: %q (%s) found %v, want %v", sparse, c.q, c.status, got, c.want)
			}
		}
		models.SetSearchSparseForTest(old)
	}
	// A deleted connection leaves the search.
	if err := store.DB().Exec("DELETE FROM connections WHERE id = ?", jana).Error; err != nil {
		t.Fatal(err)
	}
	if n, _, err := store.CountConnections(ctx, models.ConnectionFilter{Query: "seznam"}, 10); err != nil || n != 0 {
		t.Fatalf("a deleted connection still found: %d %v", n, err)
	}
}

type searchRow struct{ id, email, name, ref, account, domain string }

func searchNames(rows []searchRow, ids []string) []string {
	var out []string
	for _, r := range rows {
		if slices.Contains(ids, r.id) {
			out = append(out, r.name)
		}
	}
	return out
}
