package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// TestReplicasPaceOneAccountTogether: two grconnect processes on one PostgreSQL
// database proxy 200 calls at once for one GetResponse account, half through
// each, against a fake GetResponse that enforces its limits (10 at once, 80 a
// second). Together they never have more than ten calls at GetResponse, it
// refuses none, and every caller gets GetResponse's 200 with how long it queued.
func TestReplicasPaceOneAccountTogether(t *testing.T) {
	f := newFleet(t)
	f.fake.AddClient("acme", "acme-secret", "http://unused.test/oauth/callback")
	ctx := context.Background()
	account := f.fake.AddAccount(getresponsetest.Account{AccountID: "Pace01", Email: "pace@example.com"})
	access, refresh, err := f.fake.IssueTokens("acme", account)
	if err != nil {
		t.Fatal(err)
	}
	now := models.Now()
	exp := now.Add(time.Hour)
	c := models.Connection{ID: models.NewID("con"), AppID: f.app.ID, AccountID: account, AccountEmail: "pace@example.com",
		Status: models.StatusActive, ConnectedAt: now, LastRefreshAt: &now, ExpiresAt: &exp, CreatedAt: now, UpdatedAt: now}
	c.AccessTokenEnc, _ = f.box.Seal(access, secrets.AAD("connection", c.ID, "access_token"))
	c.RefreshTokenEnc, _ = f.box.Seal(refresh, secrets.AAD("connection", c.ID, "refresh_token"))
	if err := f.store.DB().Create(&c).Error; err != nil {
		t.Fatal(err)
	}
	_, key, err := services.NewAPIKeys(f.store, slog.New(slog.NewTextHandler(io.Discard, nil))).Create(ctx, services.APIKeyInput{Name: "backend", CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	f.base = "http://" + freeAddr(t)
	var replicas [2]*replica
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { replicas[i] = f.start(freeAddr(t)) })
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	f.fake.SetAPILatency(25 * time.Millisecond)
	f.fake.ResetCounts()
	client := &http.Client{Timeout: 30 * time.Second}
	var mu sync.Mutex
	statuses := map[int]int{}
	var longest time.Duration
	start := time.Now()
	for i := range 200 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, replicas[i%2].url+"/api/v1/connections/"+c.ID+"/proxy/from-fields", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			res, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			ms, err := strconv.Atoi(res.Header.Get("X-Grconnect-Queued-Ms"))
			if err != nil {
				t.Errorf("X-Grconnect-Queued-Ms = %q", res.Header.Get("X-Grconnect-Queued-Ms"))
			}
			mu.Lock()
			statuses[res.StatusCode]++
			longest = max(longest, time.Duration(ms)*time.Millisecond)
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(start)
	refused := f.fake.Stat(getresponsetest.StatRefusedParallel) + f.fake.Stat(getresponsetest.StatRefusedPerSecond) + f.fake.Stat(getresponsetest.StatRefusedWindow)
	if statuses[http.StatusOK] != 200 {
		t.Errorf("answers by status: %v; want 200 × 200", statuses)
	}
	if peak := f.fake.PeakInFlight(account); peak > 10 {
		t.Errorf("GetResponse had %d calls of the account in flight at once across the replicas", peak)
	}
	if refused > 0 {
		t.Errorf("GetResponse refused %d calls", refused)
	}
	t.Logf("200 calls through two replicas in %v: GetResponse's peak in flight %d, %d refused, longest queue %v",
		took.Round(time.Millisecond), f.fake.PeakInFlight(account), refused, longest)
}
