package services

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/mailer"
)

// Sender delivers one e-mail (mailer.SMTP).
type Sender interface {
	Send(ctx context.Context, m mailer.Message) error
}

// Alert timing: a pass every alertEvery, so what breaks together arrives as one
// digest; at most alertBatch events a mail.
const (
	alertEvery = time.Minute
	alertBatch = 500
	alertShown = 20 // items listed in a digest before "and N more"
)

// Alerts e-mails the operators who opted in about what needs a person: an app's
// health changing (who must act, and what to do) and customers who must
// reconnect. Each alert goes out once, across replicas (a cursor over the events
// table, advanced before sending); everything that happened since the last pass is
// one mail, so one broken app with a thousand connections is one alert.
type Alerts struct {
	store   *models.Store
	sender  Sender
	from    string
	baseURL string
	log     *slog.Logger
	// Interval is how often Run looks for new alerts (±10 %).
	Interval time.Duration
}

// NewAlerts returns the alert mailer; sender nil means e-mail is off.
func NewAlerts(store *models.Store, sender Sender, from, baseURL string, log *slog.Logger) *Alerts {
	return &Alerts{store: store, sender: sender, from: from, baseURL: baseURL, log: log, Interval: alertEvery}
}

// Enabled reports whether alert e-mails can be sent at all.
func (a *Alerts) Enabled() bool { return a.sender != nil }

// Run sends alerts until ctx ends.
func (a *Alerts) Run(ctx context.Context) {
	if a.sender == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(float64(a.Interval) * (0.9 + 0.2*rand.Float64()))):
		}
		if _, err := a.RunOnce(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("alert e-mails", "error", err)
		}
	}
}

// RunOnce sends one mail with the alerts since the last pass, if there are any and
// anyone wants them; it returns how many alerts it covered. A failed send puts the
// cursor back, so the next pass tries again.
func (a *Alerts) RunOnce(ctx context.Context) (int, error) {
	if a.sender == nil {
		return 0, nil
	}
	rows, cursor, err := a.store.PendingAlerts(ctx, alertBatch)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	last := rows[len(rows)-1].ID
	to, err := a.store.AlertRecipients(ctx)
	if err != nil {
		return 0, err
	}
	claimed, err := a.store.AdvanceAlerts(ctx, cursor, last)
	if err != nil || !claimed {
		return 0, err // another replica sends these
	}
	if len(to) == 0 {
		return len(rows), nil // nobody asked for e-mail: the alerts are on the dashboard
	}
	msg := a.compose(rows, to)
	if err := a.sender.Send(ctx, msg); err != nil {
		if _, rerr := a.store.AdvanceAlerts(context.WithoutCancel(ctx), last, cursor); rerr != nil {
			a.log.Error("alert e-mails: could not put the cursor back; these alerts are not mailed", "error", rerr)
		}
		return 0, err
	}
	a.log.Info("alert e-mail sent", "alerts", len(rows), "recipients", len(to))
	return len(rows), nil
}

// compose writes one mail for rows: the app alerts first (who must act), then the
// customers who must reconnect, as a digest when there are several.
func (a *Alerts) compose(rows []models.AlertRow, to []string) mailer.Message {
	var apps, customers []models.AlertRow
	for _, r := range rows {
		if r.Type == models.EventNeedsReconnect {
			customers = append(customers, r)
		} else {
			apps = append(apps, r)
		}
	}
	var subject []string
	unhealthy, recovered := 0, 0
	for _, r := range apps {
		if r.Type == models.EventAppUnhealthy {
			unhealthy++
		} else {
			recovered++
		}
	}
	if unhealthy > 0 {
		subject = append(subject, plural(unhealthy, "app needs attention", "apps need attention"))
	}
	if recovered > 0 {
		subject = append(subject, plural(recovered, "app works again", "apps work again"))
	}
	if len(customers) > 0 {
		subject = append(subject, plural(len(customers), "customer must reconnect", "customers must reconnect"))
	}
	var b strings.Builder
	b.WriteString("grconnect alerts since the last e-mail.\n")
	if len(apps) > 0 {
		b.WriteString("\nApps\n")
		for _, r := range apps {
			fmt.Fprintf(&b, "- %s, %s: %s\n", r.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"), r.AppName, r.Message)
		}
	}
	if len(customers) > 0 {
		b.WriteString("\nCustomers who must approve access again (send each a reconnect link)\n")
		for i, r := range customers {
			if i == alertShown {
				fmt.Fprintf(&b, "- and %d more: see %s/connections?status=needs_reconnect\n", len(customers)-alertShown, a.baseURL)
				break
			}
			who := r.AccountEmail
			if r.CustomerRef != "" {
				who += " (customer " + r.CustomerRef + ")"
			}
			link := ""
			if r.ConnectionID != nil {
				link = " " + a.baseURL + "/connections/" + *r.ConnectionID
			}
			fmt.Fprintf(&b, "- %s, app %s%s\n", who, r.AppName, link)
		}
	}
	b.WriteString("\nYou get these e-mails because you asked for them on " + a.baseURL + "/operators.\n")
	return mailer.Message{From: a.from, To: to, Subject: "grconnect: " + strings.Join(subject, ", "), Body: b.String()}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
