package handlers_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// token asks the API for a connection's token and returns it ("" on an error status).
func (f *apiFixture) token(id string) (string, int) {
	f.t.Helper()
	r, err := f.send(http.MethodPost, "/api/v1/connections/"+id+"/token", f.key, nil, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	var tok tokenAnswer
	json.Unmarshal([]byte(r.body), &tok)
	return tok.AccessToken, r.status
}

// TestAPINeverServesAReplacedToken warms the API's caches, then changes the
// connection every way the rest of grconnect can: the next answer is always current.
func TestAPINeverServesAReplacedToken(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	// On PostgreSQL nothing is cached and the answers must be current all the same.
	if !f.store.IsPostgres() && !f.store.CanCacheRows() {
		t.Fatal("the SQLite store does not allow caching rows: this test would prove nothing")
	}
	conn := f.connect("customer-1", "")
	warm := func() {
		t.Helper()
		for range 3 {
			if _, status := f.token(conn.ID); status != http.StatusOK {
				t.Fatalf("token = %d", status)
			}
		}
	}
	current := func() string {
		t.Helper()
		access, _ := f.plaintextTokens(conn.ID)
		return access
	}
	same := func(step string) {
		t.Helper()
		if got, status := f.token(conn.ID); status != http.StatusOK || got != current() {
			t.Fatalf("after %s the token route served a replaced token (%d)", step, status)
		}
	}

	warm()
	f.op.submit("/connections/"+conn.ID, "/connections/"+conn.ID+"/refresh", nil) // the dashboard
	same("a dashboard refresh")

	warm()
	if _, err := f.tokens.RefreshIfDue(t.Context(), conn.ID, "system", alwaysDue); err != nil { // as the refresher does
		t.Fatal(err)
	}
	same("an engine refresh")

	warm()
	f.fake.RevokeRefreshTokens()
	f.tokens.RefreshIfDue(t.Context(), conn.ID, "system", alwaysDue)
	if _, status := f.token(conn.ID); status != http.StatusConflict {
		t.Fatalf("needs_reconnect served a token: %d", status)
	}
	// A reconnect through the OAuth flow stores new tokens.
	r := f.call(http.MethodPost, "/api/v1/connect-sessions", map[string]string{"connection_id": conn.ID})
	var s struct{ URL string }
	json.Unmarshal([]byte(r.body), &s)
	customer := f.browser()
	redirect, _ := f.fake.Approve(f.clientID, f.startFlow(customer, s.URL), "")
	f.callback(customer, redirect)
	same("a reconnect")

	warm()
	f.op.submit("/connections/"+conn.ID+"/disconnect", "/connections/"+conn.ID+"/disconnect", nil)
	if _, status := f.token(conn.ID); status != http.StatusConflict {
		t.Fatalf("a disconnected connection served a token: %d", status)
	}
}

// TestAPITokenCacheUnderConcurrentRefreshes hammers the token route while the engine
// refreshes: no answer to a request that started after a refresh returned may carry
// the token that refresh replaced.
func TestAPITokenCacheUnderConcurrentRefreshes(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{Rotation: getresponsetest.RotationRotate})
	conn := f.connect("customer-1", "")
	type answer struct {
		start time.Time
		token string
	}
	var (
		mu       sync.Mutex
		answers  []answer
		replaced = map[string]time.Time{} // token → when the refresh that replaced it returned
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				r, err := f.send(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", f.key, nil, nil)
				if err != nil || r.status != http.StatusOK {
					t.Errorf("token = %v %d", err, r.status)
					return
				}
				var tok tokenAnswer
				json.Unmarshal([]byte(r.body), &tok)
				mu.Lock()
				answers = append(answers, answer{start, tok.AccessToken})
				mu.Unlock()
			}
		})
	}
	for range 15 {
		before, _ := f.plaintextTokens(conn.ID)
		if _, err := f.tokens.RefreshIfDue(t.Context(), conn.ID, "system", alwaysDue); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		replaced[before] = time.Now()
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(answers) < 50 {
		t.Fatalf("only %d answers", len(answers))
	}
	for _, a := range answers {
		if at, ok := replaced[a.token]; ok && a.start.After(at) {
			t.Fatalf("a request that started %v after a refresh got the token it replaced", a.start.Sub(at))
		}
	}
}

// TestAPICachesSeeOtherProcessesWithinASecond writes through a second store on the
// same file, as another grconnect process would: its writes are not counted here,
// and show within the caches' one-second bound.
func TestAPICachesSeeOtherProcessesWithinASecond(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	f.token(conn.ID)
	f.token(conn.ID)
	other, err := models.Open(f.dbPath, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	sealed, _ := f.box.Seal("token-from-elsewhere", secrets.AAD("connection", conn.ID, "access_token"))
	if err := other.DB().Exec("UPDATE connections SET access_token_enc = ?, updated_at = ? WHERE id = ?", sealed, models.Now(), conn.ID).Error; err != nil {
		t.Fatal(err)
	}
	keys, _ := other.ListAPIKeys(t.Context())
	if err := other.RevokeAPIKey(t.Context(), keys[0].ID, "elsewhere"); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	for {
		r, _ := f.send(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", f.key, nil, nil)
		if r.status == http.StatusUnauthorized {
			break
		}
		if time.Since(written) > 1500*time.Millisecond {
			t.Fatalf("another process's key revocation unseen after %v", time.Since(written))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The token as well, with a fresh key.
	_, key, _ := f.apiKeys.Create(t.Context(), services.APIKeyInput{Name: "second", CreatedBy: "test"})
	r, _ := f.send(http.MethodPost, "/api/v1/connections/"+conn.ID+"/token", key, nil, nil)
	if !strings.Contains(r.body, "token-from-elsewhere") {
		t.Fatalf("the other process's token is not served: %s", r.body)
	}
}

// alwaysDue makes RefreshIfDue refresh whatever the connection's state: an
// automatic refresh, as the refresher's, which the explicit limit does not count.
func alwaysDue(*models.Connection, time.Time) bool { return true }
