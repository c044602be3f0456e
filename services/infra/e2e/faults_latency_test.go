package e2e

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// loadResult is what a load run measured.
type loadResult struct {
	latencies []time.Duration // sorted
	codes     map[int]int     // 0: no answer
	dropped   int             // not sent: too many in flight
	elapsed   time.Duration
}

func (r loadResult) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.latencies))+0.999999) - 1
	return r.latencies[min(max(i, 0), len(r.latencies)-1)]
}

// loadTokens sends rate POST …/token requests per second for d, spread at random
// over ids, at a fixed pace whatever the answers take (an open loop: a slow answer
// delays no later request).
func (h *faultRun) loadTokens(in *install, ids []string, rate int, d time.Duration) loadResult {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute}}
	const tick = 10 * time.Millisecond
	var mu sync.Mutex
	res := loadResult{codes: map[int]int{}}
	sem := make(chan struct{}, 4096)
	var wg sync.WaitGroup
	send := func(id string) {
		defer func() { <-sem }()
		req, _ := http.NewRequest(http.MethodPost, in.base+"/api/v1/connections/"+id+"/token", nil)
		req.Header.Set("Authorization", "Bearer "+in.apiKey)
		start := time.Now()
		code := 0
		if r, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			code = r.StatusCode
		}
		lat := time.Since(start)
		mu.Lock()
		res.latencies = append(res.latencies, lat)
		res.codes[code]++
		mu.Unlock()
	}
	start := time.Now()
	ticker := time.NewTicker(tick)
	issued := 0
	for now := range ticker.C {
		elapsed := now.Sub(start)
		if elapsed >= d {
			break
		}
		// As many as the pace owes by now: a late tick sends more, not fewer.
		due := int(elapsed.Seconds()*float64(rate)) - issued
		issued += due
		for range due {
			select {
			case sem <- struct{}{}:
				id := ids[h.rng.IntN(len(ids))]
				wg.Go(func() { send(id) })
			default:
				res.dropped++
			}
		}
	}
	ticker.Stop()
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.latencies)
	return res
}

// tokenLatencyRun (long form) connects form.latencyConns customers with a
// refresher that will not touch them, waits until every token is inside the
// margin of a second process, starts that process — a refresh wave of every
// connection at GetResponse's 80/s — and meanwhile asks /token form.latencyRate
// times a second, spread over the connections. The fake answers at once: the
// figures are grconnect's (the same load on the first process, with nothing due,
// shows what the machine gives without a wave). Goal: p99 ≤ 50 ms, max ≤ 1 s.
func tokenLatencyRun(h *faultRun) {
	n := h.form.latencyConns
	const life, waveMargin = 10 * time.Minute, 9 * time.Minute // due a minute after each refresh
	in := h.newInstall(installOpts{fake: getresponsetest.Options{Rotation: getresponsetest.RotationStrict, ExpiresIn: life}})
	p := in.serve("GRCONNECT_REFRESH_MARGIN=1m", "GRCONNECT_REFRESH_INTERVAL=1h")
	t0 := time.Now()
	if err := in.connect(n, 16); err != nil {
		h.fatalf("connect %d customers: %v", n, err)
	}
	lastConnect := time.Now()
	h.logf("%d connections made through the flow in %s", n, lastConnect.Sub(t0).Round(time.Second))
	// The same load with nothing due: what this machine gives without a wave.
	calm := h.loadTokens(in, in.connectionIDs(), h.form.latencyRate, 10*time.Second)
	h.figure("without a wave: %d /token requests in %s (%d not sent), answers %s; p50 %s, p99 %s, max %s; load average %s",
		len(calm.latencies), calm.elapsed.Round(100*time.Millisecond), calm.dropped, codesText(calm.codes),
		calm.quantile(0.5).Round(100*time.Microsecond), calm.quantile(0.99).Round(100*time.Microsecond), calm.quantile(1).Round(time.Millisecond), loadAverage())
	if err := p.stop(); err != nil {
		h.fatalf("stop: %v", err)
	}
	time.Sleep(time.Until(lastConnect.Add(life - waveMargin + time.Second)))
	ids := in.connectionIDs()
	callsBefore := in.rec.count()
	loadBefore := loadAverage()
	q := in.serve("GRCONNECT_REFRESH_MARGIN="+waveMargin.String(), "GRCONNECT_REFRESH_RATE=80",
		"GRCONNECT_REFRESH_CONCURRENCY=8", "GRCONNECT_REFRESH_INTERVAL=200ms")
	waveStart := time.Now()
	res := h.loadTokens(in, ids, h.form.latencyRate, h.form.latencyFor)
	calls := in.rec.snapshot()[callsBefore:]
	waveEnd := "not finished"
	if len(calls) >= n {
		waveEnd = calls[n-1].start.Sub(waveStart).Round(100 * time.Millisecond).String()
	}
	q.stop()
	p50, p99, worst := res.quantile(0.50), res.quantile(0.99), res.quantile(1)
	sent := len(res.latencies)
	h.figure("%d connections all due at once; %d /token requests in %s (%.0f/s, %d not sent: too many in flight), answers %s; p50 %s, p99 %s, max %s; %d refresh calls meanwhile (the wave of %d done after %s); machine load average %s before, %s after",
		n, sent, res.elapsed.Round(100*time.Millisecond), float64(sent)/res.elapsed.Seconds(), res.dropped, codesText(res.codes),
		p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond), worst.Round(time.Millisecond), len(calls), n, waveEnd, loadBefore, loadAverage())
	h.goal("p99_50ms", fmt.Sprintf("/token p99 ≤ 50 ms during a refresh wave of %d connections at %d req/s", n, h.form.latencyRate),
		sent > 0 && p99 <= 50*time.Millisecond, "p99 %s (p50 %s) over %d requests, answers %s", p99.Round(100*time.Microsecond), p50.Round(100*time.Microsecond), sent, codesText(res.codes))
	h.goal("max_1s", fmt.Sprintf("/token max ≤ 1 s during a refresh wave of %d connections at %d req/s", n, h.form.latencyRate),
		sent > 0 && worst <= time.Second, "max %s over %d requests", worst.Round(time.Millisecond), sent)
}

func codesText(m map[int]int) string {
	var ps []probe
	for code, k := range m {
		for range k {
			ps = append(ps, probe{code: code})
		}
	}
	slices.SortFunc(ps, func(a, b probe) int { return a.code - b.code })
	return codes(ps)
}
