package metrics

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/grconnect/grconnect/models"
)

// The series read from the database (figuresFamilies) and those of the scheduled
// backups (backupsFamilies), written at each scrape from what is in memory.

// figures are the database figures and the backups' outcomes as a scrape shows
// them: read once at its start, so its series agree with each other.
type figures struct {
	totals    []models.ConnectionTotal
	outbox    models.OutboxFigures
	backlog   models.BacklogFigures
	apps      []models.AppState
	collected time.Time
	backup    backupFigures
}

func (r *Registry) snapshot() figures {
	r.mu.RLock()
	f := figures{totals: r.totals, outbox: r.outbox, backlog: r.backlog, apps: r.apps, collected: r.collectedAt} // never changed in place
	r.mu.RUnlock()
	r.backupMu.Lock()
	f.backup = r.backup
	r.backupMu.Unlock()
	return f
}

// gaugeOnceCollected is a family of one unlabelled gauge, written once the
// database figures were read.
func gaugeOnceCollected(name, help string, value func(f *figures) float64) family {
	return family{name: name, typ: typeGauge, help: help, write: func(e *expo) {
		if !e.figures.collected.IsZero() {
			e.sample(name, value(&e.figures))
		}
	}}
}

func figuresFamilies() []family {
	return []family{
		{name: "grconnect_connections", typ: typeGauge, help: "Connections by status.", write: func(e *expo) {
			byStatus := map[models.Status]int64{}
			for _, t := range e.figures.totals {
				byStatus[t.Status] += t.N
			}
			for _, st := range slices.Sorted(slices.Values(models.Statuses)) {
				e.sample("grconnect_connections", float64(byStatus[st]), "status", string(st))
			}
		}},
		{name: "grconnect_app_connections", typ: typeGauge, help: "Connections by app and status.", write: func(e *expo) {
			totals := slices.SortedFunc(slices.Values(e.figures.totals), func(a, b models.ConnectionTotal) int {
				return cmp.Or(cmp.Compare(validUTF8(a.AppID), validUTF8(b.AppID)), cmp.Compare(a.Status, b.Status))
			})
			for _, t := range totals {
				e.sample("grconnect_app_connections", float64(t.N), "app", validUTF8(t.AppID), "status", string(t.Status))
			}
		}},
		gaugeOnceCollected("grconnect_webhook_outbox_pending", "Webhook deliveries waiting to be sent (or retried).",
			func(f *figures) float64 { return float64(f.outbox.Pending) }),
		gaugeOnceCollected("grconnect_webhook_outbox_oldest_age_seconds", "Age of the oldest webhook delivery still waiting (0 when none).",
			func(f *figures) float64 { return ageAt(f.outbox.Oldest, f.collected) }),
		gaugeOnceCollected("grconnect_connections_due_unrefreshed",
			"Connections due for a refresh for longer than a grace period and not refreshed yet (the refresher falling behind); paused apps' connections are not counted.",
			func(f *figures) float64 { return float64(f.backlog.Overdue) }),
		gaugeOnceCollected("grconnect_connections_due_unrefreshed_oldest_seconds", "How long the longest-waiting of them has been due (0 when none).",
			func(f *figures) float64 { return ageAt(f.backlog.Since, f.collected) }),
		{name: "grconnect_app_health", typ: typeGauge,
			help: "Each app's health: 1 for its current state (ok, credentials_rejected, misconfigured, refused), 0 for the others.",
			write: func(e *expo) {
				if e.figures.collected.IsZero() {
					return
				}
				type row struct {
					app, name, health string
					v                 float64
				}
				var rows []row
				for _, a := range e.figures.apps {
					current := a.Health
					if current == "" {
						current = models.AppHealthy
					}
					for _, h := range models.AppHealths {
						v := 0.0
						if h == current {
							v = 1
						}
						// The app's name is the operator's text: e.sample escapes it.
						rows = append(rows, row{validUTF8(a.ID), validUTF8(a.Name), string(h), v})
					}
				}
				slices.SortFunc(rows, func(a, b row) int {
					return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(a.health, b.health), cmp.Compare(a.name, b.name))
				})
				for _, r := range rows {
					e.sample("grconnect_app_health", r.v, "app", r.app, "health", r.health, "name", r.name)
				}
			}},
		gaugeOnceCollected("grconnect_figures_collected_timestamp_seconds", "When the database figures above were read.",
			func(f *figures) float64 { return float64(f.collected.Unix()) }),
	}
}

// backupsFamilies are the scheduled backups' outcomes, once one ran (or one was
// found at start).
func backupsFamilies() []family {
	lastSuccess := func(name, help string, value func(b *backupFigures) float64) family {
		return family{name: name, typ: typeGauge, help: help, write: func(e *expo) {
			if !e.figures.backup.last.IsZero() {
				e.sample(name, value(&e.figures.backup))
			}
		}}
	}
	return []family{
		{name: "grconnect_backups_total", typ: typeCounter, help: "Scheduled backups by outcome.", write: func(e *expo) {
			if b := e.figures.backup; b.ok+b.failures > 0 || !b.last.IsZero() {
				e.sample("grconnect_backups_total", float64(b.failures), "outcome", "failed")
				e.sample("grconnect_backups_total", float64(b.ok), "outcome", "succeeded")
			}
		}},
		lastSuccess("grconnect_backup_last_success_timestamp_seconds", "When the last scheduled backup succeeded.",
			func(b *backupFigures) float64 { return float64(b.last.Unix()) }),
		lastSuccess("grconnect_backup_last_size_bytes", "Size of the last successful scheduled backup.",
			func(b *backupFigures) float64 { return float64(b.size) }),
		lastSuccess("grconnect_backup_last_duration_seconds", "How long the last successful scheduled backup took.",
			func(b *backupFigures) float64 { return b.took.Seconds() }),
	}
}

// ageAt is how long before at t was, in whole seconds (0 for none).
func ageAt(t *time.Time, at time.Time) float64 {
	if t == nil || t.IsZero() || !t.Before(at) {
		return 0
	}
	return math.Round(at.Sub(*t).Seconds())
}

// validUTF8 makes a label value valid UTF-8, which the format requires (a name
// stored before names were checked could hold anything).
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
