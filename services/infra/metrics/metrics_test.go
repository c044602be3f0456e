package metrics

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
)

// fakeSource answers the database figures without a database.
type fakeSource struct{}

func (fakeSource) ConnectionTotals(context.Context) ([]models.ConnectionTotal, error) {
	return []models.ConnectionTotal{{AppID: "app_1", Status: models.StatusActive, N: 3}}, nil
}

func (fakeSource) OutboxTotals(context.Context) (models.OutboxFigures, error) {
	t := time.Now().Add(-90 * time.Second)
	return models.OutboxFigures{Pending: 4, Oldest: &t}, nil
}

func (fakeSource) RefreshBacklog(_ context.Context, now time.Time, _, _ time.Duration) (models.BacklogFigures, error) {
	t := now.Add(-5 * time.Minute)
	return models.BacklogFigures{Overdue: 2, Since: &t}, nil
}

func (fakeSource) AppStates(context.Context) ([]models.AppState, error) {
	return []models.AppState{{ID: "app_1", Name: `Acme "One"`, Health: models.AppRefused}}, nil
}

// fullRegistry is a registry with every series present.
func fullRegistry(t *testing.T) *Registry {
	t.Helper()
	r := New(fakeSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := r.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.ObserveResponse(200)
	r.ObserveRefresh("failed", "wait", 2*time.Second)
	r.ObserveCommit(time.Millisecond)
	r.ObserveCall("token", 200, 80*time.Millisecond)
	r.ObserveCall("proxy", 429, 10*time.Millisecond)
	r.ObserveCall("api", 0, time.Second)
	r.ObserveProxy(429)
	r.ObserveBackup(time.Unix(1_800_000_000, 0), 1234, 2*time.Second, nil)
	r.ObserveBackup(time.Now(), 0, 0, io.ErrUnexpectedEOF)
	return r
}

func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestSeriesFormat: every line is a comment or a sample of a declared family; the
// figures come out as observed.
func TestSeriesFormat(t *testing.T) {
	body := scrape(t, fullRegistry(t))
	families := map[string]string{}
	sample := regexp.MustCompile(`^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+|\+Inf)$`)
	for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, _ := strings.Cut(f, " ")
			families[name] = kind
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := sample.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("not a sample line: %q", line)
			continue
		}
		name := m[1]
		if families[name] == "" {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if families[base] != "histogram" {
				t.Errorf("sample of an undeclared family: %q", line)
			}
		}
	}
	for _, want := range []string{
		`grconnect_getresponse_requests_total{kind="api",class="error"} 1`,
		`grconnect_getresponse_requests_total{kind="proxy",class="429"} 1`,
		`grconnect_getresponse_request_duration_seconds_bucket{kind="token",le="0.1"} 1`,
		`grconnect_getresponse_request_duration_seconds_bucket{kind="token",le="0.05"} 0`,
		`grconnect_proxy_requests_total{status="429"} 1`,
		"grconnect_webhook_outbox_pending 4\n",
		"grconnect_connections_due_unrefreshed 2\n",
		`grconnect_app_health{app="app_1",name="Acme \"One\"",health="refused"} 1`,
		`grconnect_app_health{app="app_1",name="Acme \"One\"",health="ok"} 0`,
		`grconnect_backups_total{outcome="succeeded"} 1`,
		`grconnect_backups_total{outcome="failed"} 1`,
		"grconnect_backup_last_success_timestamp_seconds 1800000000\n",
		"grconnect_backup_last_size_bytes 1234\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for name, want := range map[string]int{"grconnect_webhook_outbox_oldest_age_seconds": 90, "grconnect_connections_due_unrefreshed_oldest_seconds": 300} {
		m := regexp.MustCompile(`(?m)^` + name + ` (\d+)$`).FindStringSubmatch(body)
		if m == nil {
			t.Errorf("no %s", name)
			continue
		}
		if got, _ := strconv.Atoi(m[1]); got < want || got > want+5 {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}

// TestKnownBackupSurvivesARestart: the newest backup found at start is the last
// success until a newer one, without counting as one.
func TestKnownBackupSurvivesARestart(t *testing.T) {
	r := New(fakeSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if strings.Contains(scrape(t, r), "grconnect_backup") {
		t.Fatal("backup series before any backup")
	}
	r.KnownBackup(time.Unix(1_700_000_000, 0), 99)
	body := scrape(t, r)
	if !strings.Contains(body, "grconnect_backup_last_success_timestamp_seconds 1700000000\n") || !strings.Contains(body, `grconnect_backups_total{outcome="succeeded"} 0`) {
		t.Errorf("after a known backup:\n%s", body)
	}
}

var seriesName = regexp.MustCompile(`grconnect_[a-z_]+`)

// TestMetricsDocsNameEverySeries: docs/metrics.md lists every family grconnect
// serves, and it, the Grafana dashboard and the alert rules name no other.
func TestMetricsDocsNameEverySeries(t *testing.T) {
	served := map[string]bool{}
	for _, line := range strings.Split(scrape(t, fullRegistry(t)), "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			served[strings.Fields(f)[0]] = true
		}
	}
	if len(served) < 20 {
		t.Fatalf("only %d families served", len(served))
	}
	doc, err := os.ReadFile("../../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(grconnect_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	for name := range served {
		if !documented[name] {
			t.Errorf("docs/metrics.md does not list %s", name)
		}
	}
	for _, file := range []string{"../../../docs/metrics.md", "../../../docs/examples/grafana-dashboard.json", "../../../docs/examples/prometheus-alerts.yml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var unknown []string
		for _, name := range seriesName.FindAllString(string(data), -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if !served[base] && !served[name] && !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
		}
		if len(unknown) > 0 {
			t.Errorf("%s names series grconnect does not serve: %v", file, unknown)
		}
	}
}
