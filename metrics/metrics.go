// Package metrics keeps grconnect's figures for Prometheus: counters the process
// raises as things happen, and figures read from the database in the background
// (every Interval), so a scrape only formats what is already in memory and costs
// the same at 300 connections or 300,000.
package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grconnect/grconnect/models"
)

// DefaultInterval is how often the database figures are read again.
const DefaultInterval = 15 * time.Second

// Source is where the database figures come from.
type Source interface {
	ConnectionTotals(ctx context.Context) ([]models.ConnectionTotal, error)
}

// Registry holds the figures. It is safe for concurrent use.
type Registry struct {
	source Source
	log    *slog.Logger
	// Interval is how often Run reads the database figures.
	Interval time.Duration

	responses [6]atomic.Int64 // HTTP responses by status class: index 1 = 1xx … 5 = 5xx

	refreshMu  sync.Mutex
	refreshes  map[refreshKey]uint64 // refresh calls by outcome and failure class
	refreshDur *histogram            // token endpoint call durations
	commitWait *histogram            // received token pair → stored

	mu          sync.RWMutex
	totals      []models.ConnectionTotal
	collectedAt time.Time
	collectErr  error
	collecting  sync.Mutex
}

// New returns a registry reading its database figures from source.
func New(source Source, log *slog.Logger) *Registry {
	return &Registry{source: source, log: log, Interval: DefaultInterval,
		refreshes:  map[refreshKey]uint64{},
		refreshDur: newHistogram(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
		commitWait: newHistogram(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300),
	}
}

type refreshKey struct{ outcome, class string }

// ObserveRefresh counts one refresh call by outcome ("succeeded", "failed") and
// failure class (who must act: "customer", "operator", "wait"), and its duration.
func (r *Registry) ObserveRefresh(outcome, class string, took time.Duration) {
	r.refreshMu.Lock()
	r.refreshes[refreshKey{outcome, class}]++
	r.refreshMu.Unlock()
	r.refreshDur.observe(took)
}

// ObserveCommit records how long a received token pair waited to be stored.
func (r *Registry) ObserveCommit(window time.Duration) { r.commitWait.observe(window) }

// ObserveResponse counts one HTTP response by its status class.
func (r *Registry) ObserveResponse(status int) {
	if c := status / 100; c >= 1 && c <= 5 {
		r.responses[c].Add(1)
	}
}

// Run reads the database figures now and then every Interval (±10 %) until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	for {
		if err := r.Collect(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("metrics: reading figures failed", "error", err)
		}
		wait := time.Duration(float64(r.Interval) * (0.9 + 0.2*rand.Float64()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Collect reads the database figures once.
func (r *Registry) Collect(ctx context.Context) error {
	r.collecting.Lock()
	defer r.collecting.Unlock()
	totals, err := r.source.ConnectionTotals(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collectErr = err
	if err != nil {
		return err
	}
	r.totals, r.collectedAt = totals, time.Now()
	return nil
}

// Collected reports when the database figures were last read (zero: never).
func (r *Registry) Collected() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.collectedAt
}

// ByStatus returns the number of connections in each state, from the last read.
func (r *Registry) ByStatus() map[models.Status]int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[models.Status]int64{}
	for _, t := range r.totals {
		out[t.Status] += t.N
	}
	return out
}

// WritePrometheus writes every series in the Prometheus text format (0.0.4).
func (r *Registry) WritePrometheus(w io.Writer) error {
	r.mu.RLock()
	totals := slices.Clone(r.totals)
	collected := r.collectedAt
	r.mu.RUnlock()
	var b []byte
	b = fmt.Appendf(b, "# HELP grconnect_http_responses_total HTTP responses by status class.\n# TYPE grconnect_http_responses_total counter\n")
	for i := 1; i <= 5; i++ {
		b = fmt.Appendf(b, "grconnect_http_responses_total{class=\"%dxx\"} %d\n", i, r.responses[i].Load())
	}
	byStatus := map[models.Status]int64{}
	for _, t := range totals {
		byStatus[t.Status] += t.N
	}
	b = fmt.Appendf(b, "# HELP grconnect_connections Connections by status.\n# TYPE grconnect_connections gauge\n")
	for _, st := range slices.Sorted(slices.Values(models.Statuses)) {
		b = fmt.Appendf(b, "grconnect_connections{status=%q} %d\n", st, byStatus[st])
	}
	sort.Slice(totals, func(i, j int) bool {
		if totals[i].AppID != totals[j].AppID {
			return totals[i].AppID < totals[j].AppID
		}
		return totals[i].Status < totals[j].Status
	})
	b = fmt.Appendf(b, "# HELP grconnect_app_connections Connections by app and status.\n# TYPE grconnect_app_connections gauge\n")
	for _, t := range totals {
		b = fmt.Appendf(b, "grconnect_app_connections{app=%q,status=%q} %d\n", t.AppID, t.Status, t.N)
	}
	r.refreshMu.Lock()
	keys := make([]refreshKey, 0, len(r.refreshes))
	for k := range r.refreshes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].outcome != keys[j].outcome {
			return keys[i].outcome < keys[j].outcome
		}
		return keys[i].class < keys[j].class
	})
	b = fmt.Appendf(b, "# HELP grconnect_refreshes_total Refresh calls to GetResponse's token endpoint by outcome and failure class (who must act).\n# TYPE grconnect_refreshes_total counter\n")
	for _, k := range keys {
		b = fmt.Appendf(b, "grconnect_refreshes_total{outcome=%q,class=%q} %d\n", k.outcome, k.class, r.refreshes[k])
	}
	r.refreshMu.Unlock()
	b = fmt.Appendf(b, "# HELP grconnect_refresh_duration_seconds Duration of refresh calls to GetResponse's token endpoint.\n# TYPE grconnect_refresh_duration_seconds histogram\n")
	b = r.refreshDur.appendTo(b, "grconnect_refresh_duration_seconds", "")
	b = fmt.Appendf(b, "# HELP grconnect_token_pair_store_seconds Time from GetResponse's answer with a new token pair to the pair being stored.\n# TYPE grconnect_token_pair_store_seconds histogram\n")
	b = r.commitWait.appendTo(b, "grconnect_token_pair_store_seconds", "")
	if !collected.IsZero() {
		b = fmt.Appendf(b, "# HELP grconnect_figures_collected_timestamp_seconds When the database figures above were read.\n# TYPE grconnect_figures_collected_timestamp_seconds gauge\n")
		b = fmt.Appendf(b, "grconnect_figures_collected_timestamp_seconds %d\n", collected.Unix())
	}
	_, err := w.Write(b)
	return err
}
