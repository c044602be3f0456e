package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// backupInstall is a SQLite install of grconnect on disk, run as real processes.
type backupInstall struct {
	t      *testing.T
	dbPath string
	key    []byte
	fake   *getresponsetest.Server
}

// env is the environment of every grconnect process of the install.
func (in *backupInstall) env(extra ...string) []string {
	return append(append(os.Environ(),
		"GRCONNECT_DATABASE="+in.dbPath,
		"GRCONNECT_SECRET_KEY="+base64.StdEncoding.EncodeToString(in.key),
		"GRCONNECT_GETRESPONSE_AUTH_URL="+in.fake.AuthURL(),
		"GRCONNECT_GETRESPONSE_API_URL="+in.fake.APIURL(),
	), extra...)
}

// command runs a grconnect command to its end.
func (in *backupInstall) command(args ...string) (string, error) {
	cmd := exec.Command(grconnectBinary(in.t), args...)
	cmd.Env = in.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// serve starts "grconnect serve" and waits until it is ready; it is stopped with
// SIGINT by the returned function (and at the end of the test).
func (in *backupInstall) serve(extra ...string) (string, func()) {
	in.t.Helper()
	addr := freeAddr(in.t)
	cmd := exec.Command(grconnectBinary(in.t), "serve")
	cmd.Env = in.env(append([]string{"GRCONNECT_ADDR=" + addr, "GRCONNECT_BASE_URL=http://" + addr}, extra...)...)
	log := &syncLog{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					in.t.Errorf("serve on %s ended with %v:\n%s", addr, err, tail(log.String(), 3000))
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
				in.t.Errorf("serve on %s did not stop", addr)
			}
		})
	}
	in.t.Cleanup(stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res, err := http.Get("http://" + addr + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return "http://" + addr, stop
			}
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("serve not ready:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// apiCall sends an API request with key and decodes a JSON answer into v (if not nil).
func apiCall(method, url, key string, v any) (int, error) {
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if v != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(body, v); err != nil {
			return res.StatusCode, fmt.Errorf("%s %s: %v: %s", method, url, err, body)
		}
	}
	return res.StatusCode, nil
}

// listConnections pages through GET /api/v1/connections.
func listConnections(t *testing.T, base, key string) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for {
		var page struct {
			Connections []struct{ ID string } `json:"connections"`
			NextCursor  *string               `json:"next_cursor"`
		}
		u := base + "/api/v1/connections?limit=500"
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		if status, err := apiCall(http.MethodGet, u, key, &page); status != http.StatusOK || err != nil {
			t.Fatalf("list connections: %d %v", status, err)
		}
		for _, c := range page.Connections {
			ids = append(ids, c.ID)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	slices.Sort(ids)
	return ids
}

// TestBackupWhileServingRestoresIntoAServer: a backup taken by "grconnect backup"
// while a real server refreshes tokens and answers API calls (token, refresh,
// proxy) restores, with the same key, into a fresh data directory; a server
// started on it lists the same connections and hands out access tokens that the
// fake GetResponse accepts. Restoring over the database of the running server is
// refused.
func TestBackupWhileServingRestoresIntoAServer(t *testing.T) {
	modelstest.SkipOnPostgres(t, "grconnect backup copies SQLite")
	const n = 120
	fake := getresponsetest.NewServer(getresponsetest.Options{}) // refresh tokens stay valid, as GetResponse documents
	t.Cleanup(fake.Close)
	fake.AddClient("acme", "acme-secret", "http://unused.test/oauth/callback")
	src := &backupInstall{t: t, dbPath: filepath.Join(t.TempDir(), "data", "grconnect.db"), key: make([]byte, secrets.KeySize), fake: fake}
	for i := range src.key {
		src.key[i] = byte(7*i + 1)
	}
	box, _ := secrets.New(src.key)
	os.MkdirAll(filepath.Dir(src.dbPath), 0o700)
	store := modelstest.NewAt(t, src.dbPath)
	ctx := context.Background()
	apps := services.NewApps(store, box, services.AppDefaults{AuthURL: fake.AuthURL(), APIURL: fake.APIURL()})
	app, err := apps.Create(ctx, services.AppInput{Name: "Acme", ClientID: "acme", ClientSecret: "acme-secret"})
	if err != nil {
		t.Fatal(err)
	}
	_, apiKey, err := services.NewAPIKeys(store, quietLog()).Create(ctx, services.APIKeyInput{Name: "backend", CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := services.CheckKey(ctx, store, box); err != nil {
		t.Fatal(err)
	}
	// Half the connections are due within minutes: the refresher works on them.
	now := models.Now()
	var seeded []string
	for i := range n {
		id := models.NewID("con")
		acct := fake.AddAccount(getresponsetest.Account{AccountID: fmt.Sprintf("A%04d", i), Email: id + "@example.com"})
		access, refresh, err := fake.IssueTokens("acme", acct)
		if err != nil {
			t.Fatal(err)
		}
		exp := now.Add(time.Hour)
		if i%2 == 0 {
			exp = now.Add(time.Duration(1+i%5) * time.Minute)
		}
		last := now.Add(-time.Hour)
		c := models.Connection{ID: id, AppID: app.ID, AccountID: acct, AccountEmail: id + "@example.com", Status: models.StatusActive,
			ConnectedAt: last, LastRefreshAt: &last, ExpiresAt: &exp, CreatedAt: last, UpdatedAt: last}
		c.AccessTokenEnc, _ = box.Seal(access, secrets.AAD("connection", id, "access_token"))
		c.RefreshTokenEnc, _ = box.Seal(refresh, secrets.AAD("connection", id, "refresh_token"))
		if err := store.DB().Create(&c).Error; err != nil {
			t.Fatal(err)
		}
		seeded = append(seeded, id)
	}
	slices.Sort(seeded)
	store.Close()

	base, stopA := src.serve("GRCONNECT_REFRESH_INTERVAL=200ms", "GRCONNECT_REFRESH_RATE=80")
	// API traffic from four clients until the backup is done.
	var stopLoad atomic.Bool
	var calls, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; !stopLoad.Load(); i += 4 {
				id := seeded[i%n]
				var status int
				var err error
				switch i % 3 {
				case 0:
					status, err = apiCall(http.MethodPost, base+"/api/v1/connections/"+id+"/token", apiKey, nil)
				case 1:
					status, err = apiCall(http.MethodPost, base+"/api/v1/connections/"+id+"/refresh", apiKey, nil)
				default:
					status, err = apiCall(http.MethodGet, base+"/api/v1/connections/"+id+"/proxy/from-fields", apiKey, nil)
				}
				calls.Add(1)
				if err != nil || status != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	for deadline := time.Now().Add(30 * time.Second); fake.Count(getresponsetest.EndpointTokenRefresh) < n/4 || calls.Load() < 100; {
		if time.Now().After(deadline) {
			t.Fatalf("no traffic: %d refreshes, %d calls", fake.Count(getresponsetest.EndpointTokenRefresh), calls.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	backupFile := filepath.Join(t.TempDir(), "live.db")
	refreshesBefore := fake.Count(getresponsetest.EndpointTokenRefresh)
	out, err := src.command("backup", "--to", backupFile)
	refreshesDuring := fake.Count(getresponsetest.EndpointTokenRefresh) - refreshesBefore
	if err != nil || !strings.Contains(out, "backup written: "+backupFile) {
		t.Fatalf("backup while serving: %v\n%s", err, out)
	}
	// Restoring over the running server's database is refused, and changes nothing.
	if out, err := src.command("restore", "--from", backupFile); err == nil || !strings.Contains(out, "has the database open") {
		t.Errorf("restore over a running server: %v\n%s", err, out)
	}
	stopLoad.Store(true)
	wg.Wait()
	t.Logf("backup taken during %d API calls (%d not 200) with %d refresh calls to GetResponse in flight meanwhile", calls.Load(), failed.Load(), refreshesDuring)
	if failed.Load() > 0 {
		t.Errorf("%d API calls failed while the backup ran", failed.Load())
	}
	if got := listConnections(t, base, apiKey); !slices.Equal(got, seeded) {
		t.Fatalf("the source lists %d connections, want %d", len(got), n)
	}
	stopA()

	if out, err := src.command("verify", "--from", backupFile); err != nil {
		t.Fatalf("verify the backup: %v\n%s", err, out)
	}
	dst := &backupInstall{t: t, dbPath: filepath.Join(t.TempDir(), "restored", "grconnect.db"), key: src.key, fake: fake}
	if out, err := dst.command("restore", "--from", backupFile); err != nil || !strings.Contains(out, "restored "+backupFile) {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	restored, _ := dst.serve()
	if got := listConnections(t, restored, apiKey); !slices.Equal(got, seeded) {
		t.Fatalf("the restored server lists %d connections, want the %d of the source", len(got), n)
	}
	// Every connection's token, as the restored server hands it out, is one
	// GetResponse accepts; and a call through its proxy works.
	for i, id := range seeded {
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if status, err := apiCall(http.MethodPost, restored+"/api/v1/connections/"+id+"/token", apiKey, &tok); status != http.StatusOK || err != nil {
			t.Fatalf("token of %s from the restored server: %d %v", id, status, err)
		}
		req, _ := http.NewRequest(http.MethodGet, fake.APIURL()+"/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GetResponse refuses the restored server's token of %s: %d", id, res.StatusCode)
		}
		if i%10 == 0 {
			if status, err := apiCall(http.MethodGet, restored+"/api/v1/connections/"+id+"/proxy/from-fields", apiKey, nil); status != http.StatusOK || err != nil {
				t.Errorf("proxy call for %s on the restored server: %d %v", id, status, err)
			}
		}
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
