package handlers_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// seedConnections inserts n connections for appID, spread over the next days.
func seedConnections(tb testing.TB, store *models.Store, appID string, n int) {
	tb.Helper()
	base := time.Now().UTC().Truncate(time.Second)
	batch := make([]models.Connection, 0, 1000)
	statuses := []models.Status{models.StatusActive, models.StatusActive, models.StatusActive, models.StatusRefreshFailing, models.StatusNeedsReconnect, models.StatusDisconnected}
	for i := range n {
		exp := base.Add(time.Duration(i%5000) * time.Minute)
		batch = append(batch, models.Connection{
			ID: fmt.Sprintf("con_%08d", i), AppID: appID, AccountID: fmt.Sprintf("A%07d", i), Status: statuses[i%len(statuses)],
			AccountEmail: fmt.Sprintf("user%07d@example.com", i), AccountName: fmt.Sprintf("User %07d", i),
			CustomerRef: fmt.Sprintf("customer-%07d", i), AccessTokenEnc: "v1.x.y", RefreshTokenEnc: "v1.x.z",
			ExpiresAt: &exp, ConnectedAt: base, CreatedAt: base, UpdatedAt: base,
		})
		if len(batch) == cap(batch) || i == n-1 {
			if err := store.DB().CreateInBatches(batch, 250).Error; err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	store.DB().Exec("ANALYZE")
}

// BenchmarkConnectionsList renders the connections page through the real router
// with 100,000 connections: go test -run '^$' -bench ConnectionsList ./handlers/
func BenchmarkConnectionsList(b *testing.B) {
	f := newConnectFixture(b, getresponsetest.Options{})
	seedConnections(b, f.store, f.appID, 100_000)
	last := f.op.get("/connections?status=all&last=1")
	if last.status != http.StatusOK {
		b.Fatalf("last page = %d", last.status)
	}
	benchPaths(b, f, []struct{ name, path string }{
		{"first", "/connections"},
		{"filtered", "/connections?status=needs_reconnect"},
		{"searched", "/connections?q=user00421&status=all"},
		{"searched mid-string, any case", "/connections?q=SER0042&status=all"},
		{"searched, every row matches", "/connections?q=Example.COM"},
		{"by e-mail", "/connections?sort=email"},
		{"last", "/connections?status=all&last=1"},
	})
}

// benchPaths renders each path as the fixture's signed-in operator, one
// sub-benchmark a path, straight through the router (no network).
func benchPaths(b *testing.B, f *connectFixture, paths []struct{ name, path string }) {
	for _, bc := range paths {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, bc.path, nil)
			for _, c := range f.op.client.Jar.Cookies(mustURL(f.srv.URL)) {
				req.AddCookie(c)
			}
			handler := f.srv.Config.Handler
			for b.Loop() {
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s = %d", bc.path, rec.Code)
				}
			}
		})
	}
}

// BenchmarkPages renders each dashboard page through the real router with 10,000
// connections: go test -run '^$' -bench Pages ./handlers/
func BenchmarkPages(b *testing.B) {
	f := newConnectFixture(b, getresponsetest.Options{})
	seedConnections(b, f.store, f.appID, 10_000)
	benchPaths(b, f, []struct{ name, path string }{
		{"overview", "/"},
		{"connections", "/connections"},
		{"connection", "/connections/con_00000042"},
		{"apps", "/apps"},
		{"app", "/apps/" + f.appID},
		{"operators", "/operators"},
	})
}

// BenchmarkMetrics scrapes /metrics through the router with 300,000 connections
// (the goal is under 2 ms a scrape): go test -run '^$' -bench Metrics ./handlers/
func BenchmarkMetrics(b *testing.B) {
	f := newConnectFixture(b, getresponsetest.Options{})
	seedConnections(b, f.store, f.appID, 300_000)
	start := time.Now()
	if err := f.built.Metrics.Collect(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Logf("one background read of the figures took %v", time.Since(start).Round(time.Millisecond))
	f.logs.stop()
	handler := f.srv.Config.Handler
	for b.Loop() {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("/metrics = %d", rec.Code)
		}
	}
}
