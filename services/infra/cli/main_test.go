package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// waitLimit bounds every wait for the server; reaching it fails the test.
const waitLimit = 15 * time.Second

// testEnv returns a getenv reading from m.
func testEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// dbEnv returns an environment whose database is a fresh file under a new data
// directory, and that database's path.
func dbEnv(t *testing.T) (map[string]string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "grconnect.db")
	return map[string]string{"GRCONNECT_DATABASE": path}, path
}

// result is what one run of a command printed and returned.
type result struct {
	stdout, stderr string
	err            error
}

// runCmd runs the command line args (without the program name) to completion.
func runCmd(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"grconnect"}, args...), testEnv(env), strings.NewReader(stdin), &stdout, &stderr)
	return result{stdout.String(), stderr.String(), err}
}

// openStore opens the database a command wrote, closed when the test ends.
func openStore(t *testing.T, path string) *models.Store {
	t.Helper()
	store, err := models.Open(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// listenLog is a concurrency-safe stderr that reports the address from the
// "grconnect listening" log line.
type listenLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	addr  chan string
	found bool
}

var listenLine = regexp.MustCompile(`msg="grconnect listening" addr=(\S+)`)

func newListenLog() *listenLog { return &listenLog{addr: make(chan string, 1)} }

func (l *listenLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.buf.Write(p)
	if !l.found {
		if m := listenLine.FindStringSubmatch(l.buf.String()); m != nil {
			l.found = true
			l.addr <- m[1]
		}
	}
	return n, err
}

func (l *listenLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// server is a running "grconnect serve".
type serveProc struct {
	url    string
	log    *listenLog
	cancel context.CancelFunc
	done   chan error
}

// startServe runs serve on a free loopback port and waits until it listens. The
// server is stopped when the test ends, if the test has not stopped it.
func startServe(t *testing.T, env map[string]string, args ...string) *serveProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serveProc{log: newListenLog(), cancel: cancel, done: make(chan error, 1)}
	argv := append([]string{"grconnect", "serve", "--addr", "127.0.0.1:0"}, args...)
	go func() { s.done <- run(ctx, argv, testEnv(env), strings.NewReader(""), io.Discard, s.log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(waitLimit):
			t.Errorf("serve did not stop within %v", waitLimit)
		}
	})
	select {
	case addr := <-s.log.addr:
		s.url = "http://" + addr
	case err := <-s.done:
		s.done <- err // let the cleanup see it
		t.Fatalf("serve returned before listening: %v\n%s", err, s.log)
	case <-time.After(waitLimit):
		t.Fatalf("serve did not listen within %v\n%s", waitLimit, s.log)
	}
	return s
}

