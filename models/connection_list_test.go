package models_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// TestListPrefixSearchIsByteOrdered checks the list's search against its definition
// (an exact account ID, or a prefix of the email in lower case, of the account name or
// of the customer reference, compared byte for byte) with names that a linguistic
// collation orders differently: case, accents, punctuation, other scripts. On
// PostgreSQL the test databases use ICU's en-US collation, where "apple" sorts
// between "A" and "A" + U+10FFFF.
func TestListPrefixSearchIsByteOrdered(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	now := models.Now()
	app := &models.App{ID: models.NewID("app"), Name: "Acme", ClientID: "c", ClientSecretEnc: "x", Edition: "standard",
		AuthURL: "https://a.example", APIURL: "https://a.example/v3", CreatedAt: now, UpdatedAt: now}
	if err := store.DB().Create(app).Error; err != nil {
		t.Fatal(err)
	}
	names := []string{"apple", "Apple", "APPLE pie", "Äpfel", "a-b", "ab", "A b", "a", "ß", "zz", "émile",
		"Émile", "Emile", "日本", "x_y", "x%y", "xy", "Zoë", "zoe"}
	var rows []searchRow
	for i, n := range names {
		id := models.NewID("con")
		exp := now.Add(time.Duration(i) * time.Minute)
		c := &models.Connection{ID: id, AppID: app.ID, AccountID: "A" + n, AccountEmail: strings.ToLower(n) + "@example.com",
			AccountName: n, CustomerRef: "ref-" + n, Status: models.StatusActive, ExpiresAt: &exp, ConnectedAt: now}
		if err := store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
		rows = append(rows, searchRow{id, c.AccountEmail, n, c.CustomerRef})
	}
	queries := []string{"A", "a", "Ap", "ap", "APPLE", "É", "é", "E", "a-", "ab", "a b", "A b", "日", "ß", "x_", "x%", "Z", "z",
		"ref-A", "ref-a", "Aapple", "zz@", "q"}
	for _, q := range queries {
		var want []string
		for _, r := range rows {
			if r.id == q || "A"+r.name == q || strings.HasPrefix(r.email, strings.ToLower(q)) ||
				strings.HasPrefix(r.name, q) || strings.HasPrefix(r.ref, q) {
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
			t.Errorf("query %q: got %d rows %v, want %d %v", q, len(got), searchNames(rows, got), len(want), searchNames(rows, want))
		}
		n, _, err := store.CountConnections(ctx, models.ConnectionFilter{Query: q}, 1000)
		if err != nil || n != int64(len(want)) {
			t.Errorf("query %q: count %d (%v), want %d", q, n, err, len(want))
		}
	}
}

type searchRow struct{ id, email, name, ref string }

func searchNames(rows []searchRow, ids []string) []string {
	var out []string
	for _, r := range rows {
		if slices.Contains(ids, r.id) {
			out = append(out, r.name)
		}
	}
	return out
}
