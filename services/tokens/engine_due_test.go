package tokens_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/tokens"
)

// TestDuePolicyMatchesSQL holds the SQL picker (models.Store.DueConnections) to the
// Go rule (DuePolicy.Background) on every combination of the columns it reads,
// including the edges: exactly at the margin, the keep-alive and the window.
func TestDuePolicyMatchesSQL(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	policy := e.Tokens.Policy()
	now := e.Clock.Now()
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	expiries := []*time.Time{nil, at(-time.Hour), at(0), at(policy.Margin - time.Microsecond), at(policy.Margin), at(policy.Margin + time.Second), at(2 * time.Hour)}
	lastRefreshes := []*time.Time{nil, at(-policy.Keepalive - time.Second), at(-policy.Keepalive), at(-policy.Keepalive + time.Second), at(-time.Minute)}
	nextAttempts := []*time.Time{nil, at(-time.Second), at(0), at(time.Second)}
	want := map[string]bool{}
	for _, status := range models.Statuses {
		for _, exp := range expiries {
			for _, last := range lastRefreshes {
				for _, next := range nextAttempts {
					c := &models.Connection{ID: models.NewID("con"), AppID: e.App.ID, AccountID: models.NewID("acc"), Status: status,
						ExpiresAt: exp, LastRefreshAt: last, NextAttemptAt: next, ConnectedAt: now}
					if err := e.Store.DB().Create(c).Error; err != nil {
						t.Fatal(err)
					}
					want[c.ID] = policy.Background(c, now)
				}
			}
		}
	}
	ids, err := e.Store.DueConnections(context.Background(), policy.Query(now, len(want)+1))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, id := range ids {
		got[id] = true
	}
	dueCount := 0
	for id, isDue := range want {
		if isDue {
			dueCount++
		}
		if got[id] != isDue {
			c := e.Get(id)
			t.Errorf("%s: SQL says due=%v, policy says %v", describeDue(c, now), got[id], isDue)
		}
	}
	if dueCount == 0 || dueCount == len(want) {
		t.Fatalf("%d of %d due: the cases do not exercise the rule", dueCount, len(want))
	}
}

func describeDue(c *models.Connection, now time.Time) string {
	rel := func(t *time.Time) string {
		if t == nil {
			return "nil"
		}
		return t.Sub(now).String()
	}
	return fmt.Sprintf("status=%s expires=%s last=%s next=%s", c.Status, rel(c.ExpiresAt), rel(c.LastRefreshAt), rel(c.NextAttemptAt))
}

// TestDuePolicyOnDemand: a token request refreshes only inside the margin, and a
// failing connection only once its window has passed; the keep-alive is not its
// business.
func TestDuePolicyOnDemand(t *testing.T) {
	p := tokens.DuePolicy{Margin: 10 * time.Minute, Keepalive: 24 * time.Hour}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	tests := []struct {
		name string
		c    models.Connection
		want bool
	}{
		{"active, fresh", models.Connection{Status: models.StatusActive, ExpiresAt: at(time.Hour), LastRefreshAt: at(-48 * time.Hour)}, false},
		{"active, inside the margin", models.Connection{Status: models.StatusActive, ExpiresAt: at(5 * time.Minute)}, true},
		{"active, at the margin", models.Connection{Status: models.StatusActive, ExpiresAt: at(10 * time.Minute)}, false},
		{"failing, inside, window open", models.Connection{Status: models.StatusRefreshFailing, ExpiresAt: at(time.Minute), NextAttemptAt: at(-time.Second)}, true},
		{"failing, inside, window closed", models.Connection{Status: models.StatusRefreshFailing, ExpiresAt: at(time.Minute), NextAttemptAt: at(time.Second)}, false},
		{"failing, outside the margin", models.Connection{Status: models.StatusRefreshFailing, ExpiresAt: at(time.Hour)}, false},
		{"needs reconnect", models.Connection{Status: models.StatusNeedsReconnect, ExpiresAt: at(time.Minute)}, false},
		{"disconnected", models.Connection{Status: models.StatusDisconnected}, false},
	}
	for _, tc := range tests {
		if got := p.OnDemand(&tc.c, now); got != tc.want {
			t.Errorf("%s: OnDemand = %v, want %v", tc.name, got, tc.want)
		}
	}
}
