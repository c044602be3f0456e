package metrics

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestConcurrentObservations: many goroutines raise the same and new series at
// once while others scrape; every scrape taken meanwhile is valid (histograms
// cumulative, their count the +Inf bucket), and no observation is lost. Run with
// -race.
func TestConcurrentObservations(t *testing.T) {
	t.Parallel()
	r := New(fakeSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := r.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 2000
	stop := make(chan struct{})
	var scrapers sync.WaitGroup
	scrapes := make([]int, 2)
	for i := range scrapes {
		scrapers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := parseExposition(scrape(t, r)); err != nil {
					t.Error(err)
					return
				}
				scrapes[i]++
			}
		})
	}
	var observers sync.WaitGroup
	for w := range workers {
		observers.Go(func() {
			for i := range each {
				r.ObserveCall("proxy", 200+i%4*100, 25*time.Millisecond) // 2xx, 3xx, 4xx, 5xx
				r.ObserveCall("worker"+strconv.Itoa(w), 429, time.Second)
				r.ObserveRefresh("succeeded", "", 100*time.Millisecond)
				r.ObserveCommit(time.Millisecond)
				r.ObserveResponse(200)
				r.ObserveProxy(200 + i%2)
			}
		})
	}
	observers.Wait()
	close(stop)
	scrapers.Wait()
	if scrapes[0]+scrapes[1] < 2 {
		t.Fatalf("only %v scrapes during the observations", scrapes)
	}
	families := parse(t, scrape(t, r))
	const n = workers * each
	for _, want := range []struct {
		family string
		labels []string
		value  float64
	}{
		{"grconnect_getresponse_requests_total", []string{"kind", "proxy", "class", "2xx"}, n / 4},
		{"grconnect_getresponse_requests_total", []string{"kind", "proxy", "class", "5xx"}, n / 4},
		{"grconnect_getresponse_requests_total", []string{"kind", "worker7", "class", "429"}, each},
		{"grconnect_getresponse_request_duration_seconds_count", []string{"kind", "proxy"}, n},
		{"grconnect_getresponse_request_duration_seconds_sum", []string{"kind", "worker3"}, each},
		{"grconnect_refreshes_total", []string{"outcome", "succeeded", "class", ""}, n},
		{"grconnect_refresh_duration_seconds_count", nil, n},
		{"grconnect_token_pair_store_seconds_count", nil, n},
		{"grconnect_http_responses_total", []string{"class", "2xx"}, n},
		{"grconnect_proxy_requests_total", []string{"status", "201"}, n / 2},
	} {
		got, ok := sampleValue(families, want.family, want.labels...)
		if !ok || math.Abs(got-want.value) > 1e-6*want.value {
			t.Errorf("%s%v = %v (present %v), want %v", want.family, want.labels, got, ok, want.value)
		}
	}
	if got, _ := bucket(families, "grconnect_getresponse_request_duration_seconds", "0.025", "kind", "proxy"); got != n {
		t.Errorf("proxy calls of 25 ms in the le=0.025 bucket: %d, want %d (a bound is inclusive)", got, n)
	}
	if got, _ := sampleValue(families, "grconnect_refresh_duration_seconds_sum"); math.Abs(got-0.1*n) > 1e-6 {
		t.Errorf("refresh duration sum = %v, want %v", got, 0.1*n)
	}
}

// sampleValue returns the value of the sample named name (a family's name, or a
// histogram's with _sum or _count) with exactly labels.
func sampleValue(families map[string]*parsedFamily, name string, labels ...string) (float64, bool) {
	for _, f := range families {
		for _, s := range f.samples {
			if s.name == name && hasLabels(s, true, labels...) {
				return s.value, true
			}
		}
	}
	return 0, false
}