// stop cancels the context and returns what run returned.
func (s *serveProc) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.done <- err // let the cleanup see it
		return err
	case <-time.After(waitLimit):
		t.Fatalf("serve did not return within %v of cancelling\n%s", waitLimit, s.log)
		return nil
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestServeFirstStartProbesAndShutdown(t *testing.T) {
	env, dbPath := dbEnv(t)
	dataDir := filepath.Dir(dbPath)
	s := startServe(t, env)

	if code, body := get(t, s.url+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s, want 200", code, body)
	}
	code, body := get(t, s.url+"/readyz")
	if code != http.StatusOK || strings.TrimSpace(body) != `{"status":"ready"}` {
		t.Errorf(`/readyz = %d %s, want 200 {"status":"ready"}`, code, body)
	}

	// First start: the data directory and a 0600 key file exist, and the log says so.
	keyPath := filepath.Join(dataDir, "secret.key")
	info, err := os.Stat(keyPath)
	if err != nil {
		t.Fatalf("secret.key not created: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("secret.key mode = %v, want 0600", perm)
	}
	if _, err := os.Stat(dbPath); err != nil {
		t.Errorf("database not created: %v", err)
	}
	logText := s.log.String()
	if !strings.Contains(logText, "generated a new secret key") || !strings.Contains(logText, keyPath) {
		t.Errorf("first start did not log the generated key and its path:\n%s", logText)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logText, strings.TrimSpace(string(key))) {
		t.Error("the log shows the secret key")
	}

	if err := s.stop(t); err != nil {
		t.Fatalf("run after cancel = %v, want nil\n%s", err, s.log)
	}
	if resp, err := http.Get(s.url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("server still answers after run returned")
	}

	// A second start reuses the key: nothing generated, same file.
	s2 := startServe(t, env)
	if strings.Contains(s2.log.String(), "generated a new secret key") {
		t.Errorf("second start generated another key:\n%s", s2.log)
	}
	if code, _ := get(t, s2.url+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz on second start = %d", code)
	}
	if again, _ := os.ReadFile(keyPath); !bytes.Equal(again, key) {
		t.Error("secret.key changed on the second start")
	}
	if err := s2.stop(t); err != nil {
		t.Fatalf("second run after cancel = %v", err)
	}
}

// consentMarker is on the simulated GetResponse's authorize page.
const consentMarker = `data-testid="consent-form"`

func TestServeDemo(t *testing.T) {
	env, dbPath := dbEnv(t)
	s := startServe(t, env, "--demo")
	if !strings.Contains(s.log.String(), "demo=true") {
		t.Errorf("--demo not reflected in the start log:\n%s", s.log)
	}
	if code, body := get(t, s.url+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %s", code, body)
	}

	// A ready-made demo app points at the simulated GetResponse, which is served.
	app, err := openStore(t, dbPath).DemoApp(context.Background())
	if err != nil {
		t.Fatalf("no demo app: %v", err)
	}
	const base = "http://localhost:8080/demo-getresponse"
	if app.AuthURL != base+"/oauth2_authorize.html" || app.APIURL != base+"/v3" {
		t.Errorf("demo app URLs %q %q, want them under %s", app.AuthURL, app.APIURL, base)
	}
	authorize := s.url + "/demo-getresponse/oauth2_authorize.html?response_type=code&state=s&client_id=" + app.ClientID
	if code, body := get(t, authorize); code != http.StatusOK || !strings.Contains(body, consentMarker) || !strings.Contains(body, app.ClientID) {
		t.Errorf("simulated authorize page = %d\n%s", code, body)
	}
	if err := s.stop(t); err != nil {
		t.Fatalf("run after cancel = %v", err)
	}

	// Without --demo the simulator is not served.
	plain := startServe(t, env)
	// (Unknown paths send a signed-out visitor to /login, so look at the page, not the status.)
	if _, body := get(t, plain.url+"/demo-getresponse/oauth2_authorize.html?response_type=code&state=s&client_id="+app.ClientID); strings.Contains(body, consentMarker) {
		t.Error("the simulated GetResponse is served without --demo")
	}
	if err := plain.stop(t); err != nil {
		t.Fatalf("run after cancel = %v", err)
	}
}

func TestServeInvalidConfig(t *testing.T) {
	tests := []struct {
		env, value, flag string
	}{
		{"GRCONNECT_REFRESH_MARGIN", "-1", "--refresh-margin"},
		{"GRCONNECT_KEEPALIVE", "soon", "--keepalive"},
		{"GRCONNECT_BASE_URL", "localhost:8080", "--base-url"},
		{"GRCONNECT_ADDR", "8080", "--addr"},
		{"GRCONNECT_SECRET_KEY", "c2hvcnQ=", "--secret-key"},
		{"GRCONNECT_GETRESPONSE_API_URL", "api.getresponse.com", "--getresponse-api-url"},
		{"GRCONNECT_PREVIOUS_SECRET_KEYS", "c2hvcnQ=", "--previous-secret-keys"},
		{"GRCONNECT_TRUSTED_PROXIES", "proxy.internal", "--trusted-proxies"},
		{"GRCONNECT_METRICS_TOKEN", "short", "--metrics-token"},
		{"GRCONNECT_WEBHOOK_ALLOW_PRIVATE", "maybe", "--webhook-allow-private"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			env, dbPath := dbEnv(t)
			env[tt.env] = tt.value
			args := []string{"serve"}
			if tt.env == "GRCONNECT_ADDR" {
				delete(env, tt.env)
				args = append(args, "--addr", tt.value)
			}
			r := runCmd(t, env, "", args...)
			if r.err == nil {
				t.Fatalf("%s=%q: run returned nil", tt.env, tt.value)
			}
			msg := r.err.Error()
			if !strings.Contains(msg, tt.env) || !strings.Contains(msg, tt.flag) {
				t.Errorf("error %q does not name %s (%s)", msg, tt.env, tt.flag)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			// A bad setting stops the process before it touches the disk.
			if _, err := os.Stat(filepath.Dir(dbPath)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("data directory created despite invalid config (stat: %v)", err)
			}
		})
	}
}

func TestServeDataDirUnderFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, map[string]string{"GRCONNECT_DATABASE": filepath.Join(file, "grconnect.db")}, "", "serve", "--addr", "127.0.0.1:0")
	if r.err == nil || !strings.Contains(r.err.Error(), "GRCONNECT_DATABASE") || strings.Contains(r.err.Error(), "\n") {
		t.Fatalf("run = %v, want a one-line error naming GRCONNECT_DATABASE", r.err)
	}
}

