// Package metrics keeps grconnect's figures for Prometheus: counters the process
// raises as things happen, and figures read from the database in the background
// (every Interval), so a scrape only formats what is already in memory and costs
// the same at 300 connections or 300,000.
package metrics

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
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

	responses [6]atomic.Int64 // HTTP responses by status class: index 1 = 1xx … 5 = 5xx

	refreshMu  sync.Mutex
	refreshes  map[refreshKey]uint64 // refresh calls by outcome and failure class
	refreshDur *histogram            // token endpoint call durations
	commitWait *histogram            // received token pair → stored

	callMu   sync.Mutex
	calls    map[callKey]uint64    // calls to GetResponse by kind and status class
	callDur  map[string]*histogram // their durations by kind
	proxyMu  sync.Mutex
	proxied  map[int]uint64 // proxy answers by status
	backupMu sync.Mutex
	backup   backupFigures

	mu          sync.RWMutex
	totals      []models.ConnectionTotal
	outbox      models.OutboxFigures
	backlog     models.BacklogFigures
	apps        []models.AppState
	collectedAt time.Time
	collectErr  error
	collecting  sync.Mutex
}

// New returns a registry reading its database figures from source.
func New(source Source, log *slog.Logger) *Registry {
	return &Registry{source: source, log: log, Interval: DefaultInterval, Margin: 10 * time.Minute, DueGrace: time.Minute,
		refreshes:  map[refreshKey]uint64{},
		calls:      map[callKey]uint64{},
		callDur:    map[string]*histogram{},
		proxied:    map[int]uint64{},
		refreshDur: newHistogram(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
		commitWait: newHistogram(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300),
	}
}

type refreshKey struct{ outcome, class string }

type callKey struct{ kind, class string }

// callBounds are the buckets of GetResponse call durations, in seconds.
var callBounds = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// ObserveCall counts one call to GetResponse: kind is "token" (the token
// endpoint: exchange, refresh, credentials check), "api" (grconnect's own API
// calls: accounts, test calls) or "proxy" (calls relayed for the operator's
// backend); status is the HTTP status, 0 when no answer came (network error,
// timeout); took is the time until the answer's headers.
func (r *Registry) ObserveCall(kind string, status int, took time.Duration) {
	class := statusClass(status)
	r.callMu.Lock()
	r.calls[callKey{kind, class}]++
	h := r.callDur[kind]
	if h == nil {
		h = newHistogram(callBounds...)
		r.callDur[kind] = h
	}
	r.callMu.Unlock()
	h.observe(took)
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
		return fmt.Sprintf("%dxx", status/100)
	}
	return "error"
}

// ObserveProxy counts one answer of the API's proxy route by its status (what the
// operator's backend got: GetResponse's status, or grconnect's own refusal).
func (r *Registry) ObserveProxy(status int) {
	if status < 100 || status > 599 {
		return
	}
	r.proxyMu.Lock()
	r.proxied[status]++
	r.proxyMu.Unlock()
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
	r.mu.Lock()
	defer r.mu.Unlock()
	r.collectErr = err
	if err != nil {
		return err
	}
	r.totals, r.outbox, r.backlog, r.apps, r.collectedAt = totals, outbox, backlog, apps, now
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
	outbox, backlog, apps := r.outbox, r.backlog, r.apps // never changed in place
	collected := r.collectedAt
	r.mu.RUnlock()
	b := make([]byte, 0, 8192)
	bi := buildinfo.Get()
	b = fmt.Appendf(b, "# HELP grconnect_build_info The running grconnect's version, commit and Go version.\n# TYPE grconnect_build_info gauge\n")
	b = fmt.Appendf(b, "grconnect_build_info{version=%q,commit=%q,goversion=%q} 1\n", bi.Version, bi.ShortCommit(), bi.GoVersion)
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
	b = r.appendCalls(b)
	b = r.appendProxy(b)
	b = appendFigures(b, outbox, backlog, apps, collected)
	b = r.appendBackups(b)
	if !collected.IsZero() {
		b = fmt.Appendf(b, "# HELP grconnect_figures_collected_timestamp_seconds When the database figures above were read.\n# TYPE grconnect_figures_collected_timestamp_seconds gauge\n")
		b = fmt.Appendf(b, "grconnect_figures_collected_timestamp_seconds %d\n", collected.Unix())
	}
	_, err := w.Write(b)
	return err
}

// appendCalls writes the calls to GetResponse by kind and status class, and their
// durations by kind.
func (r *Registry) appendCalls(b []byte) []byte {
	r.callMu.Lock()
	keys := slices.Collect(maps.Keys(r.calls))
	counts := maps.Clone(r.calls)
	kinds := slices.Sorted(maps.Keys(r.callDur))
	hists := maps.Clone(r.callDur)
	r.callMu.Unlock()
	slices.SortFunc(keys, func(a, b callKey) int { return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.class, b.class)) })
	b = fmt.Appendf(b, "# HELP grconnect_getresponse_requests_total Calls to GetResponse by kind (token, api, proxy) and status class (2xx, 3xx, 4xx, 429, 5xx; error: no answer).\n# TYPE grconnect_getresponse_requests_total counter\n")
	for _, k := range keys {
		b = fmt.Appendf(b, "grconnect_getresponse_requests_total{kind=%q,class=%q} %d\n", k.kind, k.class, counts[k])
	}
	b = fmt.Appendf(b, "# HELP grconnect_getresponse_request_duration_seconds Time until GetResponse's answer (its headers), by kind of call.\n# TYPE grconnect_getresponse_request_duration_seconds histogram\n")
	for _, k := range kinds {
		b = hists[k].appendTo(b, "grconnect_getresponse_request_duration_seconds", fmt.Sprintf("kind=%q", k))
	}
	return b
}

