package metrics

import (
	"runtime"
	"runtime/debug"
	rm "runtime/metrics"
	"time"
)

// The Go runtime's series (go_*): the names, help texts and values the Prometheus
// Go client's standard Go collector served, read from runtime/metrics (which,
// unlike runtime.ReadMemStats, does not stop the world) and debug.ReadGCStats.

// The runtime/metrics samples the go_* series are made of, by index.
const (
	rmTinyAllocs = iota
	rmAllocsObjects
	rmFreesObjects
	rmAllocsBytes
	rmHeapObjects
	rmHeapGoal
	rmTotal
	rmHeapObjectsBytes
	rmHeapUnused
	rmHeapReleased
	rmHeapFree
	rmHeapStacks
	rmOSStacks
	rmMSpanInuse
	rmMSpanFree
	rmMCacheInuse
	rmMCacheFree
	rmProfBuckets
	rmMetadataOther
	rmOther
	rmGOGC
	rmGOMEMLIMIT
	rmGOMAXPROCS
	rmCount
)

var rmNames = [rmCount]string{
	rmTinyAllocs:       "/gc/heap/tiny/allocs:objects",
	rmAllocsObjects:    "/gc/heap/allocs:objects",
	rmFreesObjects:     "/gc/heap/frees:objects",
	rmAllocsBytes:      "/gc/heap/allocs:bytes",
	rmHeapObjects:      "/gc/heap/objects:objects",
	rmHeapGoal:         "/gc/heap/goal:bytes",
	rmTotal:            "/memory/classes/total:bytes",
	rmHeapObjectsBytes: "/memory/classes/heap/objects:bytes",
	rmHeapUnused:       "/memory/classes/heap/unused:bytes",
	rmHeapReleased:     "/memory/classes/heap/released:bytes",
	rmHeapFree:         "/memory/classes/heap/free:bytes",
	rmHeapStacks:       "/memory/classes/heap/stacks:bytes",
	rmOSStacks:         "/memory/classes/os-stacks:bytes",
	rmMSpanInuse:       "/memory/classes/metadata/mspan/inuse:bytes",
	rmMSpanFree:        "/memory/classes/metadata/mspan/free:bytes",
	rmMCacheInuse:      "/memory/classes/metadata/mcache/inuse:bytes",
	rmMCacheFree:       "/memory/classes/metadata/mcache/free:bytes",
	rmProfBuckets:      "/memory/classes/profiling/buckets:bytes",
	rmMetadataOther:    "/memory/classes/metadata/other:bytes",
	rmOther:            "/memory/classes/other:bytes",
	rmGOGC:             "/gc/gogc:percent",
	rmGOMEMLIMIT:       "/gc/gomemlimit:bytes",
	rmGOMAXPROCS:       "/sched/gomaxprocs:threads",
}

// goState is one reading of the runtime.
type goState struct {
	rm [rmCount]uint64
	gc debug.GCStats
}

// get returns the sample i, or 0 when this Go does not have it.
func (s *goState) get(i int) float64 { return float64(s.rm[i]) }

// sum adds samples up.
func (s *goState) sum(is ...int) float64 {
	var n uint64
	for _, i := range is {
		n += s.rm[i]
	}
	return float64(n)
}

func readGoState() *goState {
	var samples [rmCount]rm.Sample
	for i := range samples {
		samples[i].Name = rmNames[i]
	}
	rm.Read(samples[:])
	s := &goState{}
	for i, sample := range samples {
		if sample.Value.Kind() == rm.KindUint64 {
			s.rm[i] = sample.Value.Uint64()
		}
	}
	s.gc.PauseQuantiles = make([]time.Duration, 5) // minimum, quartiles, maximum
	debug.ReadGCStats(&s.gc)
	return s
}

