package getresponsetest

import (
	"net/http"
	"testing"
	"time"
)

// TestRotationGrace: the rotated-away refresh token keeps working for the
// grace period (each use issuing a new one), then dies; every presentation
// of a dead token is counted.
func TestRotationGrace(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	s := newTestServer(t, Options{Now: clk.Now, Rotation: RotationGrace, RotationGrace: 30 * time.Second})
	_, old := tokens(t, s)
	refresh := func(rt string) answer { return tokenCall(t, s, refreshForm(rt), nil) }

	a := refresh(old)
	next, _ := a.json(t)["refresh_token"].(string)
	if a.status != http.StatusOK || next == "" || next == old {
		t.Fatalf("first refresh: %d %s", a.status, a.body)
	}
	clk.Add(29 * time.Second)
	a = refresh(old) // a crashed client retrying with what it had stored
	again, _ := a.json(t)["refresh_token"].(string)
	if a.status != http.StatusOK || again == "" || again == old || again == next {
		t.Fatalf("old token inside the grace: %d %s", a.status, a.body)
	}
	if got := s.Stat(StatGraceRefresh); got != 1 {
		t.Errorf("StatGraceRefresh = %d, want 1", got)
	}
	clk.Add(time.Second)
	for i := range 2 {
		if a := refresh(old); a.status != http.StatusBadRequest || a.json(t)["error"] != "invalid_grant" {
			t.Fatalf("old token after the grace (%d): %d %s", i, a.status, a.body)
		}
	}
	if got := s.Stat(StatDeadRefreshToken); got != 2 {
		t.Errorf("StatDeadRefreshToken = %d, want 2", got)
	}
	// Both tokens issued from it are alive.
	for _, rt := range []string{next, again} {
		if a := refresh(rt); a.status != http.StatusOK {
			t.Errorf("a successor: %d %s", a.status, a.body)
		}
	}
}

// TestDeadRefreshTokensAreCounted: strict rotation counts every use of a
// rotated-away token; unknown and revoked tokens are not "dead".
func TestDeadRefreshTokensAreCounted(t *testing.T) {
	for _, tt := range []struct {
		rotation Rotation
		dead     int
	}{
		{RotationStrict, 3},
		{RotationRotate, 0},
		{RotationNone, 0},
	} {
		s := newTestServer(t, Options{Rotation: tt.rotation})
		_, old := tokens(t, s)
		tokenCall(t, s, refreshForm(old), nil)
		for range 3 {
			tokenCall(t, s, refreshForm(old), nil)
		}
		tokenCall(t, s, refreshForm("never-issued"), nil)
		if got := s.Stat(StatDeadRefreshToken); got != tt.dead {
			t.Errorf("rotation %d: StatDeadRefreshToken = %d, want %d", tt.rotation, got, tt.dead)
		}
		s.RevokeRefreshTokens()
		tokenCall(t, s, refreshForm(old), nil)
		if got := s.Stat(StatDeadRefreshToken); got != tt.dead {
			t.Errorf("rotation %d: a revoked token counted as dead", tt.rotation)
		}
	}
}

// TestRejectNextRefresh: the marked token's next refresh answers
// invalid_grant, and the token is gone.
func TestRejectNextRefresh(t *testing.T) {
	s := newTestServer(t, Options{})
	_, refresh := tokens(t, s)
	if !s.RejectNextRefresh(refresh) || s.RejectNextRefresh("unknown") {
		t.Fatal("RejectNextRefresh did not report which token it knew")
	}
	for i := range 2 {
		if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusBadRequest || a.json(t)["error"] != "invalid_grant" {
			t.Errorf("refresh %d: %d %s", i, a.status, a.body)
		}
	}
}
