package handlers_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// BenchmarkTokenRoute measures POST /api/v1/connections/{id}/token for a connection
// with a valid token, through the whole router (middleware, API key check, token
// read and decrypt) over real HTTP, next to a bare Echo handler with no middleware
// served the same way, alternating three rounds in one run. The goal is a ratio of
// at least 0.5:
//
//	go test -run '^$' -bench TokenRoute -benchtime 3s ./handlers/
func BenchmarkTokenRoute(b *testing.B) {
	f := newAPIFixture(b, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	f.logs.stop()

	bare := echo.New()
	bare.POST("/token", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]any{"access_token": "0123456789abcdef0123456789abcdef01234567", "token_type": "Bearer", "expires_at": time.Now().UTC()})
	})
	bareSrv := httptest.NewServer(bare)
	defer bareSrv.Close()

	load := func(url, key string) func(b *testing.B) result {
		return func(b *testing.B) result {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			defer client.CloseIdleConnections()
			b.SetParallelism(8) // 8 × GOMAXPROCS clients at once
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, url, nil)
					if key != "" {
						req.Header.Set("Authorization", "Bearer "+key)
					}
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			res := result{perSec: float64(b.N) / b.Elapsed().Seconds(), cpu: (cpuTime() - cpu0) / time.Duration(b.N)}
			b.ReportMetric(res.perSec, "req/s")
			b.ReportMetric(float64(res.cpu.Microseconds()), "cpu-µs/req")
			return res
		}
	}
	routes := []struct {
		name string
		run  func(b *testing.B) result
	}{
		{"bare-echo", load(bareSrv.URL+"/token", "")},
		{"token", load(f.srv.URL+"/api/v1/connections/"+conn.ID+"/token", f.key)},
	}
	var ratios, cpuRatios []float64
	for range 3 {
		got := map[string]result{}
		for _, r := range routes {
			b.Run(r.name, func(b *testing.B) { got[r.name] = r.run(b) })
		}
		bareRes, tokenRes := got["bare-echo"], got["token"]
		if bareRes.perSec > 0 && tokenRes.cpu > 0 {
			ratios = append(ratios, tokenRes.perSec/bareRes.perSec)
			cpuRatios = append(cpuRatios, float64(bareRes.cpu)/float64(tokenRes.cpu))
			b.Logf("token route %.0f req/s (%v CPU each), bare Echo %.0f req/s (%v CPU each): ratio %.2f, by CPU %.2f",
				tokenRes.perSec, tokenRes.cpu, bareRes.perSec, bareRes.cpu, ratios[len(ratios)-1], cpuRatios[len(cpuRatios)-1])
		}
	}
	if len(ratios) > 0 {
		slices.Sort(ratios)
		slices.Sort(cpuRatios)
		b.Logf("median ratio %.2f; by CPU per request (steadier on a busy machine) %.2f; goal ≥ 0.5", ratios[len(ratios)/2], cpuRatios[len(cpuRatios)/2])
	}
}

// result is one measurement: requests per second, and this process's CPU time per
// request (client, server and handler together).
type result struct {
	perSec float64
	cpu    time.Duration
}

// cpuTime is the CPU time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
