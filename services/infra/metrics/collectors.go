package metrics

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grconnect/grconnect/models"
)

// The series read from the database (figuresCollector) and those of the scheduled
// backups (backupsCollector), made at each scrape from what is in memory.
var (
	connectionsDesc = prometheus.NewDesc("grconnect_connections", "Connections by status.", []string{"status"}, nil)
	appConnsDesc    = prometheus.NewDesc("grconnect_app_connections", "Connections by app and status.", []string{"app", "status"}, nil)
	outboxDesc      = prometheus.NewDesc("grconnect_webhook_outbox_pending", "Webhook deliveries waiting to be sent (or retried).", nil, nil)
	outboxAgeDesc   = prometheus.NewDesc("grconnect_webhook_outbox_oldest_age_seconds", "Age of the oldest webhook delivery still waiting (0 when none).", nil, nil)
	overdueDesc     = prometheus.NewDesc("grconnect_connections_due_unrefreshed",
		"Connections due for a refresh for longer than a grace period and not refreshed yet (the refresher falling behind); paused apps' connections are not counted.", nil, nil)
	overdueAgeDesc = prometheus.NewDesc("grconnect_connections_due_unrefreshed_oldest_seconds", "How long the longest-waiting of them has been due (0 when none).", nil, nil)
	appHealthDesc  = prometheus.NewDesc("grconnect_app_health",
		"Each app's health: 1 for its current state (ok, credentials_rejected, misconfigured, refused), 0 for the others.", []string{"app", "name", "health"}, nil)
	collectedDesc = prometheus.NewDesc("grconnect_figures_collected_timestamp_seconds", "When the database figures above were read.", nil, nil)

	backupsDesc    = prometheus.NewDesc("grconnect_backups_total", "Scheduled backups by outcome.", []string{"outcome"}, nil)
	backupLastDesc = prometheus.NewDesc("grconnect_backup_last_success_timestamp_seconds", "When the last scheduled backup succeeded.", nil, nil)
	backupSizeDesc = prometheus.NewDesc("grconnect_backup_last_size_bytes", "Size of the last successful scheduled backup.", nil, nil)
	backupTookDesc = prometheus.NewDesc("grconnect_backup_last_duration_seconds", "How long the last successful scheduled backup took.", nil, nil)
)

// figuresCollector turns the last database read into series.
type figuresCollector struct{ r *Registry }

func (figuresCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{connectionsDesc, appConnsDesc, outboxDesc, outboxAgeDesc, overdueDesc, overdueAgeDesc, appHealthDesc, collectedDesc} {
		ch <- d
	}
}

func (c figuresCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	r.mu.RLock()
	totals := r.totals // never changed in place
	outbox, backlog, apps, collected := r.outbox, r.backlog, r.apps, r.collectedAt
	r.mu.RUnlock()
	byStatus := map[models.Status]int64{}
	for _, t := range totals {
		byStatus[t.Status] += t.N
		ch <- prometheus.MustNewConstMetric(appConnsDesc, prometheus.GaugeValue, float64(t.N), validUTF8(t.AppID), string(t.Status))
	}
	for _, st := range slices.Sorted(slices.Values(models.Statuses)) {
		ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(byStatus[st]), string(st))
	}
	if collected.IsZero() {
		return
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(outboxDesc, float64(outbox.Pending))
	gauge(outboxAgeDesc, ageAt(outbox.Oldest, collected))
	gauge(overdueDesc, float64(backlog.Overdue))
	gauge(overdueAgeDesc, ageAt(backlog.Since, collected))
	for _, a := range apps {
		current := a.Health
		if current == "" {
			current = models.AppHealthy
		}
		for _, h := range models.AppHealths {
			v := 0.0
			if h == current {
				v = 1
			}
			// The app's name is the operator's text: the client escapes it.
			ch <- prometheus.MustNewConstMetric(appHealthDesc, prometheus.GaugeValue, v, validUTF8(a.ID), validUTF8(a.Name), string(h))
		}
	}
	gauge(collectedDesc, float64(collected.Unix()))
}

// backupsCollector turns the scheduled backups' outcomes into series, once one ran
// (or one was found at start).
type backupsCollector struct{ r *Registry }

func (backupsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{backupsDesc, backupLastDesc, backupSizeDesc, backupTookDesc} {
		ch <- d
	}
}

func (c backupsCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.backupMu.Lock()
	f := c.r.backup
	c.r.backupMu.Unlock()
	if f.ok+f.failures == 0 && f.last.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(backupsDesc, prometheus.CounterValue, float64(f.ok), "succeeded")
	ch <- prometheus.MustNewConstMetric(backupsDesc, prometheus.CounterValue, float64(f.failures), "failed")
	if f.last.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(backupLastDesc, prometheus.GaugeValue, float64(f.last.Unix()))
	ch <- prometheus.MustNewConstMetric(backupSizeDesc, prometheus.GaugeValue, float64(f.size))
	ch <- prometheus.MustNewConstMetric(backupTookDesc, prometheus.GaugeValue, f.took.Seconds())
}

// ageAt is how long before at t was, in whole seconds (0 for none).
func ageAt(t *time.Time, at time.Time) float64 {
	if t == nil || t.IsZero() || !t.Before(at) {
		return 0
	}
	return math.Round(at.Sub(*t).Seconds())
}

// validUTF8 makes a label value valid UTF-8, which the Prometheus client requires
// (a name stored before names were checked could hold anything).
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
