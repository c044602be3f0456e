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

// identityFixture is an app with a link, in a fresh database.
func identityFixture(t *testing.T) (*models.Store, *models.App) {
	t.Helper()
	store := modelstest.New(t)
	app := &models.App{ID: models.NewID("app"), Name: "Acme", ClientID: "c", ClientSecretEnc: "x", Edition: "max_us",
		AuthURL: "https://{domain}/oauth2_authorize.html", APIURL: "https://api3.getresponse360.com/v3"}
	if err := store.CreateApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	return store, app
}

func newLink(t *testing.T, store *models.Store, app *models.App, ref string, allowTransfer bool) *models.ConnectLink {
	t.Helper()
	now := models.Now()
	l := &models.ConnectLink{ID: models.NewID("lnk"), TokenHash: models.RandomToken(10), TokenEnc: "x", AppID: app.ID,
		CustomerRef: ref, AllowTransfer: allowTransfer, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	if err := store.CreateConnectLink(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l
}

func authorization(app *models.App, link *models.ConnectLink, domain, account string) models.Authorization {
	return models.Authorization{AppID: app.ID, LinkID: link.ID, CustomerRef: link.CustomerRef, MaxDomain: domain, AccountID: account,
		AccountEmail: account + "@example.com",
		Seal: func(string) (models.SealedTokens, error) {
			return models.SealedTokens{AccessEnc: "a", RefreshEnc: "r", Fingerprint: "f", ExpiresAt: models.Now().Add(time.Hour)}, nil
		}}
}

// TestLinkCompletesOnce: flows of one link saving at the same time, for different
// accounts: exactly one connection, the others ErrAlreadyUsed.
func TestLinkCompletesOnce(t *testing.T) {
	t.Parallel()
	store, app := identityFixture(t)
	link := newLink(t, store, app, "customer-1", false)
	const flows = 8
	var wg sync.WaitGroup
	errs := make([]error, flows)
	for i := range flows {
		wg.Go(func() {
			_, errs[i] = store.SaveAuthorization(context.Background(), authorization(app, link, "a.example.com", fmt.Sprintf("acc%d", i)))
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, models.ErrAlreadyUsed):
			t.Errorf("a losing flow got %v, want ErrAlreadyUsed", err)
		}
	}
	var n int64
	store.DB().Model(&models.Connection{}).Count(&n)
	if ok != 1 || n != 1 {
		t.Fatalf("%d flows succeeded and %d connections exist, want 1 and 1", ok, n)
	}
	l, _ := store.ConnectLinkByID(context.Background(), link.ID)
	if l.UsedAt == nil || l.UsedConnectionID == nil || l.UsedAccount == "" {
		t.Fatalf("link after use: %+v", l)
	}
	// A revoked link completes nothing.
	revoked := newLink(t, store, app, "customer-2", false)
	if _, err := store.RevokeConnectLink(context.Background(), revoked.ID, "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SaveAuthorization(context.Background(), authorization(app, revoked, "a.example.com", "accX")); !errors.Is(err, models.ErrRevoked) {
		t.Fatalf("saving through a revoked link: %v", err)
	}
	if _, err := store.RevokeConnectLink(context.Background(), link.ID, "ann"); !errors.Is(err, models.ErrAlreadyUsed) {
		t.Fatalf("revoking a used link: %v", err)
	}
}

// TestTransferNeedsTheLinksPermission: the same (app, domain, account) for another
// customer is refused, leaving the link unused and the connection with its
// customer; with allow_transfer it moves; another domain is another connection.
func TestTransferNeedsTheLinksPermission(t *testing.T) {
	t.Parallel()
	store, app := identityFixture(t)
	ctx := context.Background()
	a, err := store.SaveAuthorization(ctx, authorization(app, newLink(t, store, app, "A", false), "a.example.com", "acc1"))
	if err != nil || a.Outcome != models.AuthorizationCreated {
		t.Fatal(a, err)
	}
	linkB := newLink(t, store, app, "B", false)
	res, err := store.SaveAuthorization(ctx, authorization(app, linkB, "a.example.com", "acc1"))
	if !errors.Is(err, models.ErrTransferRefused) || res.Outcome != models.AuthorizationRefused || res.Connection.ID != a.Connection.ID {
		t.Fatalf("B's flow: %+v %v", res, err)
	}
	if c, _ := store.ConnectionByID(ctx, a.Connection.ID); c.CustomerRef != "A" {
		t.Fatalf("A's connection now belongs to %q", c.CustomerRef)
	}
	if l, _ := store.ConnectLinkByID(ctx, linkB.ID); l.UsedAt != nil {
		t.Fatal("a refused flow used its link")
	}
	// Another MAX domain: the same account ID is another connection, B's.
	other, err := store.SaveAuthorization(ctx, authorization(app, linkB, "b.example.com", "acc1"))
	if err != nil || other.Outcome != models.AuthorizationCreated || other.Connection.ID == a.Connection.ID {
		t.Fatalf("other domain: %+v %v", other, err)
	}
	moved, err := store.SaveAuthorization(ctx, authorization(app, newLink(t, store, app, "C", true), "a.example.com", "acc1"))
	if err != nil || moved.Outcome != models.AuthorizationTransferred || moved.PreviousCustomerRef != "A" ||
		moved.Connection.ID != a.Connection.ID || moved.Connection.CustomerRef != "C" {
		t.Fatalf("transfer: %+v %v", moved, err)
	}
	events, _, err := store.ConnectionEvents(ctx, a.Connection.ID, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var types []models.EventType
	for _, e := range events {
		types = append(types, e.Type)
	}
	want := []models.EventType{models.EventTransferred, models.EventTransferRefused, models.EventConnectionCreated}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("timeline %v, want %v", types, want)
	}
}
