// Package metrics keeps grconnect's figures for Prometheus and writes them in its
// text exposition format: counters and histograms the process raises as things
// happen, figures read from the database in the background (every Interval), and
// the Go runtime's and the process's standard series (go_*, process_*), so a
// scrape only formats what is already in memory and costs the same at 300
// connections or 300,000.
//
// It writes the format itself rather than through the Prometheus Go client: the
// client and the protobuf package it needs cost every grconnect about 1.5 MB of
// resident memory from start (their package initialisation: idle RSS 24.8 MB
// with them, 23.3 MB without), for the few series here. The names, help texts,
// types, labels and values are the client's.
package metrics

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/buildinfo"
)

// DefaultInterval is how often the database figures are read again.
const DefaultInterval = 15 * time.Second

// Source is where the database figures come from.
type Source interface {
	ConnectionTotals(ctx context.Context) ([]models.ConnectionTotal, error)
	OutboxTotals(ctx context.Context) (models.OutboxFigures, error)
	RefreshBacklog(ctx context.Context, now time.Time, margin, grace time.Duration) (models.BacklogFigures, error)
	AppStates(ctx context.Context) ([]models.AppState, error)
}

// Registry holds the figures. It is safe for concurrent use.
type Registry struct {
	source Source
	log    *slog.Logger
	// Interval is how often Run reads the database figures.
	Interval time.Duration
	// Margin is the refresh margin, and DueGrace how long a due connection may
	// wait before it counts as overdue (the refresher falling behind).
	Margin, DueGrace time.Duration

	families   []family   // every family, sorted by name
	responses  [6]counter // HTTP responses by status class: index 1 = 1xx … 5 = 5xx
	refreshes  *counterVec
	refreshDur *histogram
	commitWait *histogram
	calls      *counterVec
	callDur    *histogramVec
	proxied    *counterVec

	backupMu sync.Mutex
	backup   backupFigures

	mu          sync.RWMutex
	totals      []models.ConnectionTotal
	outbox      models.OutboxFigures
	backlog     models.BacklogFigures
	apps        []models.AppState
	collectedAt time.Time
	collecting  sync.Mutex
}

// callBounds are the buckets of GetResponse call durations, in seconds.
var callBounds = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// New returns a registry reading its database figures from source.
func New(source Source, log *slog.Logger) *Registry {
	r := &Registry{source: source, log: log, Interval: DefaultInterval, Margin: 10 * time.Minute, DueGrace: time.Minute,
		refreshes:  newCounterVec("outcome", "class"),
		refreshDur: newHistogram([]float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
		commitWait: newHistogram([]float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300}),
		calls:      newCounterVec("kind", "class"),
		callDur:    newHistogramVec(callBounds, "kind"),
		proxied:    newCounterVec("status"),
	}
	bi := buildinfo.Get()
	build := []string{"commit", validUTF8(bi.ShortCommit()), "goversion", bi.GoVersion, "version", validUTF8(bi.Version)}
	r.families = slices.Concat(goFamilies(), []family{
		{name: "grconnect_build_info", typ: typeGauge, help: "The running grconnect's version, commit and Go version.",
			write: func(e *expo) { e.sample("grconnect_build_info", 1, build...) }},
		{name: "grconnect_http_responses_total", typ: typeCounter, help: "HTTP responses by status class.",
			write: func(e *expo) {
				for i := 1; i <= 5; i++ {
					e.sample("grconnect_http_responses_total", r.responses[i].value(), "class", statusClasses[i])
				}
			}},
		{name: "grconnect_refreshes_total", typ: typeCounter,
			help:  "Refresh calls to GetResponse's token endpoint by outcome and failure class (who must act).",
			write: func(e *expo) { r.refreshes.write(e, "grconnect_refreshes_total") }},
		{name: "grconnect_refresh_duration_seconds", typ: typeHistogram, help: "Duration of refresh calls to GetResponse's token endpoint.",
			write: func(e *expo) { r.refreshDur.write(e, "grconnect_refresh_duration_seconds", nil) }},
		{name: "grconnect_token_pair_store_seconds", typ: typeHistogram,
			help:  "Time from GetResponse's answer with a new token pair to the pair being stored.",
			write: func(e *expo) { r.commitWait.write(e, "grconnect_token_pair_store_seconds", nil) }},
		{name: "grconnect_getresponse_requests_total", typ: typeCounter,
			help:  "Calls to GetResponse by kind (token, api, proxy) and status class (2xx, 3xx, 4xx, 429, 5xx; error: no answer).",
			write: func(e *expo) { r.calls.write(e, "grconnect_getresponse_requests_total") }},
		{name: "grconnect_getresponse_request_duration_seconds", typ: typeHistogram,
			help:  "Time until GetResponse's answer (its headers), by kind of call.",
			write: func(e *expo) { r.callDur.write(e, "grconnect_getresponse_request_duration_seconds") }},
		{name: "grconnect_proxy_requests_total", typ: typeCounter, help: "Answers of the API's proxy route by HTTP status.",
			write: func(e *expo) { r.proxied.write(e, "grconnect_proxy_requests_total") }},
	}, figuresFamilies(), backupsFamilies(), processFamilies())
	slices.SortFunc(r.families, func(a, b family) int { return cmp.Compare(a.name, b.name) })
	return r
}

