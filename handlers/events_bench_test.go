package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// BenchmarkInboundEvents sends GetResponse webhook events to 20 connections'
// events URLs at a steady 1,000 a second (open loop: each request leaves at its
// scheduled time whatever the others do, and its latency counts from then), on
// SQLite, while the relay and the webhook sender run as serve runs them and
// deliver every event to a local receiver. It reports the answers' latency
// percentiles, the largest backlog seen (events stored but not yet delivered) and
// how long after the last event the last delivery arrived. b.N is the number of
// events; the figure (p99 ≤ 50 ms while the relay keeps up) is read from
//
//	go test -run '^$' -bench InboundEvents -benchtime 10000x ./handlers/
func BenchmarkInboundEvents(b *testing.B) {
	const rate, conns = 1000, 20
	f := newEventsFixture(b)
	var delivered atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Grconnect-Event") == "getresponse.event" {
			delivered.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	if err := f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Update("webhook_url", recv.URL).Error; err != nil {
		b.Fatal(err)
	}
	urls := make([]string, conns)
	for i := range conns {
		acct := fmt.Sprintf("L%02d", i)
		f.fake.AddAccount(getresponsetest.Account{AccountID: acct, Email: acct + "@example.com"})
		urls[i] = f.eventsURL(f.connect(fmt.Sprintf("customer-%d", i), acct).ID)
	}
	f.relay() // the connections' own events, out of the way
	f.logs.stop()
	ctx, stop := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	workers.Go(func() { f.built.Events.RunRelay(ctx) })
	workers.Go(func() { f.built.Webhooks.Run(ctx) })
	defer func() { stop(); workers.Wait() }()

	// The backlog, sampled while the events come in.
	var maxBacklog atomic.Int64
	sampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-sampling:
				return
			case <-time.After(250 * time.Millisecond):
			}
			var inbound, pending int64
			f.store.DB().Model(&models.InboundEvent{}).Where("relayed_at IS NULL").Count(&inbound)
			f.store.DB().Model(&models.WebhookDelivery{}).Where("status = ?", models.DeliveryPending).Count(&pending)
			if n := inbound + pending; n > maxBacklog.Load() {
				maxBacklog.Store(n)
			}
		}
	})

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	before := delivered.Load()
	latencies := make([]time.Duration, b.N)
	var failed atomic.Int64
	var wg sync.WaitGroup
	interval := time.Second / rate
	cpuBefore := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		wg.Go(func() {
			body := fmt.Sprintf(`{"type":"contact_opened_message","contact":{"email":"reader-%d@example.com"},"account":{"accountId":"L%02d"}}`, i, i%conns)
			req, _ := http.NewRequest(http.MethodPost, urls[i%conns], strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Webhook-ID", fmt.Sprintf("bench-%d", i))
			resp, err := client.Do(req)
			latencies[i] = time.Since(at)
			if err != nil || resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	sent := time.Since(start)
	// The relay keeps up when the last delivery follows the last event closely.
	for delivered.Load()-before < int64(b.N) && time.Since(start) < sent+2*time.Minute {
		time.Sleep(5 * time.Millisecond)
	}
	drain := time.Since(start) - sent
	used := cpuTime() - cpuBefore
	cores := used.Seconds() / time.Since(start).Seconds()
	b.StopTimer()
	close(sampling)
	sampler.Wait()
	// Every event answered OK must have been delivered (a request that timed out on
	// the client's side may have been kept too, and delivered).
	if got := delivered.Load() - before; got < int64(b.N)-failed.Load() || got > int64(b.N) {
		b.Fatalf("%d of %d events delivered, %d requests failed", got, b.N, failed.Load())
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/sent.Seconds(), "events/s")
	b.ReportMetric(float64(failed.Load()), "failed") // no answer within 10 s, or not 200
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(pct(1), "max_ms")
	b.ReportMetric(float64(maxBacklog.Load()), "max_backlog")
	b.ReportMetric(float64(drain.Milliseconds()), "drain_ms")
	// The CPU this process got (grconnect, the load and the receiver together), in
	// cores: on a shared machine, how much of its two it had.
	b.ReportMetric(cores, "cpu_cores")
	b.ReportMetric(float64(used.Microseconds())/1000/float64(b.N), "cpu_ms/event")
	b.ReportMetric(0, "ns/op")
}
