package metrics

import (
	"fmt"
	"math"
	"strconv"
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
// labels (already formatted, "" for none). Plain appends, not fmt: a scrape writes
// a dozen lines per histogram.
func (h *histogram) appendTo(b []byte, name, labels string) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i := 0; i <= len(h.bounds); i++ {
		cum += h.counts[i]
		b = append(b, name...)
		b = append(b, "_bucket{"...)
		b = append(b, labels...)
		b = append(b, sep...)
		b = append(b, `le="`...)
		if i < len(h.bounds) {
			b = append(b, formatFloat(h.bounds[i])...)
		} else {
			b = append(b, "+Inf"...)
		}
		b = append(b, `"} `...)
		b = strconv.AppendUint(b, cum, 10)
		b = append(b, '\n')
	}
	if labels != "" {
		labels = "{" + labels + "}"
	}
	b = append(append(append(b, name...), "_sum"...), labels...)
	b = append(append(b, ' '), formatFloat(h.sum)...)
	b = append(append(append(b, '\n'), name...), "_count"...)
	b = append(append(b, labels...), ' ')
	b = strconv.AppendUint(b, h.n, 10)
	return append(b, '\n')
}

func formatFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}
