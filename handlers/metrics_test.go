package handlers_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// scrape fetches /metrics through the router (no session: Prometheus has none).
func scrape(t testing.TB, a *testApp) string {
	t.Helper()
	rec := httptest.NewRecorder()
	a.srv.Config.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics = %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	return rec.Body.String()
}

// TestMetricsServedFromMemory: a scrape formats the figures read in the background
// and never counts connections itself; the next read shows the change.
func TestMetricsServedFromMemory(t *testing.T) {
	t.Parallel()
	f := newConnectFixture(t, getresponsetest.Options{})
	seedConnections(t, f.store, f.appID, 12) // 6 active, 2 of each other state
	body := scrape(t, f.testApp)
	for _, want := range []string{
		`grconnect_connections{status="active"} 6`,
		`grconnect_connections{status="needs_reconnect"} 2`,
		`grconnect_app_connections{app="` + f.appID + `",status="refresh_failing"} 2`,
		`grconnect_http_responses_total{class="2xx"}`,
		"grconnect_figures_collected_timestamp_seconds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if err := f.store.DB().Exec("UPDATE connections SET status = 'needs_reconnect' WHERE status = 'active'").Error; err != nil {
		t.Fatal(err)
	}
	if body := scrape(t, f.testApp); !strings.Contains(body, `grconnect_connections{status="active"} 6`) {
		t.Fatalf("a scrape counted the connections itself:\n%s", body)
	}
	if err := f.built.Metrics.Collect(t.Context()); err != nil {
		t.Fatal(err)
	}
	if body := scrape(t, f.testApp); !strings.Contains(body, `grconnect_connections{status="needs_reconnect"} 8`) ||
		!strings.Contains(body, `grconnect_connections{status="active"} 0`) {
		t.Fatalf("after the next read:\n%s", body)
	}
}
