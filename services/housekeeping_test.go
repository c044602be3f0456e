package services_test

import (
	"context"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/tokens/tokenstest"
)

// TestHousekeepingSweeps: the hourly pass deletes authorizations expired over an
// hour ago, throttle rows whose window passed and ended sessions, and nothing else.
func TestHousekeepingSweeps(t *testing.T) {
	e := tokenstest.New(t, getresponsetest.Options{})
	ctx := context.Background()
	now := models.Now()
	db := e.Store.DB()
	for i, exp := range []time.Time{now.Add(-2 * time.Hour), now.Add(-10 * time.Minute), now.Add(5 * time.Minute)} {
		if err := e.Store.CreateAuthState(ctx, &models.AuthState{ID: models.NewID("ast"), StateHash: "s" + string(rune('a'+i)), BrowserHash: "b",
			AppID: e.App.ID, ExpiresAt: exp, CreatedAt: exp.Add(-10 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Exec("INSERT INTO login_throttles (key, failures, window_start) VALUES ('ip:old', 3, ?), ('ip:new', 3, ?)",
		now.Add(-time.Hour), now.Add(-time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	op := &models.Operator{Email: "ann@example.com", PasswordHash: "h"}
	if err := e.Store.CreateOperator(ctx, op); err != nil {
		t.Fatal(err)
	}
	for i, s := range []models.OperatorSession{
		{CreatedAt: now.Add(-8 * 24 * time.Hour), LastSeenAt: now.Add(-time.Minute), ExpiresAt: now.Add(-24 * time.Hour)},   // too old
		{CreatedAt: now.Add(-24 * time.Hour), LastSeenAt: now.Add(-13 * time.Hour), ExpiresAt: now.Add(6 * 24 * time.Hour)}, // idle
		{CreatedAt: now.Add(-time.Hour), LastSeenAt: now.Add(-time.Minute), ExpiresAt: now.Add(6 * 24 * time.Hour)},         // live
	} {
		s.TokenHash, s.OperatorID = "t"+string(rune('a'+i)), op.ID
		if err := e.Store.CreateSession(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	h := services.NewHousekeeping(e.Store, tokenstest.Discard())
	swept, err := h.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if swept != (services.Swept{AuthStates: 1, Throttles: 1, Sessions: 2}) {
		t.Fatalf("swept %+v, want 1 authorization, 1 throttle row, 2 sessions", swept)
	}
	var states, throttles, sessions int64
	db.Model(&models.AuthState{}).Count(&states)
	db.Model(&models.LoginThrottle{}).Count(&throttles)
	db.Model(&models.OperatorSession{}).Count(&sessions)
	if states != 2 || throttles != 1 || sessions != 1 {
		t.Fatalf("left %d authorizations, %d throttle rows, %d sessions; want 2, 1, 1", states, throttles, sessions)
	}
}
