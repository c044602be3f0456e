package metrics

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// histogram is a Prometheus histogram of durations in seconds.
type histogram struct {
	bounds []float64 // upper bounds, ascending; +Inf is implied
	mu     sync.Mutex
	counts []uint64 // one per bound, plus +Inf
	sum    float64
	n      uint64
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

// observe records one duration.
func (h *histogram) observe(d time.Duration) {
	v := d.Seconds()
	h.mu.Lock()
	defer h.mu.Unlock()
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i]++
	h.sum += v
	h.n++
}

// appendTo writes the histogram's series (name_bucket, name_sum, name_count) with
// labels (already formatted, "" for none).
func (h *histogram) appendTo(b []byte, name, labels string) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i, bound := range h.bounds {
		cum += h.counts[i]
		b = fmt.Appendf(b, "%s_bucket{%s%sle=\"%s\"} %d\n", name, labels, sep, formatFloat(bound), cum)
	}
	cum += h.counts[len(h.bounds)]
	b = fmt.Appendf(b, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, cum)
	if labels != "" {
		labels = "{" + labels + "}"
	}
	b = fmt.Appendf(b, "%s_sum%s %s\n%s_count%s %d\n", name, labels, formatFloat(h.sum), name, labels, h.n)
	return b
}

func formatFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}
