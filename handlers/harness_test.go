package handlers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/secrets"
	"github.com/grconnect/grconnect/services/infra/server"
	"github.com/grconnect/grconnect/services/tokens"
)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	discard bool // benchmarks: keep nothing
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.discard {
		return len(p), nil
	}
	return b.buf.Write(p)
}

// stop drops all further output (a benchmark's millions of request lines).
func (b *syncBuffer) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.discard = true
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testApp is a whole grconnect behind a real HTTP server.
type testApp struct {
	t       testing.TB
	srv     *httptest.Server
	store   *models.Store
	box     *secrets.Box
	cfg     *config.Config
	logs    *syncBuffer
	dbPath  string
	fake    *getresponsetest.Server
	bulk    *tokens.Bulk
	tokens  *tokens.Tokens
	apiKeys *services.APIKeys
	built   *server.Server
	// pages holds every response body any browser received, for "never shown" checks.
	pages   []string
	pagesMu sync.Mutex
}

type option func(*config.Config)

func newTestApp(t testing.TB, opts ...option) *testApp {
	t.Helper()
	return newTestAppWith(t, getresponsetest.Options{}, opts...)
}

// newStorage gives a test its own database and a random secret key.
func newStorage(t testing.TB) (dir, dbPath string, store *models.Store, key []byte, box *secrets.Box) {
	t.Helper()
	dir = t.TempDir()
	dbPath = modelstest.Database(t, dir)
	store = modelstest.NewAt(t, dbPath)
	key = make([]byte, secrets.KeySize)
	rand.Read(key)
	box, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return dir, dbPath, store, key, box
}

// newTestAppWith builds the whole stack behind a real HTTP server, with a fake
// GetResponse configured by fo.
func newTestAppWith(t testing.TB, fo getresponsetest.Options, opts ...option) *testApp {
	t.Helper()
	fake := getresponsetest.NewServer(fo)
	t.Cleanup(fake.Close)
	return startTestApp(t, func(cfg *config.Config) {
		cfg.GetResponseAuthURL, cfg.GetResponseAPIURL = fake.AuthURL(), fake.APIURL()
		for _, o := range opts {
			o(cfg)
		}
	}, fake)
}

// startTestApp builds grconnect with server.New, as serve does, behind a real HTTP
// server on a loopback port; configure adjusts the configuration first.
func startTestApp(t testing.TB, configure func(*config.Config), fake *getresponsetest.Server) *testApp {
	t.Helper()
	dir, dbPath, store, key, box := newStorage(t)
	srv := httptest.NewUnstartedServer(nil)
	cfg := &config.Config{
		Addr: ":0", BaseURL: "http://" + srv.Listener.Addr().String(), Database: dbPath, DataDir: dir, SecretKey: key,
		GetResponseAuthURL: "https://app.getresponse.com/oauth2_authorize.html", GetResponseAPIURL: "https://api.getresponse.com/v3",
		RefreshMargin: 10 * time.Minute, Keepalive: 24 * time.Hour, RefreshRate: 80, ProxyMaxWait: tokens.DefaultProxyMaxWait,
		TimelineRetention: 90 * 24 * time.Hour, // as installs have it (the timeline's last page says so)
	}
	configure(cfg)
	if err := cfg.PrepareBackupDir(); err != nil { // as serve does before server.New
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	built, err := server.New(t.Context(), server.Options{
		Config: cfg, Store: store, Box: box, Log: log,
		PasswordCost: bcrypt.MinCost, TokenTimeout: 2 * time.Second, NoDemoSeed: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The background workers are not started: tests drive the refresher and the
	// webhook sender themselves. Stop still ends bulk jobs before the database closes.
	t.Cleanup(built.Stop)
	// The proxy shares its limits with other replicas (on PostgreSQL) in the background.
	proxyCtx, stopProxy := context.WithCancel(context.Background())
	var proxyDone sync.WaitGroup
	proxyDone.Go(func() { built.Proxy.Run(proxyCtx) })
	t.Cleanup(func() { stopProxy(); proxyDone.Wait() })
	srv.Config.Handler = built.Handler
	srv.Start()
	t.Cleanup(srv.Close)
	return &testApp{t: t, srv: srv, store: store, box: box, cfg: cfg, logs: logs, dbPath: dbPath, fake: fake,
		tokens: built.Tokens, apiKeys: built.APIKeys, bulk: built.Bulk, built: built}
}

// browser is one user agent: its own cookie jar, never following redirects by itself.
type browser struct {
	t      testing.TB
	app    *testApp
	client *http.Client
	// password is the signed-in operator's, typed by submit into a form that asks
	// for it (current_password), as the operator would.
	password string
}

func (a *testApp) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: a.t, app: a, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// response is a fully read HTTP response.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) location() string { return r.header.Get("Location") }

func (b *browser) do(req *http.Request) response {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.app.pagesMu.Lock()
	b.app.pages = append(b.app.pages, string(body))
	b.app.pagesMu.Unlock()
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (b *browser) get(path string) response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.app.srv.URL+path, nil)
	return b.do(req)
}

// post submits a form as is (no CSRF token added).
func (b *browser) post(path string, form url.Values) response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.app.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// submit loads page, scrapes its CSRF token and posts form to action, like a person would.
func (b *browser) submit(page, action string, form url.Values) response {
	b.t.Helper()
	r := b.get(page)
	m := csrfRe.FindStringSubmatch(r.body)
	if m == nil {
		b.t.Fatalf("no CSRF field on %s (status %d)", page, r.status)
	}
	form = maps.Clone(form) // the caller's form stays as it was for its next post
	if form == nil {
		form = url.Values{}
	}
	form.Set("_csrf", m[1])
	if b.password != "" && !form.Has("current_password") && strings.Contains(r.body, `name="current_password"`) {
		form.Set("current_password", b.password)
	}
	return b.post(action, form)
}

// setupURL is the one-time setup URL that serve prints on a fresh install.
func (a *testApp) setupURL() string {
	return "/setup?token=" + url.QueryEscape(a.built.Operators.SetupToken())
}

// setup creates the first operator through /setup and returns the signed-in browser.
func (a *testApp) setup(email, password string) *browser {
	a.t.Helper()
	b := a.browser()
	r := b.submit(a.setupURL(), "/setup", url.Values{"email": {email}, "password": {password}, "password_confirm": {password},
		"setup_token": {a.built.Operators.SetupToken()}})
	if r.status != http.StatusSeeOther || r.location() != "/" {
		a.t.Fatalf("setup: %d %s\n%s\nlog:\n%s", r.status, r.location(), r.body, a.logs)
	}
	b.password = password
	return b
}

// signIn signs in a fresh browser.
func (a *testApp) signIn(email, password string) *browser {
	a.t.Helper()
	b := a.browser()
	r := b.submit("/login", "/login", url.Values{"email": {email}, "password": {password}})
	if r.status != http.StatusSeeOther {
		a.t.Fatalf("sign in as %s: %d\n%s", email, r.status, r.body)
	}
	b.password = password
	return b
}

func mustContain(t testing.TB, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func mustNotContain(t testing.TB, body string, bads ...string) {
	t.Helper()
	for _, w := range bads {
		if strings.Contains(body, w) {
			t.Errorf("page contains %q", w)
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
