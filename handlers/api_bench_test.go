package handlers_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
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
	comparePair(b, "token route", "bare Echo",
		loadRoute(http.MethodPost, f.srv.URL+"/api/v1/connections/"+conn.ID+"/token", f.key),
		loadRoute(http.MethodPost, bareSrv.URL+"/token", ""))
}

// BenchmarkProxyRoute measures GET /api/v1/connections/{id}/proxy/from-fields
// through the whole router (API key, token, path checks, per-account limits,
// header filtering, streaming) in front of a fast GetResponse stand-in, next to a
// bare httputil.ReverseProxy in front of the same upstream, alternating three rounds
// in one run. The calls go round 150 connections of as many GetResponse accounts,
// so that the proxy's pacing of each account (80 a second, GetResponse's own
// limit) does not bind and the ratio is of the work per call. The goal is a
// ratio of at least 0.5:
//
//	go test -run '^$' -bench ProxyRoute -benchtime 3s ./handlers/
func BenchmarkProxyRoute(b *testing.B) {
	f := newAPIFixture(b, getresponsetest.Options{})
	var paths []string
	for i := range 150 {
		account := f.fake.AddAccount(getresponsetest.Account{AccountID: fmt.Sprintf("acct%04d", i), Email: fmt.Sprintf("c%d@example.com", i)})
		conn := f.connect(fmt.Sprintf("customer-%d", i), account)
		paths = append(paths, f.srv.URL+"/api/v1/connections/"+conn.ID+"/proxy/from-fields")
	}
	f.logs.stop()
	body := []byte(`[{"fromFieldId":"TTzW","email":"john@example.com","name":"John Smith","isActive":"true","isDefault":"true","createdOn":"2017-03-13T19:32:52+0000"}]`)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-RateLimit-Limit", "30000")
		w.Header().Set("X-RateLimit-Remaining", "29999")
		w.Header().Set("X-RateLimit-Reset", "600 seconds")
		w.Write(body)
	}))
	defer upstream.Close()
	if err := f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Update("api_url", upstream.URL+"/v3").Error; err != nil {
		b.Fatal(err)
	}
	f.store.AppsWritten() // a raw write: the app cache must hear of it
	target, _ := url.Parse(upstream.URL)
	bareSrv := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer bareSrv.Close()
	comparePair(b, "proxy route", "bare ReverseProxy",
		loadRoutes(http.MethodGet, paths, f.key),
		loadRoute(http.MethodGet, bareSrv.URL+"/v3/from-fields", ""))
}

// loadRoute returns a benchmark that sends method url (with the API key, if any)
// from 8 × GOMAXPROCS clients at once and expects 200s.
func loadRoute(method, url, key string) func(b *testing.B) result {
	return loadRoutes(method, []string{url}, key)
}

// loadRoutes is loadRoute over urls, each request the next of them.
func loadRoutes(method string, urls []string, key string) func(b *testing.B) result {
	var next atomic.Uint64
	return func(b *testing.B) result {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
		defer client.CloseIdleConnections()
		b.SetParallelism(8)
		cpu0 := cpuTime()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(method, urls[next.Add(1)%uint64(len(urls))], nil)
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

// comparePair runs ours and the baseline side by side, three alternating rounds,
// and logs the ratios by requests per second and by CPU per request.
func comparePair(b *testing.B, oursName, baseName string, ours, base func(b *testing.B) result) {
	var ratios, cpuRatios []float64
	for range 3 {
		var o, bl result
		b.Run("baseline", func(b *testing.B) { bl = base(b) })
		b.Run("grconnect", func(b *testing.B) { o = ours(b) })
		if bl.perSec > 0 && o.cpu > 0 {
			ratios = append(ratios, o.perSec/bl.perSec)
			cpuRatios = append(cpuRatios, float64(bl.cpu)/float64(o.cpu))
			b.Logf("%s %.0f req/s (%v CPU each), %s %.0f req/s (%v CPU each): ratio %.2f, by CPU %.2f",
				oursName, o.perSec, o.cpu, baseName, bl.perSec, bl.cpu, ratios[len(ratios)-1], cpuRatios[len(cpuRatios)-1])
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
