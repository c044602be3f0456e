package metrics

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// The series raised as things happen: counters and histograms, alone or one per
// combination of label values (a vec). Many goroutines raise them at once, so
// they are atomic; a scrape reads them without stopping anyone.

// maxLabels is the most labels a vec here has.
const maxLabels = 2

// labelValues are a vec child's label values, in the order of the vec's names.
type labelValues [maxLabels]string

// labelNames are a vec's label names and the order they are written in (sorted
// by name, as the Go client wrote them).
type labelNames struct {
	names  []string
	sorted []int // indexes into names, by name
}

func newLabelNames(names ...string) labelNames {
	if len(names) > maxLabels {
		panic("metrics: a vec with more than maxLabels labels")
	}
	sorted := make([]int, len(names))
	for i := range sorted {
		sorted[i] = i
	}
	slices.SortFunc(sorted, func(a, b int) int { return cmp.Compare(names[a], names[b]) })
	return labelNames{names: names, sorted: sorted}
}

// key turns values, given in the order of the names, into a child's key.
func (n labelNames) key(values []string) labelValues {
	if len(values) != len(n.names) {
		panic("metrics: wrong number of label values")
	}
	var k labelValues
	copy(k[:], values)
	return k
}

// pairs are k's labels as name/value pairs, sorted by name.
func (n labelNames) pairs(k labelValues) []string {
	out := make([]string, 0, 2*len(n.names))
	for _, i := range n.sorted {
		out = append(out, n.names[i], k[i])
	}
	return out
}

// compare orders two children by their label values, taken in the order of the
// sorted names.
func (n labelNames) compare(a, b labelValues) int {
	for _, i := range n.sorted {
		if c := cmp.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// counter counts up by one.
type counter struct{ n atomic.Uint64 }

func (c *counter) inc()           { c.n.Add(1) }
func (c *counter) value() float64 { return float64(c.n.Load()) }

// vec is a series per combination of label values, made at first use.
type vec[T any] struct {
	labels   labelNames
	newChild func() *T
	mu       sync.RWMutex
	children map[labelValues]*T
}

func newVec[T any](newChild func() *T, names ...string) vec[T] {
	return vec[T]{labels: newLabelNames(names...), newChild: newChild, children: map[labelValues]*T{}}
}

// with returns the series of values (in the order of the vec's names).
func (v *vec[T]) with(values ...string) *T {
	k := v.labels.key(values)
	v.mu.RLock()
	c := v.children[k]
	v.mu.RUnlock()
	if c != nil {
		return c
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if c = v.children[k]; c == nil {
		c = v.newChild()
		v.children[k] = c
	}
	return c
}

// sorted returns the vec's children, ordered by their label values.
func (v *vec[T]) sorted() []child[T] {
	v.mu.RLock()
	out := make([]child[T], 0, len(v.children))
	for k, c := range v.children {
		out = append(out, child[T]{k, c})
	}
	v.mu.RUnlock()
	slices.SortFunc(out, func(a, b child[T]) int { return v.labels.compare(a.key, b.key) })
	return out
}

// counterVec is a counter per combination of label values.
type counterVec struct{ vec[counter] }

func newCounterVec(names ...string) *counterVec {
	return &counterVec{newVec(func() *counter { return &counter{} }, names...)}
}

// child is a vec's child and its label values.
type child[T any] struct {
	key labelValues
	val *T
}

func (v *counterVec) write(e *expo, name string) {
	for _, c := range v.sorted() {
		e.sample(name, c.val.value(), v.labels.pairs(c.key)...)
	}
}

// histogram counts observations in buckets of upper bounds and sums them.
type histogram struct {
	bounds []float64
	le     []string        // the bounds as label values, +Inf last
	counts []atomic.Uint64 // observations per bucket (not cumulative); the last: above every bound
	sum    atomic.Uint64   // the sum's float64 bits
}

func newHistogram(bounds []float64) *histogram {
	if !slices.IsSorted(bounds) {
		panic("metrics: histogram bounds not sorted")
	}
	le := make([]string, 0, len(bounds)+1)
	for _, b := range bounds {
		le = append(le, formatFloat(b))
	}
	return &histogram{bounds: bounds, le: append(le, "+Inf"), counts: make([]atomic.Uint64, len(bounds)+1)}
}

// observe records v in the first bucket whose bound is at least v.
func (h *histogram) observe(v float64) {
	h.counts[sort.SearchFloat64s(h.bounds, v)].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// write writes the cumulative buckets, the sum and the count. The count is the
// last cumulative bucket, so the two always agree; an observation made during
// the scrape may be in the sum and not yet in the buckets, or the other way round.
func (h *histogram) write(e *expo, name string, labels []string) {
	var cumulative uint64
	sum := math.Float64frombits(h.sum.Load())
	n := len(labels)
	withLE := append(labels[:n:n], "le", "") // the le label comes last, as the Go client wrote it
	for i := range h.counts {
		cumulative += h.counts[i].Load()
		withLE[n+1] = h.le[i]
		e.sample(name+"_bucket", float64(cumulative), withLE...)
	}
	e.sample(name+"_sum", sum, labels...)
	e.sample(name+"_count", float64(cumulative), labels...)
}

// histogramVec is a histogram per combination of label values.
type histogramVec struct{ vec[histogram] }

func newHistogramVec(bounds []float64, names ...string) *histogramVec {
	return &histogramVec{newVec(func() *histogram { return newHistogram(bounds) }, names...)}
}

func (v *histogramVec) write(e *expo, name string) {
	for _, c := range v.sorted() {
		c.val.write(e, name, v.labels.pairs(c.key))
	}
}
