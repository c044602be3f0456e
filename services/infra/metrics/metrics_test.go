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
	"sync"
	"sync/atomic"
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

// parse reads a scrape with the strict reader of exposition_test.go: an error
// means the format's rules are broken (and a Prometheus server could reject the
// whole scrape).
func parse(t *testing.T, body string) map[string]*parsedFamily {
	t.Helper()
	families, err := parseExposition(body)
	if err != nil {
		t.Fatalf("the scrape breaks the exposition format: %v\n%s", err, body)
	}
	return families
}

// hasLabels says whether s has the labels (name=value pairs), and only those
// when exact.
func hasLabels(s parsedSample, exact bool, labels ...string) bool {
	if exact && len(s.labels) != len(labels)/2 {
		return false
	}
	for i := 0; i < len(labels); i += 2 {
		if v, ok := s.labels[labels[i]]; !ok || v != labels[i+1] {
			return false
		}
	}
	return true
}

// value returns the value of family's sample whose labels are exactly labels
// (name=value pairs), and whether there is one.
func value(families map[string]*parsedFamily, family string, labels ...string) (float64, bool) {
	f := families[family]
	if f == nil {
		return 0, false
	}
	for _, s := range f.samples {
		if s.name == family && hasLabels(s, true, labels...) {
			return s.value, true
		}
	}
	return 0, false
}

// bucket returns a histogram's cumulative count at the bucket bound le.
func bucket(families map[string]*parsedFamily, family, le string, labels ...string) (uint64, bool) {
	f := families[family]
	if f == nil || f.typ != typeHistogram {
		return 0, false
	}
	for _, s := range f.samples {
		if s.name == family+"_bucket" && s.labels["le"] == le && hasLabels(s, false, labels...) {
			return uint64(s.value), true
		}
	}
	return 0, false
}