var (
	operatorID = regexp.MustCompile(`^op_[a-z2-7]+\n$`)
	appID      = regexp.MustCompile(`^app_[a-z2-7]+\n$`)
)

func TestOperatorCreate(t *testing.T) {
	env, dbPath := dbEnv(t)
	const password = "correct-horse-battery-staple"

	r := runCmd(t, env, password+"\n", "operator", "create", "--email", "ann@example.com", "--password-stdin")
	if r.err != nil {
		t.Fatalf("operator create: %v\nstderr: %s", r.err, r.stderr)
	}
	if !operatorID.MatchString(r.stdout) {
		t.Fatalf("stdout = %q, want one op_… ID", r.stdout)
	}
	for name, text := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
		if strings.Contains(text, password) {
			t.Errorf("%s shows the password", name)
		}
	}

	op, err := openStore(t, dbPath).OperatorByEmail(context.Background(), "ann@example.com")
	if err != nil {
		t.Fatalf("operator not stored: %v", err)
	}
	if op.ID != strings.TrimSpace(r.stdout) {
		t.Errorf("stored operator ID %q, printed %q", op.ID, r.stdout)
	}
	if op.PasswordHash == "" || strings.Contains(op.PasswordHash, password) {
		t.Errorf("password stored as %q, want a hash", op.PasswordHash)
	}

	again := runCmd(t, env, password+"\n", "operator", "create", "--email", "ANN@example.com", "--password-stdin")
	if again.err == nil {
		t.Fatalf("a second operator with the same email was created: %q", again.stdout)
	}
	if again.stdout != "" {
		t.Errorf("failed create printed %q", again.stdout)
	}
	if strings.Contains(again.stderr, "generated a new secret key") {
		t.Error("a second command generated another secret key")
	}
	// One plain line naming the address, not the database's warning.
	if want := "an operator with e-mail ann@example.com already exists"; !strings.HasPrefix(again.err.Error(), want) || strings.Contains(again.err.Error(), "\n") {
		t.Errorf("duplicate error = %q, want one line starting %q", again.err, want)
	}
	if strings.Contains(again.stderr, "INSERT") || strings.Contains(again.stderr, "duplicated key") {
		t.Errorf("duplicate create logged SQL: %s", again.stderr)
	}
}

