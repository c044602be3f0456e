package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// receipt is one webhook POST that reached the receiver.
type receipt struct {
	id         string // X-Grconnect-Delivery
	start, end time.Time
}

// webhookReceiver records every delivery and answers 200 slowly.
type webhookReceiver struct {
	delay time.Duration
	mu    sync.Mutex
	got   []*receipt
}

func (wr *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := &receipt{id: r.Header.Get("X-Grconnect-Delivery"), start: time.Now()}
	wr.mu.Lock()
	wr.got = append(wr.got, rc)
	wr.mu.Unlock()
	time.Sleep(wr.delay)
	w.WriteHeader(http.StatusOK)
	wr.mu.Lock()
	rc.end = time.Now()
	wr.mu.Unlock()
}

func (wr *webhookReceiver) receipts() []receipt {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	out := make([]receipt, len(wr.got))
	for i, r := range wr.got {
		out[i] = *r
	}
	return out
}

// configureWebhook signs in as the install's operator and sets the app's webhook
// URL on the app page, as an operator does.
func (in *install) configureWebhook(target string) error {
	op := newAgent(in.h.t)
	_, page, _, err := op.try(http.MethodGet, in.base+"/login", nil)
	if err != nil {
		return err
	}
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		return fmt.Errorf("no CSRF field on /login")
	}
	code, _, _, err := op.try(http.MethodPost, in.base+"/login", url.Values{"_csrf": {m[1]}, "email": {in.opEmail}, "password": {in.opPass}})
	if err != nil || code != http.StatusSeeOther {
		return fmt.Errorf("sign in: %d %v", code, err)
	}
	appPage := in.base + "/apps/" + in.appID
	_, page, _, err = op.try(http.MethodGet, appPage, nil)
	if err != nil {
		return err
	}
	if m = csrfField.FindStringSubmatch(page); m == nil {
		return fmt.Errorf("no CSRF field on the app page")
	}
	code, _, _, err = op.try(http.MethodPost, appPage+"/webhook", url.Values{"_csrf": {m[1]}, "webhook_url": {target}})
	if err != nil || code != http.StatusOK && code != http.StatusSeeOther {
		return fmt.Errorf("set the webhook: %d %v", code, err)
	}
	return nil
}

// webhookKillRun makes form.webhookEvents connections (one connection.created
// webhook each) with a receiver that takes 1.5 s per delivery, SIGKILLs the process
// while deliveries are in flight, starts another, and waits until every delivery is
// marked delivered. Goals: every event delivered at least once; duplicates only for
// deliveries in flight at the kill; at-least-once delivery documented.
func webhookKillRun(h *faultRun) {
	recv := &webhookReceiver{delay: 1500 * time.Millisecond}
	srv := httptest.NewServer(recv)
	h.cleanup(srv.Close)
	in := h.newInstall(installOpts{fake: getresponsetest.Options{Rotation: getresponsetest.RotationStrict}})
	p := in.serve()
	if err := in.configureWebhook(srv.URL + "/hooks/grconnect"); err != nil {
		h.fatalf("configure the webhook: %v", err)
	}
	n := h.form.webhookEvents
	if err := in.connect(n, 4); err != nil {
		h.fatalf("connect: %v", err)
	}
	// Kill once the first deliveries are done and the next ones are at the receiver.
	deadline := time.Now().Add(60 * time.Second)
	for len(recv.receipts()) < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	h.sleep(0, recv.delay/2)
	before, after := p.kill()
	atKill := len(recv.receipts())
	q := in.serve()

	var ds []models.WebhookDelivery
	restart := time.Now()
	allDone := time.Duration(-1)
	for limit := time.Now().Add(3 * time.Minute); time.Now().Before(limit); time.Sleep(250 * time.Millisecond) {
		ds = nil
		if err := in.db().DB().Order("id").Find(&ds).Error; err != nil {
			h.fatalf("read deliveries: %v", err)
		}
		done := 0
		for _, d := range ds {
			if d.Status == models.DeliveryDelivered {
				done++
			}
		}
		if done == len(ds) && len(ds) >= n {
			allDone = time.Since(restart)
			break
		}
	}
	q.stop()

	got := recv.receipts()
	count := map[string]int{}
	inFlight := map[string]bool{}
	for _, r := range got {
		count[r.id]++
		if r.start.Before(after) && (r.end.IsZero() || r.end.After(before.Add(-inFlightWindow))) {
			inFlight[r.id] = true
		}
	}
	var missing, dups, dupsNotInFlight []string
	for _, d := range ds {
		id := "whd_" + strconv.FormatInt(d.ID, 10)
		switch c := count[id]; {
		case c == 0:
			missing = append(missing, id)
		case c > 1:
			dups = append(dups, id)
			if !inFlight[id] {
				dupsNotInFlight = append(dupsNotInFlight, id)
			}
		}
	}
	sort.Strings(dups)
	doc, where := atLeastOnceDocumented()
	h.figure("%d deliveries, %d POSTs received (%d before the kill), %d in flight at the kill, %d delivered twice or more, %d of them not in flight; all delivered %s after the restart; documented: %v %s",
		len(ds), len(got), atKill, len(inFlight), len(dups), len(dupsNotInFlight), readyAgainText(allDone), doc, where)
	h.goal("every_event_delivered", "after a SIGKILL during webhook delivery, every event is delivered at least once",
		len(missing) == 0 && allDone >= 0 && len(ds) >= n,
		"%d deliveries for %d events; never received: %s; all marked delivered: %s after the restart", len(ds), n, brief(missing), readyAgainText(allDone))
	h.goal("duplicates_only_in_flight", "duplicates (same delivery ID) only for deliveries in flight at the kill",
		len(dupsNotInFlight) == 0,
		"%d delivered twice or more (%s), %d of them not in flight at the kill (%s); %d were in flight",
		len(dups), brief(dups), len(dupsNotInFlight), brief(dupsNotInFlight), len(inFlight))
	h.goal("at_least_once_documented", "webhook delivery is documented as at-least-once (deduplicate by X-Grconnect-Delivery)",
		doc, "README.md and docs/*.md: %s", where)
}

var atLeastOnce = regexp.MustCompile(`(?i)at[- ]least[- ]once`)

// atLeastOnceDocumented looks for "at-least-once" in the README and docs.
func atLeastOnceDocumented() (bool, string) {
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	for _, f := range append([]string{filepath.Join(root, "README.md")}, files...) {
		b, err := os.ReadFile(f)
		if err == nil && atLeastOnce.Match(b) {
			return true, "found in " + f
		}
	}
	return false, `no "at-least-once" in README.md or docs/*.md`
}