// statusClasses name the HTTP status classes by their first digit.
var statusClasses = [6]string{1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}

// ObserveCall counts one call to GetResponse: kind is "token" (the token
// endpoint: exchange, refresh, credentials check), "api" (grconnect's own API
// calls: accounts, test calls) or "proxy" (calls relayed for the operator's
// backend); status is the HTTP status, 0 when no answer came (network error,
// timeout); took is the time until the answer's headers.
func (r *Registry) ObserveCall(kind string, status int, took time.Duration) {
	r.calls.with(kind, statusClass(status)).inc()
	r.callDur.with(kind).observe(took.Seconds())
}

// statusClass names an HTTP status's class; 429 (GetResponse's rate limits) is a
// class of its own, and "error" means no answer.
func statusClass(status int) string {
	switch {
	case status == 0:
		return "error"
	case status == 429:
		return "429"
	case status >= 100 && status < 600:
		return statusClasses[status/100]
	}
	return "error"
}

// ObserveProxy counts one answer of the API's proxy route by its status (what the
// operator's backend got: GetResponse's status, or grconnect's own refusal).
func (r *Registry) ObserveProxy(status int) {
	if status < 100 || status > 599 {
		return
	}
	r.proxied.with(strconv.Itoa(status)).inc()
}

// backupFigures are the scheduled backups' outcomes.
type backupFigures struct {
	last     time.Time // the last successful backup
	size     int64
	took     time.Duration
	failures uint64
	ok       uint64
}

// KnownBackup records the newest backup found at start, so that the time since
// the last backup survives a restart.
func (r *Registry) KnownBackup(at time.Time, size int64) {
	r.backupMu.Lock()
	defer r.backupMu.Unlock()
	if at.After(r.backup.last) {
		r.backup.last, r.backup.size = at, size
	}
}

// ObserveBackup records a scheduled backup: its size and duration, or its failure.
func (r *Registry) ObserveBackup(at time.Time, size int64, took time.Duration, err error) {
	r.backupMu.Lock()
	defer r.backupMu.Unlock()
	if err != nil {
		r.backup.failures++
		return
	}
	r.backup.ok++
	r.backup.last, r.backup.size, r.backup.took = at, size, took
}

// ObserveRefresh counts one refresh call by outcome ("succeeded", "failed") and
// failure class (who must act: "customer", "operator", "wait"), and its duration.
func (r *Registry) ObserveRefresh(outcome, class string, took time.Duration) {
	r.refreshes.with(outcome, class).inc()
	r.refreshDur.observe(took.Seconds())
}

// ObserveCommit records how long a received token pair waited to be stored.
func (r *Registry) ObserveCommit(window time.Duration) { r.commitWait.observe(window.Seconds()) }

// ObserveResponse counts one HTTP response by its status class.
func (r *Registry) ObserveResponse(status int) {
	if c := status / 100; c >= 1 && c <= 5 {
		r.responses[c].inc()
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
	return r.collect(ctx)
}

// CollectFirst reads the database figures unless they have been read: of many
// scrapes before the first read (a server whose reader has not run yet), one
// reads and the others wait for its figures.
func (r *Registry) CollectFirst(ctx context.Context) error {
	r.collecting.Lock()
	defer r.collecting.Unlock()
	if !r.Collected().IsZero() {
		return nil
	}
	return r.collect(ctx)
}

// collect reads the database figures; the caller holds collecting.
func (r *Registry) collect(ctx context.Context) error {
	now := time.Now()
	totals, err := r.source.ConnectionTotals(ctx)
	var outbox models.OutboxFigures
	if err == nil {
		outbox, err = r.source.OutboxTotals(ctx)
	}
	var backlog models.BacklogFigures
	if err == nil {
		backlog, err = r.source.RefreshBacklog(ctx, now, r.Margin, r.DueGrace)
	}
	var apps []models.AppState
	if err == nil {
		apps, err = r.source.AppStates(ctx)
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.totals, r.outbox, r.backlog, r.apps, r.collectedAt = totals, outbox, backlog, apps, now
	return nil
}

// Collected reports when the database figures were last read (zero: never).
func (r *Registry) Collected() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.collectedAt
}

// WritePrometheus writes every series in the Prometheus text format (0.0.4, see
// ContentType), the families sorted by name, each family's samples by their
// label values.
func (r *Registry) WritePrometheus(w io.Writer) error {
	e := &expo{b: make([]byte, 0, 16<<10), figures: r.snapshot()}
	for i := range r.families {
		e.begin(&r.families[i])
		r.families[i].write(e)
	}
	_, err := w.Write(e.b)
	return err
}