// appendProxy writes the proxy route's answers by status.
func (r *Registry) appendProxy(b []byte) []byte {
	r.proxyMu.Lock()
	counts := maps.Clone(r.proxied)
	r.proxyMu.Unlock()
	b = fmt.Appendf(b, "# HELP grconnect_proxy_requests_total Answers of the API's proxy route by HTTP status.\n# TYPE grconnect_proxy_requests_total counter\n")
	for _, st := range slices.Sorted(maps.Keys(counts)) {
		b = fmt.Appendf(b, "grconnect_proxy_requests_total{status=\"%d\"} %d\n", st, counts[st])
	}
	return b
}

// appendFigures writes the figures read from the database: the webhook outbox,
// the refresher's backlog and each app's health.
func appendFigures(b []byte, outbox models.OutboxFigures, backlog models.BacklogFigures, apps []models.AppState, collected time.Time) []byte {
	if collected.IsZero() {
		return b
	}
	b = fmt.Appendf(b, "# HELP grconnect_webhook_outbox_pending Webhook deliveries waiting to be sent (or retried).\n# TYPE grconnect_webhook_outbox_pending gauge\n")
	b = fmt.Appendf(b, "grconnect_webhook_outbox_pending %d\n", outbox.Pending)
	b = fmt.Appendf(b, "# HELP grconnect_webhook_outbox_oldest_age_seconds Age of the oldest webhook delivery still waiting (0 when none).\n# TYPE grconnect_webhook_outbox_oldest_age_seconds gauge\n")
	b = fmt.Appendf(b, "grconnect_webhook_outbox_oldest_age_seconds %s\n", ageAt(outbox.Oldest, collected))
	b = fmt.Appendf(b, "# HELP grconnect_connections_due_unrefreshed Connections due for a refresh for longer than a grace period and not refreshed yet (the refresher falling behind); paused apps' connections are not counted.\n# TYPE grconnect_connections_due_unrefreshed gauge\n")
	b = fmt.Appendf(b, "grconnect_connections_due_unrefreshed %d\n", backlog.Overdue)
	b = fmt.Appendf(b, "# HELP grconnect_connections_due_unrefreshed_oldest_seconds How long the longest-waiting of them has been due (0 when none).\n# TYPE grconnect_connections_due_unrefreshed_oldest_seconds gauge\n")
	b = fmt.Appendf(b, "grconnect_connections_due_unrefreshed_oldest_seconds %s\n", ageAt(backlog.Since, collected))
	b = fmt.Appendf(b, "# HELP grconnect_app_health Each app's health: 1 for its current state (ok, credentials_rejected, misconfigured, refused), 0 for the others.\n# TYPE grconnect_app_health gauge\n")
	for _, a := range apps {
		current := a.Health
		if current == "" {
			current = models.AppHealthy
		}
		for _, h := range models.AppHealths {
			v := 0
			if h == current {
				v = 1
			}
			b = fmt.Appendf(b, "grconnect_app_health{app=%q,name=%q,health=%q} %d\n", a.ID, a.Name, h, v)
		}
	}
	return b
}

// ageAt is how long before at t was, in whole seconds ("0" for none).
func ageAt(t *time.Time, at time.Time) string {
	if t == nil || t.IsZero() || !t.Before(at) {
		return "0"
	}
	return fmt.Sprintf("%.0f", at.Sub(*t).Seconds())
}

// appendBackups writes the scheduled backups' figures, once one ran.
func (r *Registry) appendBackups(b []byte) []byte {
	r.backupMu.Lock()
	f := r.backup
	r.backupMu.Unlock()
	if f.ok+f.failures == 0 && f.last.IsZero() {
		return b
	}
	b = fmt.Appendf(b, "# HELP grconnect_backups_total Scheduled backups by outcome.\n# TYPE grconnect_backups_total counter\n")
	b = fmt.Appendf(b, "grconnect_backups_total{outcome=\"succeeded\"} %d\ngrconnect_backups_total{outcome=\"failed\"} %d\n", f.ok, f.failures)
	if !f.last.IsZero() {
		b = fmt.Appendf(b, "# HELP grconnect_backup_last_success_timestamp_seconds When the last scheduled backup succeeded.\n# TYPE grconnect_backup_last_success_timestamp_seconds gauge\n")
		b = fmt.Appendf(b, "grconnect_backup_last_success_timestamp_seconds %d\n", f.last.Unix())
		b = fmt.Appendf(b, "# HELP grconnect_backup_last_size_bytes Size of the last successful scheduled backup.\n# TYPE grconnect_backup_last_size_bytes gauge\n")
		b = fmt.Appendf(b, "grconnect_backup_last_size_bytes %d\n", f.size)
		b = fmt.Appendf(b, "# HELP grconnect_backup_last_duration_seconds How long the last successful scheduled backup took.\n# TYPE grconnect_backup_last_duration_seconds gauge\n")
		b = fmt.Appendf(b, "grconnect_backup_last_duration_seconds %s\n", formatFloat(f.took.Seconds()))
	}
	return b
}
