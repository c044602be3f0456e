package services_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// TestRekeyWhileRefreshesWrite: a rotation re-seals every stored secret with the new
// key while a "server" keeps writing fresh tokens (sealed with the new key): no
// write is undone, nothing is left under the old key, and running it again changes
// nothing.
func TestRekeyWhileRefreshesWrite(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	ctx := context.Background()
	newKey := bytes.Repeat([]byte{0x42}, secrets.KeySize)
	rotating, _ := secrets.New(newKey, testKey) // the new key, reading with the old one
	onlyNew, _ := secrets.New(newKey)

	var conns []*models.Connection
	for range 120 {
		conns = append(conns, e.seed(models.StatusActive, e.clock.Now().Add(time.Hour), nil))
	}
	wh := services.NewWebhooks(e.store, e.box, nil, discard())
	wh.AllowPrivate = true
	if _, err := wh.Configure(ctx, e.app, services.WebhookInput{URL: "https://hooks.example.com/x"}); err != nil {
		t.Fatal(err)
	}
	if err := services.CheckKey(ctx, e.store, e.box); err != nil {
		t.Fatal(err)
	}

	// The "refresher" rewrites a third of the connections during the rotation.
	rewritten := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < len(conns); i += 3 {
			id := conns[i].ID
			access := "v2-access-" + id
			a, _ := rotating.Seal(access, secrets.AAD("connection", id, "access_token"))
			r, _ := rotating.Seal("v2-refresh-"+id, secrets.AAD("connection", id, "refresh_token"))
			if err := e.store.DB().Exec("UPDATE connections SET access_token_enc = ?, refresh_token_enc = ? WHERE id = ?", a, r, id).Error; err != nil {
				t.Error(err)
			}
			mu.Lock()
			rewritten[id] = access
			mu.Unlock()
		}
	})
	counts, err := services.Rekey(ctx, e.store, rotating, 7)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	total := map[string]int{}
	for _, c := range counts {
		if c.Unreadable != 0 {
			t.Errorf("%s.%s: %d unreadable", c.Table, c.Field, c.Unreadable)
		}
		total[c.Table+"."+c.Field] = c.Resealed + c.Current
	}
	for field, want := range map[string]int{"connections.access_token": 120, "connections.refresh_token": 120, "apps.client_secret": 1,
		"apps.webhook_secret": 1, "install_secrets.value": 1} {
		if total[field] != want {
			t.Errorf("%s: %d values counted, want %d (%v)", field, total[field], want, counts)
		}
	}
	// Everything opens with the new key alone, and no rewrite was undone.
	for _, c := range conns {
		got := e.get(c.ID)
		access, err := onlyNew.Open(got.AccessTokenEnc, secrets.AAD("connection", c.ID, "access_token"))
		if err != nil {
			t.Fatalf("%s: the access token does not open with the new key: %v", c.ID, err)
		}
		if _, err := onlyNew.Open(got.RefreshTokenEnc, secrets.AAD("connection", c.ID, "refresh_token")); err != nil {
			t.Fatalf("%s: the refresh token does not open with the new key", c.ID)
		}
		if want, ok := rewritten[c.ID]; ok && access != want {
			t.Fatalf("%s: the concurrent write was undone (access %q)", c.ID, access)
		}
		if !ok(rewritten, c.ID) && strings.HasPrefix(access, "v2-") {
			t.Fatalf("%s: mixed up", c.ID)
		}
		if got.TokenFingerprint != onlyNew.Fingerprint(access) && !ok(rewritten, c.ID) {
			t.Fatalf("%s: fingerprint not recomputed with the new key", c.ID)
		}
	}
	if err := services.CheckKey(ctx, e.store, onlyNew); err != nil {
		t.Fatalf("after the rotation the new key alone fails the key check: %v", err)
	}
	if n, err := services.RemainingUnderPreviousKeys(ctx, e.store, rotating); err != nil || n != 0 {
		t.Fatalf("%d values left under previous keys (%v)", n, err)
	}
	// Again: nothing to do.
	again, err := services.Rekey(ctx, e.store, rotating, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again {
		if c.Resealed != 0 {
			t.Errorf("a second rekey re-sealed %d values of %s.%s", c.Resealed, c.Table, c.Field)
		}
	}
}

func ok(m map[string]string, k string) bool { _, found := m[k]; return found }

// TestCheckKey: the first check stores a sealed check value; a wrong key is
// refused; a rotation's box (new key, old key previous) passes.
func TestCheckKey(t *testing.T) {
	e := newEngine(t, getresponsetest.Options{})
	ctx := context.Background()
	wrong, _ := secrets.New(bytes.Repeat([]byte{9}, secrets.KeySize))
	// Before any check value: the app's sealed client secret tells the wrong key.
	if err := services.CheckKey(ctx, e.store, wrong); err != services.ErrWrongKey {
		t.Fatalf("wrong key without a check value = %v, want ErrWrongKey", err)
	}
	if err := services.CheckKey(ctx, e.store, e.box); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.InstallSecret(ctx, "key_check"); err != nil {
		t.Fatalf("no check value stored: %v", err)
	}
	if err := services.CheckKey(ctx, e.store, wrong); err != services.ErrWrongKey {
		t.Fatalf("wrong key = %v, want ErrWrongKey", err)
	}
	rotating, _ := secrets.New(bytes.Repeat([]byte{9}, secrets.KeySize), testKey)
	if err := services.CheckKey(ctx, e.store, rotating); err != nil {
		t.Fatalf("the new key with the old one as previous = %v", err)
	}
	if held, err := services.HoldsSealedData(ctx, e.store); err != nil || !held {
		t.Fatalf("HoldsSealedData = %v, %v", held, err)
	}
}