func TestOperatorResetPassword(t *testing.T) {
	env, dbPath := dbEnv(t)
	env["GRCONNECT_BASE_URL"] = "https://connect.example.com"
	if r := runCmd(t, env, "correct-horse-battery-staple\n", "operator", "create", "--email", "ann@example.com", "--password-stdin"); r.err != nil {
		t.Fatalf("operator create: %v\n%s", r.err, r.stderr)
	}
	r := runCmd(t, env, "", "operator", "reset-password", "--email", "ANN@example.com")
	if r.err != nil {
		t.Fatalf("reset-password: %v\nstderr: %s", r.err, r.stderr)
	}
	m := regexp.MustCompile(`^https://connect\.example\.com/reset-password/([a-z2-7]{40,})\n$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("stdout = %q, want one reset link", r.stdout)
	}
	if !strings.Contains(r.stderr, "works once") {
		t.Errorf("stderr = %q, want when the link stops working", r.stderr)
	}
	store := openStore(t, dbPath)
	// The command line's link is on record (issue 21): made by "cli", for Ann, valid an hour at most.
	var made models.AuditEntry
	if err := store.DB().Where("action = ?", models.AuditResetLinkCreated).First(&made).Error; err != nil {
		t.Fatalf("no audit entry for the link: %v", err)
	}
	if made.Actor != services.CLIActor || !strings.Contains(made.Details, "ann@example.com") {
		t.Errorf("audit entry = %+v", made)
	}
	var link models.PasswordReset
	store.DB().First(&link)
	if link.ExpiresAt.Sub(link.CreatedAt) > time.Hour || link.CreatedBy != services.CLIActor {
		t.Errorf("link made by %q lives %s", link.CreatedBy, link.ExpiresAt.Sub(link.CreatedAt))
	}
	box, err := secrets.New(make([]byte, secrets.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	ops := services.NewOperators(store, box)
	if _, err := ops.ResetPassword(context.Background(), m[1], "a brand new password", "a brand new password"); err != nil {
		t.Fatalf("using the printed link: %v", err)
	}
	if _, _, err := ops.Authenticate(context.Background(), services.SignIn{Email: "ann@example.com", Password: "a brand new password", IP: "127.0.0.1"}); err != nil {
		t.Fatalf("the new password does not sign in: %v", err)
	}
	if _, err := ops.ResetPassword(context.Background(), m[1], "another password!", "another password!"); !errors.Is(err, services.ErrResetLinkInvalid) {
		t.Fatalf("second use of the link = %v, want ErrResetLinkInvalid", err)
	}
	var stored string
	if err := store.DB().Raw("SELECT token_hash FROM password_resets").Scan(&stored).Error; err != nil || stored == "" || strings.Contains(stored, m[1]) {
		t.Fatalf("stored token %q (%v), want only a hash", stored, err)
	}

	if r := runCmd(t, env, "", "operator", "reset-password", "--email", "nobody@example.com"); r.err == nil || !strings.Contains(r.err.Error(), "no operator has the e-mail nobody@example.com") || r.stdout != "" {
		t.Fatalf("unknown email: err %v, stdout %q", r.err, r.stdout)
	}
	if r := runCmd(t, env, "", "operator", "reset-password"); r.err == nil || !strings.Contains(r.err.Error(), "usage") {
		t.Fatalf("no --email: %v", r.err)
	}
	if r := runCmd(t, env, "", "help"); !strings.Contains(r.stdout, "grconnect operator reset-password --email E") {
		t.Fatalf("help does not list reset-password:\n%s", r.stdout)
	}
}

func TestOperatorCreateUsageErrors(t *testing.T) {
	tests := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"no --password-stdin", "correct-horse-battery\n", []string{"--email", "ann@example.com"}, "usage"},
		{"no --email", "correct-horse-battery\n", []string{"--password-stdin"}, "usage"},
		{"empty stdin", "", []string{"--email", "ann@example.com", "--password-stdin"}, "no password"},
		{"short password", "short\n", []string{"--email", "ann@example.com", "--password-stdin"}, "password"},
		{"bad email", "correct-horse-battery\n", []string{"--email", "not-an-email", "--password-stdin"}, "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, dbPath := dbEnv(t)
			r := runCmd(t, env, tt.stdin, append([]string{"operator", "create"}, tt.args...)...)
			if r.err == nil {
				t.Fatalf("operator create %q succeeded: %q", tt.args, r.stdout)
			}
			if !strings.Contains(r.err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", r.err, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if _, err := os.Stat(dbPath); err == nil {
				if n, err := openStore(t, dbPath).CountOperators(context.Background()); err == nil && n != 0 {
					t.Errorf("%d operators stored after a failed create", n)
				}
			}
		})
	}
}

func TestAppCreate(t *testing.T) {
	env, dbPath := dbEnv(t)
	const secret = "Sup3r-Secret-Client-Value-9f8e7d"

	r := runCmd(t, env, secret+"\n", "app", "create", "--name", "MyTemplateMaker", "--client-id", "cid-123",
		"--client-secret-stdin", "--return-origin", "https://app.example.com", "--return-origin", "http://localhost:3000")
	if r.err != nil {
		t.Fatalf("app create: %v\nstderr: %s", r.err, r.stderr)
	}
	if !appID.MatchString(r.stdout) {
		t.Fatalf("stdout = %q, want one app_… ID", r.stdout)
	}
	for name, text := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the client secret", name)
		}
	}

	app, err := openStore(t, dbPath).AppByID(context.Background(), strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatalf("app not stored: %v", err)
	}
	if app.Name != "MyTemplateMaker" || app.ClientID != "cid-123" || app.Edition != "standard" {
		t.Errorf("stored app = %q %q %q", app.Name, app.ClientID, app.Edition)
	}
	if app.AuthURL != "https://app.getresponse.com/oauth2_authorize.html" || app.APIURL != "https://api.getresponse.com/v3" {
		t.Errorf("stored URLs %q %q, want the configured defaults", app.AuthURL, app.APIURL)
	}
	if got := app.Origins(); len(got) != 2 || got[0] != "https://app.example.com" || got[1] != "http://localhost:3000" {
		t.Errorf("stored return origins %q", got)
	}
	if app.ClientSecretEnc == "" || strings.Contains(app.ClientSecretEnc, secret) ||
		strings.Contains(app.ClientSecretEnc, base64.RawURLEncoding.EncodeToString([]byte(secret))) {
		t.Errorf("client secret stored as %q, want it sealed", app.ClientSecretEnc)
	}
}

func TestAppCreateUsesConfiguredDefaults(t *testing.T) {
	env, dbPath := dbEnv(t)
	env["GRCONNECT_GETRESPONSE_AUTH_URL"] = "http://auth.test/authorize"
	r := runCmd(t, env, "client-secret\n", "app", "create", "--name", "N", "--client-id", "cid",
		"--client-secret-stdin", "--getresponse-api-url", "http://api.test/v3/")
	if r.err != nil {
		t.Fatalf("app create: %v", r.err)
	}
	app, err := openStore(t, dbPath).AppByID(context.Background(), strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	if app.AuthURL != "http://auth.test/authorize" || app.APIURL != "http://api.test/v3" {
		t.Errorf("stored URLs %q %q, want the configured defaults", app.AuthURL, app.APIURL)
	}
}

func TestAppCreateErrors(t *testing.T) {
	const secret = "Another-Secret-Value-77aa"
	tests := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"origin with path", secret + "\n", []string{"--name", "N", "--client-id", "cid", "--client-secret-stdin", "--return-origin", "https://app.example.com/back"}, "return origin"},
		{"origin not http", secret + "\n", []string{"--name", "N", "--client-id", "cid", "--client-secret-stdin", "--return-origin", "javascript:alert(1)"}, "return origin"},
		{"no --client-secret-stdin", secret + "\n", []string{"--name", "N", "--client-id", "cid"}, "usage"},
		{"no --name", secret + "\n", []string{"--client-id", "cid", "--client-secret-stdin"}, "usage"},
		{"empty stdin", "", []string{"--name", "N", "--client-id", "cid", "--client-secret-stdin"}, "no client secret"},
		{"bad edition", secret + "\n", []string{"--name", "N", "--client-id", "cid", "--client-secret-stdin", "--edition", "gold"}, "edition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, dbPath := dbEnv(t)
			r := runCmd(t, env, tt.stdin, append([]string{"app", "create"}, tt.args...)...)
			if r.err == nil {
				t.Fatalf("app create %q succeeded: %q", tt.args, r.stdout)
			}
			if !strings.Contains(r.err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", r.err, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			// main prints the error to stderr: it must not carry the secret either.
			for name, text := range map[string]string{"stderr": r.stderr, "error": r.err.Error()} {
				if strings.Contains(text, secret) {
					t.Errorf("%s shows the client secret: %q", name, text)
				}
			}
			if _, err := os.Stat(dbPath); err == nil {
				if apps, err := openStore(t, dbPath).ListApps(context.Background()); err == nil && len(apps) != 0 {
					t.Errorf("%d apps stored after a failed create", len(apps))
				}
			}
		})
	}
}

func TestUnknownCommands(t *testing.T) {
	tests := [][]string{
		{"frobnicate"},
		{"operator"},
		{"operator", "delete"},
		{"app", "list"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			env, dbPath := dbEnv(t)
			r := runCmd(t, env, "", args...)
			if r.err == nil || !strings.Contains(r.err.Error(), "unknown command") {
				t.Fatalf("run %q = %v, want an unknown command error", args, r.err)
			}
			if _, err := os.Stat(filepath.Dir(dbPath)); !errors.Is(err, os.ErrNotExist) {
				t.Error("an unknown command touched the data directory")
			}
		})
	}
}

func TestHelpCommandPrintsUsage(t *testing.T) {
	r := runCmd(t, nil, "", "help")
	if r.err != nil {
		t.Fatalf("help: %v", r.err)
	}
	for _, want := range []string{"serve", "operator create", "app create"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("usage lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestServeHelpHidesSecretKey(t *testing.T) {
	const key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	r := runCmd(t, map[string]string{"GRCONNECT_SECRET_KEY": key}, "", "serve", "--help")
	if !strings.Contains(r.stderr, "-secret-key") {
		t.Fatalf("serve --help printed no flags:\n%s", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, key) || strings.Contains(r.stdout+r.stderr, strings.TrimRight(key, "=")) {
		t.Errorf("serve --help shows the configured secret key:\n%s", r.stderr)
	}
}

func TestDashHelpIsNotAFailure(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"serve", "-h"}, {"operator", "create", "-h"}, {"app", "create", "--help"}} {
		r := runCmd(t, nil, "", args...)
		if r.err != nil && !errors.Is(r.err, ErrHelp) {
			t.Errorf("%v: %v", args, r.err)
		}
		if r.stdout+r.stderr == "" {
			t.Errorf("%v printed no help", args)
		}
	}
}

func TestAPIKeyCreate(t *testing.T) {
	env, dbPath := dbEnv(t)
	r := runCmd(t, env, "", "apikey", "create", "--name", "billing backend")
	if r.err != nil {
		t.Fatalf("apikey create: %v\nstderr: %s", r.err, r.stderr)
	}
	key := strings.TrimSpace(r.stdout)
	if !regexp.MustCompile(`^grc_[a-z0-9]{8}_[a-z0-9]{52}$`).MatchString(key) || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("stdout = %q, want one key", r.stdout)
	}
	if strings.Contains(r.stderr, key) {
		t.Error("stderr shows the key")
	}
	store := openStore(t, dbPath)
	keys, err := store.ListAPIKeys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("stored keys = %v, %v", keys, err)
	}
	if k := keys[0]; k.Name != "billing backend" || !strings.HasPrefix(key, k.Prefix+"_") || k.KeyHash == "" || strings.Contains(k.KeyHash, key[13:]) {
		t.Fatalf("stored %+v", k)
	}
	// The printed key is the stored one.
	if _, err := services.NewAPIKeys(store, slog.New(slog.DiscardHandler)).Verify(context.Background(), key, "127.0.0.1"); err != nil {
		t.Fatalf("the printed key does not verify: %v", err)
	}
	second := runCmd(t, env, "", "apikey", "create", "--name", "other")
	if second.err != nil || strings.TrimSpace(second.stdout) == key {
		t.Fatalf("second key = %q, %v", second.stdout, second.err)
	}

	for _, args := range [][]string{{"apikey", "create"}, {"apikey", "create", "--name", " "}, {"apikey", "create", "--name", "x", "extra"}, {"apikey", "list"}} {
		r := runCmd(t, env, "", args...)
		if r.err == nil || r.stdout != "" {
			t.Errorf("%q = %q, %v; want an error", args, r.stdout, r.err)
		}
	}
	if r := runCmd(t, env, "", "help"); !strings.Contains(r.stdout, "grconnect apikey create --name N") {
		t.Error("usage does not list apikey create")
	}
}

// TestAPIKeyCreateWithScopesAppAndExpiry: apikey create takes --scope (repeated),
// --app and --expires, prints the key once and what it may do on stderr, and
// refuses an unknown scope, an unknown app or a bad duration with one line
// naming the flag.
func TestAPIKeyCreateWithScopesAppAndExpiry(t *testing.T) {
	env, dbPath := dbEnv(t)
	if r := runCmd(t, env, "", "apikey", "create", "--name", "first"); r.err != nil { // makes the install's key
		t.Fatal(r.err)
	}
	store := openStore(t, dbPath)
	now := time.Now().UTC()
	if err := store.DB().Exec(`INSERT INTO apps (id, name, client_id, client_secret_enc, edition, auth_url, api_url, created_at, updated_at)
		VALUES ('app_acme', 'Acme', 'c1', 'x', 'standard', 'https://a/', 'https://b/v3', ?, ?)`, now, now).Error; err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, env, "", "apikey", "create", "--name", "tokens", "--scope", "tokens:read", "--scope", "proxy", "--app", "app_acme", "--expires", "90d")
	if r.err != nil {
		t.Fatalf("apikey create: %v\n%s", r.err, r.stderr)
	}
	key := strings.TrimSpace(r.stdout)
	if !strings.Contains(r.stderr, "scopes tokens:read, proxy") || !strings.Contains(r.stderr, `only the app "Acme"`) || !strings.Contains(r.stderr, "expires") {
		t.Fatalf("stderr = %q", r.stderr)
	}
	k, err := services.NewAPIKeys(store, slog.New(slog.DiscardHandler)).Verify(context.Background(), key, "127.0.0.1")
	if err != nil || k.Scopes != "tokens:read proxy" || k.AppID != "app_acme" || k.ExpiresAt == nil ||
		k.ExpiresAt.Sub(now) < 89*24*time.Hour || k.ExpiresAt.Sub(now) > 91*24*time.Hour {
		t.Fatalf("the key: %+v %v", k, err)
	}
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--scope", "tokens:write"}, "--scope"},
		{[]string{"--app", "app_nope"}, "--app"},
		{[]string{"--expires", "soon"}, "--expires"},
		{[]string{"--expires", "-3d"}, "--expires"},
	} {
		r := runCmd(t, env, "", append([]string{"apikey", "create", "--name", "bad"}, tc.args...)...)
		if r.err == nil || r.stdout != "" || !strings.HasPrefix(r.err.Error(), tc.flag+":") {
			t.Errorf("%v = %q, %v; want an error naming %s", tc.args, r.stdout, r.err, tc.flag)
		}
	}
	if r := runCmd(t, env, "", "help"); !strings.Contains(r.stdout, "[--scope S]... [--app APP_ID] [--expires DURATION]") {
		t.Error("usage does not show the key's options")
	}
}

// TestOperatorCreateWithARole: operator create takes --role (admin by default).
func TestOperatorCreateWithARole(t *testing.T) {
	env, dbPath := dbEnv(t)
	const password = "correct-horse-battery-staple"
	if r := runCmd(t, env, password+"\n", "operator", "create", "--email", "ann@example.com", "--password-stdin"); r.err != nil {
		t.Fatal(r.err)
	}
	if r := runCmd(t, env, password+"\n", "operator", "create", "--email", "vera@example.com", "--password-stdin", "--role", "viewer"); r.err != nil {
		t.Fatal(r.err)
	}
	if r := runCmd(t, env, password+"\n", "operator", "create", "--email", "olaf@example.com", "--password-stdin", "--role", "owner"); r.err == nil ||
		!strings.HasPrefix(r.err.Error(), "--role:") {
		t.Fatalf("an unknown role = %v", r.err)
	}
	store := openStore(t, dbPath)
	for email, want := range map[string]models.Role{"ann@example.com": models.RoleAdmin, "vera@example.com": models.RoleViewer} {
		op, err := store.OperatorByEmail(context.Background(), email)
		if err != nil || op.Role != want {
			t.Errorf("%s: %+v %v, want %s", email, op, err, want)
		}
	}
	if _, err := store.OperatorByEmail(context.Background(), "olaf@example.com"); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("the refused operator exists: %v", err)
	}
}