// TestSeriesFormat: the scrape is Prometheus's text format, with the standard Go
// runtime and process series, and the figures come out as observed.
func TestSeriesFormat(t *testing.T) {
	body := scrape(t, fullRegistry(t))
	families := parse(t, body)
	for _, std := range []string{"go_goroutines", "go_memstats_alloc_bytes", "go_gc_duration_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"} {
		if families[std] == nil {
			t.Errorf("the scrape lacks the standard series %s", std)
		}
	}
	for _, want := range []struct {
		family string
		labels []string
		value  float64
	}{
		{"grconnect_getresponse_requests_total", []string{"kind", "api", "class", "error"}, 1},
		{"grconnect_getresponse_requests_total", []string{"kind", "proxy", "class", "429"}, 1},
		{"grconnect_proxy_requests_total", []string{"status", "429"}, 1},
		{"grconnect_http_responses_total", []string{"class", "2xx"}, 1},
		{"grconnect_http_responses_total", []string{"class", "5xx"}, 0},
		{"grconnect_refreshes_total", []string{"outcome", "failed", "class", "wait"}, 1},
		{"grconnect_connections", []string{"status", "active"}, 3},
		{"grconnect_connections", []string{"status", "needs_reconnect"}, 0},
		{"grconnect_app_connections", []string{"app", "app_1", "status", "active"}, 3},
		{"grconnect_webhook_outbox_pending", nil, 4},
		{"grconnect_connections_due_unrefreshed", nil, 2},
		{"grconnect_app_health", []string{"app", "app_1", "name", `Acme "One"`, "health", "refused"}, 1},
		{"grconnect_app_health", []string{"app", "app_1", "name", `Acme "One"`, "health", "ok"}, 0},
		{"grconnect_backups_total", []string{"outcome", "succeeded"}, 1},
		{"grconnect_backups_total", []string{"outcome", "failed"}, 1},
		{"grconnect_backup_last_success_timestamp_seconds", nil, 1_800_000_000},
		{"grconnect_backup_last_size_bytes", nil, 1234},
		{"grconnect_backup_last_duration_seconds", nil, 2},
	} {
		if got, ok := value(families, want.family, want.labels...); !ok || got != want.value {
			t.Errorf("%s%v = %v (present %v), want %v", want.family, want.labels, got, ok, want.value)
		}
	}
	if n, ok := bucket(families, "grconnect_getresponse_request_duration_seconds", "0.1", "kind", "token"); !ok || n != 1 {
		t.Errorf("token calls under 0.1 s = %d (%v), want 1", n, ok)
	}
	if n, ok := bucket(families, "grconnect_getresponse_request_duration_seconds", "0.05", "kind", "token"); !ok || n != 0 {
		t.Errorf("token calls under 0.05 s = %d (%v), want 0", n, ok)
	}
	for name, want := range map[string]float64{"grconnect_webhook_outbox_oldest_age_seconds": 90, "grconnect_connections_due_unrefreshed_oldest_seconds": 300} {
		if got, ok := value(families, name); !ok || got < want || got > want+5 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// oddSource is a database whose app names hold what operators could type before
// names were checked: zero-width and direction-changing characters, quotes,
// backslashes, a newline, broken UTF-8.
type oddSource struct{ fakeSource }

var oddNames = []string{"Acme\u200bTemplates", "\u202eevil\u202c", `back\slash "quoted"`, "two\nlines", "tab\there", "bad \xff\xfe bytes", "emoji 🚀 and ünïcödé"}

func (oddSource) AppStates(context.Context) ([]models.AppState, error) {
	var out []models.AppState
	for i, n := range oddNames {
		out = append(out, models.AppState{ID: "app_" + strconv.Itoa(i), Name: n, Health: models.AppHealthy})
	}
	return out, nil
}

// TestOddLabelValuesParse (issue 21, finding 6): app names with U+200B and other
// odd runes are escaped, so a strict reader of the format accepts the scrape and
// reads each name back (broken UTF-8 as U+FFFD).
func TestOddLabelValuesParse(t *testing.T) {
	r := New(oddSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := r.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	families := parse(t, scrape(t, r))
	for i, name := range oddNames {
		want := strings.ToValidUTF8(name, "\uFFFD")
		if v, ok := value(families, "grconnect_app_health", "app", "app_"+strconv.Itoa(i), "name", want, "health", "ok"); !ok || v != 1 {
			t.Errorf("app %q: %v (present %v)", name, v, ok)
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
	families := parse(t, scrape(t, r))
	last, _ := value(families, "grconnect_backup_last_success_timestamp_seconds")
	ok, present := value(families, "grconnect_backups_total", "outcome", "succeeded")
	if last != 1_700_000_000 || !present || ok != 0 {
		t.Errorf("after a known backup: last %v, succeeded %v (%v)", last, ok, present)
	}
}

var seriesName = regexp.MustCompile(`grconnect_[a-z_]+`)

// TestMetricsDocsNameEverySeries: docs/metrics.md lists every family grconnect
// serves, and it, the Grafana dashboard and the alert rules name no other.
func TestMetricsDocsNameEverySeries(t *testing.T) {
	served := map[string]bool{}
	for name := range parse(t, scrape(t, fullRegistry(t))) {
		served[name] = true
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
	// The standard collectors' series are documented by their prefix (`go_*`, `process_*`).
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z]+_)\\*` \\|").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	for name := range served {
		prefix, _, _ := strings.Cut(name, "_")
		if !documented[name] && (prefix == "grconnect" || !documented[prefix+"_"]) {
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

// BenchmarkWritePrometheus formats a full scrape from memory (the go_* and
// process_* series included): go test -run '^$' -bench WritePrometheus ./services/infra/metrics/
func BenchmarkWritePrometheus(b *testing.B) {
	r := New(fakeSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := r.Collect(context.Background()); err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := r.WritePrometheus(&buf); err != nil {
			b.Fatal(err)
		}
	}
}

// countingSource is fakeSource that counts its reads of the connection totals,
// slowly, as a million connections would.
type countingSource struct {
	fakeSource
	reads atomic.Int64
}

func (s *countingSource) ConnectionTotals(ctx context.Context) ([]models.ConnectionTotal, error) {
	s.reads.Add(1)
	time.Sleep(20 * time.Millisecond)
	return s.fakeSource.ConnectionTotals(ctx)
}

// TestThirtyFirstScrapesReadTheFiguresOnce: 30 scrapes before the first read of
// the figures read them once between them, and each gets them; a later Collect
// (the background reader) reads again.
func TestThirtyFirstScrapesReadTheFiguresOnce(t *testing.T) {
	t.Parallel()
	src := &countingSource{}
	r := New(src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if err := r.CollectFirst(context.Background()); err != nil {
				t.Error(err)
			}
			if r.Collected().IsZero() {
				t.Error("a scrape went on without the figures")
			}
		})
	}
	wg.Wait()
	if n := src.reads.Load(); n != 1 {
		t.Fatalf("30 first scrapes read the figures %d times, want once", n)
	}
	if err := r.Collect(context.Background()); err != nil || src.reads.Load() != 2 {
		t.Fatalf("Collect: %v, reads %d; want a second read", err, src.reads.Load())
	}
}