// goFamilies are the go_* families, sorted by name.
func goFamilies() []family {
	memstat := func(name, typ, help string, value func(s *goState) float64) family {
		name = "go_memstats_" + name
		return family{name: name, typ: typ, help: help, write: func(e *expo) { e.sample(name, value(e.goState())) }}
	}
	return []family{
		{name: "go_gc_duration_seconds", typ: typeSummary,
			help: "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.",
			write: func(e *expo) {
				gc := &e.goState().gc
				for i, q := range gc.PauseQuantiles {
					e.sample("go_gc_duration_seconds", q.Seconds(), "quantile", formatFloat(float64(i)/float64(len(gc.PauseQuantiles)-1)))
				}
				e.sample("go_gc_duration_seconds_sum", gc.PauseTotal.Seconds())
				e.sample("go_gc_duration_seconds_count", float64(gc.NumGC))
			}},
		{name: "go_gc_gogc_percent", typ: typeGauge,
			help:  "Heap size target percentage configured by the user, otherwise 100. This value is set by the GOGC environment variable, and the runtime/debug.SetGCPercent function. Sourced from /gc/gogc:percent.",
			write: func(e *expo) { e.sample("go_gc_gogc_percent", e.goState().get(rmGOGC)) }},
		{name: "go_gc_gomemlimit_bytes", typ: typeGauge,
			help:  "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.",
			write: func(e *expo) { e.sample("go_gc_gomemlimit_bytes", e.goState().get(rmGOMEMLIMIT)) }},
		{name: "go_goroutines", typ: typeGauge, help: "Number of goroutines that currently exist.",
			write: func(e *expo) { e.sample("go_goroutines", float64(runtime.NumGoroutine())) }},
		{name: "go_info", typ: typeGauge, help: "Information about the Go environment.",
			write: func(e *expo) { e.sample("go_info", 1, "version", runtime.Version()) }},
		memstat("alloc_bytes", typeGauge, "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.",
			func(s *goState) float64 { return s.get(rmHeapObjectsBytes) }),
		memstat("alloc_bytes_total", typeCounter, "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.",
			func(s *goState) float64 { return s.get(rmAllocsBytes) }),
		memstat("buck_hash_sys_bytes", typeGauge, "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.",
			func(s *goState) float64 { return s.get(rmProfBuckets) }),
		memstat("frees_total", typeCounter, "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.",
			func(s *goState) float64 { return s.sum(rmFreesObjects, rmTinyAllocs) }),
		memstat("gc_sys_bytes", typeGauge, "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.",
			func(s *goState) float64 { return s.get(rmMetadataOther) }),
		memstat("heap_alloc_bytes", typeGauge, "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.",
			func(s *goState) float64 { return s.get(rmHeapObjectsBytes) }),
		memstat("heap_idle_bytes", typeGauge, "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.",
			func(s *goState) float64 { return s.sum(rmHeapReleased, rmHeapFree) }),
		memstat("heap_inuse_bytes", typeGauge, "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes",
			func(s *goState) float64 { return s.sum(rmHeapObjectsBytes, rmHeapUnused) }),
		memstat("heap_objects", typeGauge, "Number of currently allocated objects. Equals to /gc/heap/objects:objects.",
			func(s *goState) float64 { return s.get(rmHeapObjects) }),
		memstat("heap_released_bytes", typeGauge, "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.",
			func(s *goState) float64 { return s.get(rmHeapReleased) }),
		memstat("heap_sys_bytes", typeGauge, "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.",
			func(s *goState) float64 { return s.sum(rmHeapObjectsBytes, rmHeapUnused, rmHeapReleased, rmHeapFree) }),
		memstat("last_gc_time_seconds", typeGauge, "Number of seconds since 1970 of last garbage collection.",
			func(s *goState) float64 { return float64(s.gc.LastGC.UnixNano()) / 1e9 }),
		memstat("mallocs_total", typeCounter, "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.",
			func(s *goState) float64 { return s.sum(rmAllocsObjects, rmTinyAllocs) }),
		memstat("mcache_inuse_bytes", typeGauge, "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.",
			func(s *goState) float64 { return s.get(rmMCacheInuse) }),
		memstat("mcache_sys_bytes", typeGauge, "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.",
			func(s *goState) float64 { return s.sum(rmMCacheInuse, rmMCacheFree) }),
		memstat("mspan_inuse_bytes", typeGauge, "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.",
			func(s *goState) float64 { return s.get(rmMSpanInuse) }),
		memstat("mspan_sys_bytes", typeGauge, "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.",
			func(s *goState) float64 { return s.sum(rmMSpanInuse, rmMSpanFree) }),
		memstat("next_gc_bytes", typeGauge, "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.",
			func(s *goState) float64 { return s.get(rmHeapGoal) }),
		memstat("other_sys_bytes", typeGauge, "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.",
			func(s *goState) float64 { return s.get(rmOther) }),
		memstat("stack_inuse_bytes", typeGauge, "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.",
			func(s *goState) float64 { return s.get(rmHeapStacks) }),
		memstat("stack_sys_bytes", typeGauge, "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.",
			func(s *goState) float64 { return s.sum(rmHeapStacks, rmOSStacks) }),
		memstat("sys_bytes", typeGauge, "Number of bytes obtained from system. Equals to /memory/classes/total:byte.",
			func(s *goState) float64 { return s.get(rmTotal) }),
		{name: "go_sched_gomaxprocs_threads", typ: typeGauge,
			help:  "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.",
			write: func(e *expo) { e.sample("go_sched_gomaxprocs_threads", e.goState().get(rmGOMAXPROCS)) }},
		{name: "go_threads", typ: typeGauge, help: "Number of OS threads created.",
			write: func(e *expo) {
				n, _ := runtime.ThreadCreateProfile(nil)
				e.sample("go_threads", float64(n))
			}},
	}
}
