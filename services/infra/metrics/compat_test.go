package metrics

import (
	"runtime"
	"slices"
	"strings"
	"testing"
)

// servedByTheGoClient is every family a full scrape had while the Prometheus Go
// client wrote /metrics: its type and its labels (le and a summary's quantile
// aside). Dashboards and alert rules out there name them.
var servedByTheGoClient = []struct{ name, typ, labels string }{
	{"go_gc_duration_seconds", "summary", ""},
	{"go_gc_gogc_percent", "gauge", ""},
	{"go_gc_gomemlimit_bytes", "gauge", ""},
	{"go_goroutines", "gauge", ""},
	{"go_info", "gauge", "version"},
	{"go_memstats_alloc_bytes", "gauge", ""},
	{"go_memstats_alloc_bytes_total", "counter", ""},
	{"go_memstats_buck_hash_sys_bytes", "gauge", ""},
	{"go_memstats_frees_total", "counter", ""},
	{"go_memstats_gc_sys_bytes", "gauge", ""},
	{"go_memstats_heap_alloc_bytes", "gauge", ""},
	{"go_memstats_heap_idle_bytes", "gauge", ""},
	{"go_memstats_heap_inuse_bytes", "gauge", ""},
	{"go_memstats_heap_objects", "gauge", ""},
	{"go_memstats_heap_released_bytes", "gauge", ""},
	{"go_memstats_heap_sys_bytes", "gauge", ""},
	{"go_memstats_last_gc_time_seconds", "gauge", ""},
	{"go_memstats_mallocs_total", "counter", ""},
	{"go_memstats_mcache_inuse_bytes", "gauge", ""},
	{"go_memstats_mcache_sys_bytes", "gauge", ""},
	{"go_memstats_mspan_inuse_bytes", "gauge", ""},
	{"go_memstats_mspan_sys_bytes", "gauge", ""},
	{"go_memstats_next_gc_bytes", "gauge", ""},
	{"go_memstats_other_sys_bytes", "gauge", ""},
	{"go_memstats_stack_inuse_bytes", "gauge", ""},
	{"go_memstats_stack_sys_bytes", "gauge", ""},
	{"go_memstats_sys_bytes", "gauge", ""},
	{"go_sched_gomaxprocs_threads", "gauge", ""},
	{"go_threads", "gauge", ""},
	{"grconnect_app_connections", "gauge", "app,status"},
	{"grconnect_app_health", "gauge", "app,health,name"},
	{"grconnect_backup_last_duration_seconds", "gauge", ""},
	{"grconnect_backup_last_size_bytes", "gauge", ""},
	{"grconnect_backup_last_success_timestamp_seconds", "gauge", ""},
	{"grconnect_backups_total", "counter", "outcome"},
	{"grconnect_build_info", "gauge", "commit,goversion,version"},
	{"grconnect_connections", "gauge", "status"},
	{"grconnect_connections_due_unrefreshed", "gauge", ""},
	{"grconnect_connections_due_unrefreshed_oldest_seconds", "gauge", ""},
	{"grconnect_figures_collected_timestamp_seconds", "gauge", ""},
	{"grconnect_getresponse_request_duration_seconds", "histogram", "kind"},
	{"grconnect_getresponse_requests_total", "counter", "class,kind"},
	{"grconnect_http_responses_total", "counter", "class"},
	{"grconnect_proxy_requests_total", "counter", "status"},
	{"grconnect_refresh_duration_seconds", "histogram", ""},
	{"grconnect_refreshes_total", "counter", "class,outcome"},
	{"grconnect_token_pair_store_seconds", "histogram", ""},
	{"grconnect_webhook_outbox_oldest_age_seconds", "gauge", ""},
	{"grconnect_webhook_outbox_pending", "gauge", ""},
	{"process_cpu_seconds_total", "counter", ""},
	{"process_max_fds", "gauge", ""},
	{"process_network_receive_bytes_total", "counter", ""},
	{"process_network_transmit_bytes_total", "counter", ""},
	{"process_open_fds", "gauge", ""},
	{"process_resident_memory_bytes", "gauge", ""},
	{"process_start_time_seconds", "gauge", ""},
	{"process_virtual_memory_bytes", "gauge", ""},
	{"process_virtual_memory_max_bytes", "gauge", ""},
}

// TestSeriesAsTheGoClientServed: every family the Prometheus Go client served is
// still served, with the same type and labels, and no other; the families come
// sorted by name and each sample's labels sorted by name, as the client wrote them.
func TestSeriesAsTheGoClientServed(t *testing.T) {
	t.Parallel()
	body := scrape(t, fullRegistry(t))
	families := parse(t, body)
	want := map[string]bool{}
	for _, w := range servedByTheGoClient {
		if strings.HasPrefix(w.name, "process_") && runtime.GOOS != "linux" {
			continue
		}
		want[w.name] = true
		f := families[w.name]
		if f == nil {
			t.Errorf("%s is no longer served", w.name)
			continue
		}
		if f.typ != w.typ {
			t.Errorf("%s is a %s, was a %s", w.name, f.typ, w.typ)
		}
		for _, s := range f.samples {
			var names []string
			for name := range s.labels {
				if name != "le" && (name != "quantile" || f.typ != typeSummary) {
					names = append(names, name)
				}
			}
			slices.Sort(names)
			if got := strings.Join(names, ","); got != w.labels {
				t.Errorf("%s has labels %q, had %q", s.name, got, w.labels)
			}
		}
	}
	for name := range families {
		if !want[name] {
			t.Errorf("%s is served but was not: add it to servedByTheGoClient and docs/metrics.md", name)
		}
	}
	var order []string
	for line := range strings.SplitSeq(body, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			order = append(order, strings.Fields(name)[0])
		}
	}
	if !slices.IsSorted(order) {
		t.Errorf("families not sorted by name: %v", order)
	}
	for _, line := range []string{
		`grconnect_getresponse_requests_total{class="429",kind="proxy"} 1`,
		`grconnect_refreshes_total{class="wait",outcome="failed"} 1`,
		`grconnect_app_health{app="app_1",health="refused",name="Acme \"One\""} 1`,
		`grconnect_getresponse_request_duration_seconds_bucket{kind="token",le="+Inf"} 1`,
		`go_gc_duration_seconds{quantile="0.25"} `,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("the scrape lacks %q", line)
		}
	}
}
