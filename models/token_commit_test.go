package models_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
)

// TestConcurrentPairsEachLandOnce: 60 new pairs stored at once (SQLite commits
// those that arrive together in one transaction) each land on their own row,
// and each caller gets its own outcome: its row as stored, its event, or
// ErrSuperseded for the ten written over a pair that was replaced meanwhile.
func TestConcurrentPairsEachLandOnce(t *testing.T) {
	store := modelstest.New(t)
	ctx := context.Background()
	app := createApp(t, store, nil)
	now := models.Now()
	var conns []*models.Connection
	for i := range 60 {
		c := seedConnection(t, store, app, fmt.Sprintf("acc%d", i), nil)
		conns = append(conns, c)
	}
	// The last ten were refreshed by someone else first: their copies are stale.
	for _, c := range conns[50:] {
		if err := store.DB().Exec("UPDATE connections SET token_version = token_version + 1, access_token_enc = 'theirs' WHERE id = ?", c.ID).Error; err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		saved  *models.Connection
		events []*models.Event
		err    error
	}
	results := make([]result, len(conns))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range conns {
		wg.Go(func() {
			<-start
			exp := now.Add(time.Duration(i+1) * time.Hour)
			saved, evs, err := store.StoreRefreshTokens(ctx, c, models.RefreshResult{
				Tokens: &models.SealedTokens{AccessEnc: "access-" + c.ID, RefreshEnc: "refresh-" + c.ID, ExpiresAt: exp},
				Event:  models.Event{Type: models.EventRefreshSucceeded, Message: "refreshed"}, At: now})
			results[i] = result{saved, evs, err}
		})
	}
	close(start)
	wg.Wait()
	for i, c := range conns {
		r := results[i]
		got := storedConnection(t, store, c.ID)
		if i >= 50 {
			if !errors.Is(r.err, models.ErrSuperseded) || got.AccessTokenEnc != "theirs" {
				t.Errorf("stale pair %d: %v, stored %q", i, r.err, got.AccessTokenEnc)
			}
			continue
		}
		if r.err != nil || r.saved == nil || r.saved.ID != c.ID || r.saved.AccessTokenEnc != "access-"+c.ID || len(r.events) != 1 || r.events[0].ConnectionID == nil || *r.events[0].ConnectionID != c.ID {
			t.Errorf("pair %d: %+v", i, r)
			continue
		}
		if got.AccessTokenEnc != "access-"+c.ID || got.RefreshTokenEnc != "refresh-"+c.ID || got.TokenVersion != 1 || !got.ExpiresAt.Equal(now.Add(time.Duration(i+1)*time.Hour)) {
			t.Errorf("row %d as stored: %q %q version %d expires %v", i, got.AccessTokenEnc, got.RefreshTokenEnc, got.TokenVersion, got.ExpiresAt)
		}
	}
}
