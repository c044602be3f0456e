package metrics

import (
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

var sink []byte

// TestGoSeriesFollowTheRuntime: the go_* series are read afresh at each scrape
// and move with what the runtime does.
func TestGoSeriesFollowTheRuntime(t *testing.T) {
	r := New(fakeSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	read := func(name string, labels ...string) float64 {
		t.Helper()
		v, ok := sampleValue(parse(t, scrape(t, r)), name, labels...)
		if !ok {
			t.Fatalf("no %s%v", name, labels)
		}
		return v
	}
	goroutines, gcs, allocated := read("go_goroutines"), read("go_gc_duration_seconds_count"), read("go_memstats_alloc_bytes_total")
	release := make(chan struct{})
	for range 100 {
		go func() { <-release }()
	}
	defer close(release)
	// A few goroutines of earlier tests may end meanwhile.
	if got := read("go_goroutines"); got < goroutines+90 {
		t.Errorf("go_goroutines %v after starting 100 more than %v", got, goroutines)
	}
	before := time.Now()
	sink = make([]byte, 8<<20)
	runtime.GC()
	if got := read("go_memstats_alloc_bytes_total"); got < allocated+8<<20 {
		t.Errorf("go_memstats_alloc_bytes_total %v after allocating 8 MB more than %v", got, allocated)
	}
	if got := read("go_gc_duration_seconds_count"); got < gcs+1 {
		t.Errorf("go_gc_duration_seconds_count %v after a GC, was %v", got, gcs)
	}
	if last := read("go_memstats_last_gc_time_seconds"); last < float64(before.UnixNano())/1e9-1 || last > float64(time.Now().UnixNano())/1e9+1 {
		t.Errorf("go_memstats_last_gc_time_seconds %v, the GC ran at %v", last, before.Unix())
	}
	if got := read("go_sched_gomaxprocs_threads"); got != float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("go_sched_gomaxprocs_threads %v, GOMAXPROCS %d", got, runtime.GOMAXPROCS(0))
	}
	if got := read("go_info", "version", runtime.Version()); got != 1 {
		t.Errorf("go_info = %v", got)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	if got := read("go_gc_gogc_percent"); got != 150 {
		t.Errorf("go_gc_gogc_percent %v after SetGCPercent(150)", got)
	}
	sink = nil
}
