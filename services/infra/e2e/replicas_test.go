package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// The multi-replica tests start real grconnect processes on one PostgreSQL database
// and one fake GetResponse. They run when GRCONNECT_TEST_DATABASE names a
// PostgreSQL server (CI's second pass).

// fleet is one PostgreSQL database, one fake GetResponse and an app on it.
type fleet struct {
	t     *testing.T
	dsn   string
	store *models.Store
	box   *secrets.Box
	key   []byte
	fake  *getresponsetest.Server
	app   *models.App
	base  string // the public URL every replica is configured with (the "load balancer")
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	if !modelstest.Postgres() {
		t.Skip("starts grconnect replicas on PostgreSQL: set " + modelstest.EnvDatabase)
	}
	f := &fleet{t: t, dsn: modelstest.Database(t, t.TempDir())}
	f.store = modelstest.NewAt(t, f.dsn)
	f.key = make([]byte, secrets.KeySize)
	for i := range f.key {
		f.key[i] = byte(3 * i)
	}
	f.box, _ = secrets.New(f.key)
	f.fake = getresponsetest.NewServer(getresponsetest.Options{Rotation: getresponsetest.RotationStrict})
	t.Cleanup(f.fake.Close)
	apps := services.NewApps(f.store, f.box, services.AppDefaults{AuthURL: f.fake.AuthURL(), APIURL: f.fake.APIURL()})
	var err error
	f.app, err = apps.Create(context.Background(), services.AppInput{Name: "Acme", ClientID: "acme", ClientSecret: "acme-secret"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// replica is one running grconnect process.
type replica struct {
	url string
	cmd *exec.Cmd
	log *syncLog
}

type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs one replica on addr and waits until it is ready.
func (f *fleet) start(addr string, extra ...string) *replica {
	f.t.Helper()
	cmd := exec.Command(grconnectBinary(f.t), "serve")
	cmd.Env = append(os.Environ(),
		"GRCONNECT_ADDR="+addr,
		"GRCONNECT_BASE_URL="+f.base,
		"GRCONNECT_DATABASE="+f.dsn,
		"GRCONNECT_SECRET_KEY="+base64.StdEncoding.EncodeToString(f.key),
		"GRCONNECT_GETRESPONSE_AUTH_URL="+f.fake.AuthURL(),
		"GRCONNECT_GETRESPONSE_API_URL="+f.fake.APIURL(),
	)
	cmd.Env = append(cmd.Env, extra...)
	r := &replica{url: "http://" + addr, cmd: cmd, log: &syncLog{}}
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if f.t.Failed() {
			f.t.Logf("replica %s log:\n%s", r.url, tail(r.log.String(), 4000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(r.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("replica %s not ready:\n%s", r.url, r.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// seed inserts n active connections holding real tokens from the fake, all inside
// the refresh margin.
func (f *fleet) seed(n int) {
	f.t.Helper()
	now := models.Now()
	last := now.Add(-time.Hour)
	conns := make([]models.Connection, 0, n)
	for i := range n {
		id := models.NewID("con")
		accountID := f.fake.AddAccount(getresponsetest.Account{AccountID: fmt.Sprintf("A%06d", i), Email: id + "@example.com"})
		access, refresh, err := f.fake.IssueTokens("acme", accountID)
		if err != nil {
			f.t.Fatal(err)
		}
		exp := now.Add(time.Minute + time.Duration(i)*time.Millisecond)
		c := models.Connection{ID: id, AppID: f.app.ID, AccountID: accountID, AccountEmail: id + "@example.com", Status: models.StatusActive,
			ConnectedAt: last, LastRefreshAt: &last, ExpiresAt: &exp, CreatedAt: last, UpdatedAt: last}
		c.AccessTokenEnc, _ = f.box.Seal(access, secrets.AAD("connection", id, "access_token"))
		c.RefreshTokenEnc, _ = f.box.Seal(refresh, secrets.AAD("connection", id, "refresh_token"))
		conns = append(conns, c)
	}
	if err := f.store.DB().CreateInBatches(conns, 500).Error; err != nil {
		f.t.Fatal(err)
	}
}

// refreshFleet seeds n due connections, starts replicas, and waits until every
// connection was refreshed; it returns how long that took from the replicas' start.
func refreshFleet(t *testing.T, replicas, n int) time.Duration {
	f := newFleet(t)
	f.fake.AddClient("acme", "acme-secret", "http://unused.test/oauth/callback")
	f.seed(n)
	f.base = "http://" + freeAddr(t)
	// Each replica at GetResponse's whole 80/s: the test measures grconnect, and the
	// fake has no rate limit (in production, split 80/s between the replicas).
	settings := []string{"GRCONNECT_REFRESH_RATE=80", "GRCONNECT_REFRESH_CONCURRENCY=8", "GRCONNECT_REFRESH_INTERVAL=200ms"}
	start := time.Now()
	var wg sync.WaitGroup
	for range replicas {
		wg.Go(func() { f.start(freeAddr(t), settings...) })
	}
	wg.Wait()
	ctx := context.Background()
	deadline := time.Now().Add(time.Duration(n/40+60) * time.Second)
	var pending int64
	for {
		if err := f.store.DB().WithContext(ctx).Model(&models.Connection{}).Where("last_refresh_at < ?", start.Add(-time.Second)).
			Count(&pending).Error; err != nil {
			t.Fatal(err)
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if pending != 0 {
		t.Fatalf("%d of %d connections not refreshed after %s", pending, n, elapsed)
	}
	// Let any duplicate that was in flight land before counting.
	time.Sleep(time.Second)

	if got := f.fake.Count(getresponsetest.EndpointTokenRefresh); got != n {
		t.Errorf("GetResponse saw %d refresh calls for %d connections, want exactly %d", got, n, n)
	}
	var wrong, failed, events int64
	f.store.DB().Raw(`SELECT COUNT(*) FROM connections c WHERE (SELECT COUNT(*) FROM events e
		WHERE e.connection_id = c.id AND e.type = 'refresh.succeeded') <> 1`).Scan(&wrong)
	f.store.DB().Raw(`SELECT COUNT(*) FROM events WHERE type = 'refresh.succeeded'`).Scan(&events)
	f.store.DB().Model(&models.Connection{}).Where("status <> ? OR lease_owner <> '' OR expires_at < ?", models.StatusActive, time.Now().Add(30*time.Minute)).Count(&failed)
	if wrong != 0 || events != int64(n) || failed != 0 {
		t.Errorf("%d connections without exactly one refresh event (%d events for %d connections); %d not active with a fresh token and no lease",
			wrong, events, n, failed)
	}
	t.Logf("%d replica(s): %d connections refreshed exactly once in %s (%.0f refreshes/s); %d refresh calls, %d refresh events",
		replicas, n, elapsed.Round(10*time.Millisecond), float64(n)/elapsed.Seconds(), f.fake.Count(getresponsetest.EndpointTokenRefresh), events)
	return elapsed
}

// TestReplicasRefreshEachConnectionOnce runs two grconnect processes on 5,000 due
// connections: each is refreshed exactly once (one token call, one event), none is
// lost. One replica on 2,000 connections gives the single-process figure.
func TestReplicasRefreshEachConnectionOnce(t *testing.T) {
	t.Run("two replicas, 5000 connections", func(t *testing.T) { refreshFleet(t, 2, 5000) })
	t.Run("one replica, 2000 connections", func(t *testing.T) { refreshFleet(t, 1, 2000) })
}

var (
	csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	linkURL   = regexp.MustCompile(`id="link-url" type="text" readonly value="([^"]+)"`)
)

// agent is a browser: one cookie jar for every replica (they share a host, as
// behind a load balancer), never following redirects by itself.
type agent struct {
	t      testing.TB
	client *http.Client
}

func newAgent(t testing.TB) *agent {
	jar, _ := cookiejar.New(nil)
	return &agent{t: t, client: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (a *agent) do(method, u string, form url.Values) (int, string, string) {
	a.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header.Get("Location")
}

// submit loads page, scrapes its CSRF field and posts form to action.
func (a *agent) submit(page, action string, form url.Values) (int, string, string) {
	a.t.Helper()
	_, body, _ := a.do(http.MethodGet, page, nil)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		a.t.Fatalf("no CSRF field on %s", page)
	}
	form.Set("_csrf", m[1])
	return a.do(http.MethodPost, action, form)
}

// TestReplicasShareSessionsAndConnectFlows signs in on A and works on B; makes a
// connect link on B; the customer opens it and starts the authorization on A, and
// GetResponse's redirect lands on B, which completes it.
func TestReplicasShareSessionsAndConnectFlows(t *testing.T) {
	f := newFleet(t)
	addrA := freeAddr(t)
	f.base = "http://" + addrA
	f.fake.AddClient("acme", "acme-secret", f.base+"/oauth/callback")
	var a, b *replica
	var wg sync.WaitGroup
	wg.Go(func() { a = f.start(addrA) })
	wg.Go(func() { b = f.start(freeAddr(t)) })
	wg.Wait()
	if t.Failed() {
		return
	}

	op := newAgent(t)
	// The setup URL serve printed; any replica accepts it (it derives from the shared key).
	setupToken := services.NewOperators(f.store, f.box).SetupToken()
	if status, body, loc := op.submit(a.url+"/setup?token="+setupToken, a.url+"/setup", url.Values{"email": {"ann@example.com"},
		"password": {"a long password 123"}, "password_confirm": {"a long password 123"}, "setup_token": {setupToken}}); status != http.StatusSeeOther || loc != "/" {
		t.Fatalf("setup on A: %d %s\n%s", status, loc, body)
	}
	// The session made on A works on B.
	if status, _, loc := op.do(http.MethodGet, b.url+"/apps/"+f.app.ID, nil); status != http.StatusOK {
		t.Fatalf("B answered A's session with %d %s", status, loc)
	}
	status, body, loc := op.submit(b.url+"/apps/"+f.app.ID, b.url+"/apps/"+f.app.ID+"/links", url.Values{"customer_ref": {"customer-7"}})
	if status != http.StatusSeeOther {
		t.Fatalf("create link on B: %d\n%s", status, body)
	}
	_, page, _ := op.do(http.MethodGet, b.url+loc, nil)
	m := linkURL.FindStringSubmatch(page)
	if m == nil || !strings.HasPrefix(m[1], f.base+"/connect/") {
		t.Fatalf("no connect link on B's page")
	}
	linkPath := strings.TrimPrefix(m[1], f.base)

	customer := newAgent(t)
	status, _, authorize := customer.submit(a.url+linkPath, a.url+linkPath, url.Values{})
	if status != http.StatusSeeOther || !strings.HasPrefix(authorize, f.fake.AuthURL()) {
		t.Fatalf("start on A: %d → %q", status, authorize)
	}
	au, _ := url.Parse(authorize)
	redirect, err := f.fake.Approve("acme", au.Query().Get("state"), "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(redirect, f.base+"/oauth/callback?") {
		t.Fatalf("GetResponse redirected to %q", redirect)
	}
	status, body, _ = customer.do(http.MethodGet, b.url+strings.TrimPrefix(redirect, f.base), nil)
	if status != http.StatusOK || !strings.Contains(body, `data-testid="connect-success"`) {
		t.Fatalf("callback on B: %d\n%s", status, body)
	}
	var conn models.Connection
	if err := f.store.DB().Where("customer_ref = ?", "customer-7").First(&conn).Error; err != nil || conn.Status != models.StatusActive {
		t.Fatalf("connection after the flow: %+v, %v", conn, err)
	}
	// Both replicas show it to the operator.
	for _, r := range []*replica{a, b} {
		if _, list, _ := op.do(http.MethodGet, r.url+"/connections", nil); !strings.Contains(list, conn.AccountEmail) {
			t.Errorf("%s does not list the new connection", r.url)
		}
	}
}
