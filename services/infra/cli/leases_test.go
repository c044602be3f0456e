package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
)

// A server that starts on a SQLite database no other server uses ends the leases a
// killed server left (the connections it was refreshing are settled now, not in a
// minute); a server that starts beside a running one leaves that one's leases alone.
func TestServeEndsLeasesOfAKilledServer(t *testing.T) {
	env, path := dbEnv(t)
	if err := startServe(t, env).stop(t); err != nil { // a fresh install, with its key
		t.Fatal(err)
	}
	store := openStore(t, path)
	ctx := context.Background()
	now := models.Now()
	app := &models.App{ID: models.NewID("app"), Name: "A", ClientID: "c", ClientSecretEnc: "x", Edition: "standard",
		AuthURL: "https://a.example", APIURL: "https://a.example/v3"}
	if err := store.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	exp := now.Add(time.Hour) // not due: no server of this test refreshes it
	conn := &models.Connection{ID: models.NewID("con"), AppID: app.ID, AccountID: "a1", Status: models.StatusActive,
		ConnectedAt: now, LastRefreshAt: &now, ExpiresAt: &exp}
	if err := store.DB().Create(conn).Error; err != nil {
		t.Fatal(err)
	}
	lease := func(owner string) {
		t.Helper()
		until := models.Now().Add(time.Hour)
		if err := store.DB().Model(conn).Updates(map[string]any{"lease_owner": owner, "lease_until": until}).Error; err != nil {
			t.Fatal(err)
		}
	}
	held := func() bool {
		t.Helper()
		got, err := store.ConnectionByID(ctx, conn.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.LeaseUntil != nil && got.LeaseUntil.After(models.Now())
	}
	const ended = "ended them"

	lease("killed-server")
	a := startServe(t, env)
	if held() || !strings.Contains(a.log.String(), ended) {
		t.Fatalf("the first server left a dead server's lease in place (held %v)\n%s", held(), a.log)
	}

	lease("server-a")
	b := startServe(t, env)
	if !held() || strings.Contains(b.log.String(), ended) {
		t.Fatalf("a server started beside a running one ended its lease\n%s", b.log)
	}
	for _, s := range []*serveProc{a, b} {
		if err := s.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	c := startServe(t, env)
	if held() || !strings.Contains(c.log.String(), ended) {
		t.Fatalf("once every server stopped, the next left an old lease in place\n%s", c.log)
	}
}
