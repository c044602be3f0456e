// Package conformance runs one scenario through each of grconnect's four SDKs (PHP,
// Node, Python, Go) against a real grconnect: the binary built from this module,
// started with `grconnect serve`, set up with its command line, talking to the fake
// GetResponse in this process.
//
// Each SDK has a scenario program (sdk/php/tests/conformance.php,
// sdk/node/test/conformance.mjs, sdk/python/tests/conformance.py,
// sdk/go/internal/conformance) that reads GRCONNECT_URL, GRCONNECT_API_KEY,
// GRCONNECT_APP_ID, GRCONNECT_CUSTOMER_REF and GRCONNECT_ACCOUNT_EMAIL and asks this
// driver, one line on its stdout and one answer line on its stdin, for what only the
// driver can do:
//
//	consent <url>                  a customer completes the connect flow of <url> → "ok"
//	token-requests <connection>    how many token requests grconnect received → "<n>"
//	arm-429 <connection>           GetResponse answers the account's next call 429 → "ok"
//	proxy-requests <connection>    how many proxy requests grconnect received → "<n>"
//	webhook <connection>           a delivery grconnect sent about it →
//	                               {"secret","headers":{name:value},"body":<base64>}
//	done                           the scenario passed
//
// An answer "error <why>" means the driver could not do it; the program then fails.
// The programs assert what the SDK returned; the driver asserts what grconnect saw.
// Outside CI (CI=true) a missing runtime skips its SDK; in CI it fails the test.
package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// scenarioTimeout bounds one SDK's program.
const scenarioTimeout = 90 * time.Second

func inCI() bool { v, _ := strconv.ParseBool(os.Getenv("CI")); return v }

// sdk is one SDK's scenario program.
type sdk struct {
	name string
	// prepare finds the runtime and readies the program; it returns the command
	// (run in the SDK's directory) or why it cannot run.
	prepare func(t *testing.T, dir string) (cmd []string, problem string)
}

var sdks = []sdk{
	{"php", preparePHP},
	{"node", prepareNode},
	{"python", preparePython},
	{"go", prepareGo},
}

func TestSDKConformance(t *testing.T) {
	root, err := filepath.Abs("..") // sdk/
	if err != nil {
		t.Fatal(err)
	}
	type ready struct {
		sdk
		cmd []string
	}
	var run []ready
	for _, s := range sdks {
		cmd, problem := s.prepare(t, filepath.Join(root, s.name))
		if problem != "" {
			if inCI() {
				t.Errorf("%s SDK: %s (CI runs every SDK: install what it needs)", s.name, problem)
			} else {
				t.Logf("%s SDK skipped: %s", s.name, problem)
			}
			continue
		}
		run = append(run, ready{s, cmd})
	}
	if t.Failed() || len(run) == 0 {
		if !t.Failed() {
			t.Skip("no SDK runtime found")
		}
		return
	}
	gc := startGrconnect(t)
	t.Run("sdk", func(t *testing.T) {
		for _, r := range run {
			t.Run(r.name, func(t *testing.T) {
				t.Parallel()
				gc.scenario(t, r.name, filepath.Join(root, r.name), r.cmd)
			})
		}
	})
}

// --- runtimes ------------------------------------------------------------------

// output runs a command and returns its trimmed output, or "" when it fails.
func output(dir string, args ...string) string {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func preparePHP(t *testing.T, dir string) ([]string, string) {
	if _, err := exec.LookPath("php"); err != nil {
		return nil, "php is not installed (Debian: apt-get install php-cli php-curl)"
	}
	switch got := output(dir, "php", "-r", `echo PHP_VERSION_ID >= 80100 ? "ok" : PHP_VERSION;`); got {
	case "ok":
	case "":
		return nil, "php does not run"
	default:
		return nil, "php " + got + " is older than 8.1"
	}
	if got := output(dir, "php", "-r", `echo extension_loaded("curl") && extension_loaded("json") ? "ok" : "missing";`); got != "ok" {
		return nil, "php has no curl extension (Debian: apt-get install php-curl)"
	}
	return []string{"php", "tests/conformance.php"}, ""
}

func prepareNode(t *testing.T, dir string) ([]string, string) {
	if _, err := exec.LookPath("node"); err != nil {
		return nil, "node is not installed (Debian: apt-get install nodejs npm)"
	}
	v := output(dir, "node", "-p", "process.versions.node")
	if v == "" {
		return nil, "node does not run"
	}
	if major, _, _ := strings.Cut(v, "."); atoi(major) < 18 {
		return nil, "node " + v + " is older than 18"
	}
	// Build from the sources when the compiler is installed, so the program tests
	// them and not an older build.
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "tsc")); err == nil {
		cmd := exec.Command("node", filepath.Join("node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the Node SDK: %v\n%s", err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dist", "index.js")); err != nil {
		return nil, "the Node SDK is not built: run npm ci && npm run build in sdk/node"
	}
	return []string{"node", "test/conformance.mjs"}, ""
}

func preparePython(t *testing.T, dir string) ([]string, string) {
	if _, err := exec.LookPath("python3"); err != nil {
		return nil, "python3 is not installed"
	}
	switch got := output(dir, "python3", "-c", `import sys; print("ok" if sys.version_info >= (3, 11) else sys.version.split()[0])`); got {
	case "ok":
	case "":
		return nil, "python3 does not run"
	default:
		return nil, "python3 " + got + " is older than 3.11"
	}
	return []string{"python3", "tests/conformance.py"}, ""
}

func prepareGo(t *testing.T, dir string) ([]string, string) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, "go is not on PATH"
	}
	bin := filepath.Join(t.TempDir(), "conformance")
	cmd := exec.Command(goBin, "build", "-o", bin, "./internal/conformance")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the Go SDK's scenario: %v\n%s", err, out)
	}
	return []string{bin}, ""
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// --- grconnect -------------------------------------------------------------------

// grconnect is a running `grconnect serve` with an app on the fake GetResponse, an
// API key, an operator, and the app's webhook pointed at a receiver here. The SDKs
// reach it through a counting reverse proxy.
type grconnect struct {
	fake     *getresponsetest.Server
	base     string // grconnect itself (the connect links' host)
	apiURL   string // the counting proxy in front of it
	appID    string
	apiKey   string
	clientID string
	secret   string // the app's webhook signing secret
	counts   *counter
	hooks    *receiver
	logFile  string
}

func startGrconnect(t *testing.T) *grconnect {
	dir := t.TempDir()
	bin := filepath.Join(dir, "grconnect")
	build := exec.Command("go", "build", "-o", bin, "github.com/grconnect/grconnect")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building grconnect: %v\n%s", err, out)
	}

	g := &grconnect{clientID: "sdk-conformance", counts: &counter{n: map[string]int{}}, hooks: &receiver{}, logFile: filepath.Join(dir, "serve.log")}
	g.fake = getresponsetest.NewServer(getresponsetest.Options{})
	t.Cleanup(g.fake.Close)
	hooks := httptest.NewServer(g.hooks)
	t.Cleanup(hooks.Close)

	addr := freeAddr(t)
	g.base = "http://" + addr
	g.fake.AddClient(g.clientID, "sdk-conformance-client-secret", g.base+"/oauth/callback")
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i*7 + 3)
	}
	env := append(os.Environ(),
		"GRCONNECT_ADDR="+addr,
		"GRCONNECT_BASE_URL="+g.base,
		"GRCONNECT_DATABASE="+filepath.Join(dir, "grconnect.db"),
		"GRCONNECT_SECRET_KEY="+base64.StdEncoding.EncodeToString(key),
		"GRCONNECT_GETRESPONSE_AUTH_URL="+g.fake.AuthURL(),
		"GRCONNECT_GETRESPONSE_API_URL="+g.fake.APIURL(),
		"GRCONNECT_WEBHOOK_ALLOW_PRIVATE=true", // the receiver listens on loopback
	)
	cli := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("grconnect %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	const email, password = "sdk@example.com", "a long operator password 42"
	cli(password+"\n", "operator", "create", "--email", email, "--password-stdin")
	g.appID = cli("sdk-conformance-client-secret\n", "app", "create", "--name", "SDK conformance", "--client-id", g.clientID,
		"--client-secret-stdin", "--auth-url", g.fake.AuthURL(), "--api-url", g.fake.APIURL())
	g.apiKey = cli("", "apikey", "create", "--name", "sdk-conformance")

	logf, err := os.Create(g.logFile)
	if err != nil {
		t.Fatal(err)
	}
	serve := exec.Command(bin, "serve")
	serve.Env = env
	serve.Stdout, serve.Stderr = logf, logf
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { serve.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			serve.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("grconnect serve's log:\n%s", tail(readFile(g.logFile), 4000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(g.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("grconnect serve exited:\n%s", tail(readFile(g.logFile), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("grconnect serve not ready within 30 s:\n%s", tail(readFile(g.logFile), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}

	target, _ := url.Parse(g.base)
	front := httptest.NewServer(g.counts.wrap(httputil.NewSingleHostReverseProxy(target)))
	t.Cleanup(front.Close)
	g.apiURL = front.URL

	g.secret = g.configureWebhook(t, email, password, hooks.URL+"/hooks/grconnect")
	return g
}

// configureWebhook signs in as the operator and sets the app's webhook URL on the
// app page, as an operator does; it returns the signing secret the page shows once.
func (g *grconnect) configureWebhook(t *testing.T, email, password, target string) string {
	op := newBrowser()
	page, _ := op.get(t, g.base+"/login")
	if status, _, _ := op.post(t, g.base+"/login", url.Values{"_csrf": {csrf(t, page)}, "email": {email}, "password": {password}}); status != http.StatusSeeOther {
		t.Fatalf("signing in: HTTP %d", status)
	}
	page, _ = op.get(t, g.base+"/apps/"+g.appID)
	status, page, _ := op.post(t, g.base+"/apps/"+g.appID+"/webhook", url.Values{"_csrf": {csrf(t, page)}, "webhook_url": {target}})
	m := regexp.MustCompile(`<input[^>]*data-testid="webhook-secret"[^>]*>`).FindString(page)
	v := regexp.MustCompile(`value="([^"]*)"`).FindStringSubmatch(m)
	if status != http.StatusOK || v == nil {
		t.Fatalf("setting the webhook: HTTP %d, no signing secret on the page:\n%s", status, tail(page, 2000))
	}
	return html.UnescapeString(v[1])
}

// scenario runs one SDK's program and answers its requests.
func (g *grconnect) scenario(t *testing.T, name, dir string, argv []string) {
	account := g.fake.AddAccount(func() getresponsetest.Account {
		a := getresponsetest.DefaultAccount()
		a.AccountID = "sdk" + name
		a.Email = name + "-sdk@example.com"
		a.FirstName, a.LastName, a.CompanyName = "Conformance", strings.ToUpper(name), "SDK "+name
		return a
	}())
	customerRef := "conformance-" + name

	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GRCONNECT_URL="+g.apiURL,
		"GRCONNECT_API_KEY="+g.apiKey,
		"GRCONNECT_APP_ID="+g.appID,
		"GRCONNECT_CUSTOMER_REF="+customerRef,
		"GRCONNECT_ACCOUNT_EMAIL="+name+"-sdk@example.com",
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", argv, err)
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	done := false
	var steps []string
	for lines.Scan() {
		line := lines.Text()
		verb, arg, _ := strings.Cut(line, " ")
		steps = append(steps, verb)
		if verb == "done" {
			done = true
			break
		}
		answer := g.answer(t, verb, arg, account)
		if _, err := io.WriteString(stdin, answer+"\n"); err != nil {
			t.Errorf("answering %q: %v", line, err)
			break
		}
	}
	stdin.Close()
	err := cmd.Wait()
	t.Logf("%s: steps %s in %v", name, strings.Join(steps, " → "), time.Since(start).Round(10*time.Millisecond))
	if err != nil || !done {
		t.Fatalf("the %s scenario failed (%v; finished: %v):\n%s", name, err, done, stderr.String())
	}

	// What grconnect saw, independently of what the SDK reported.
	id := g.connectionOf(t, customerRef)
	if n := g.counts.get("POST /api/v1/connections/" + id + "/token"); n != 2 {
		t.Errorf("grconnect received %d token requests for %s; want 2 (one for both calls before the disconnect, one refused after it)", n, id)
	}
	if n := g.counts.get("GET /api/v1/connections/" + id + "/proxy/from-fields"); n != 3 {
		t.Errorf("grconnect received %d proxied GET /from-fields; want 3 (one, then a 429 and its repetition)", n)
	}
}

// answer carries out one request of a scenario program.
func (g *grconnect) answer(t *testing.T, verb, arg, account string) string {
	switch verb {
	case "consent":
		if err := g.consent(arg, account); err != nil {
			t.Errorf("completing the connect flow: %v", err)
			return "error " + oneLine(err.Error())
		}
		return "ok"
	case "token-requests":
		return strconv.Itoa(g.counts.get("POST /api/v1/connections/" + arg + "/token"))
	case "proxy-requests":
		return strconv.Itoa(g.counts.get("GET /api/v1/connections/" + arg + "/proxy/from-fields"))
	case "arm-429":
		// GetResponse's per-second refusal as reported live: 429, Retry-After: 1.
		g.fake.FailAPIFor(account, getresponsetest.APIRateLimitedPerSecond, 1)
		return "ok"
	case "webhook":
		d, err := g.hooks.await(arg, 30*time.Second)
		if err != nil {
			t.Errorf("webhook: %v", err)
			return "error " + oneLine(err.Error())
		}
		var missing []string
		for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
			if d.header.Get(h) == "" {
				missing = append(missing, h)
			}
		}
		if len(missing) > 0 {
			var has []string
			for k := range d.header {
				if strings.HasPrefix(strings.ToLower(k), "x-grconnect") {
					has = append(has, k)
				}
			}
			t.Errorf("grconnect's webhook delivery has no Standard Webhooks headers %v (it carries %v): the SDKs' verify_webhook can check only deliveries signed per standardwebhooks.com",
				missing, has)
			return "error the delivery has no " + strings.Join(missing, ", ") + " header"
		}
		headers := map[string]string{}
		for k := range d.header {
			headers[strings.ToLower(k)] = d.header.Get(k)
		}
		b, _ := json.Marshal(map[string]any{"secret": g.secret, "headers": headers, "body": base64.StdEncoding.EncodeToString(d.body)})
		return string(b)
	}
	t.Errorf("the program asked %q, which the driver does not know", verb)
	return "error unknown request " + verb
}

// consent is a customer opening the connect link, pressing Connect, approving on
// GetResponse's consent page and landing on grconnect's callback.
func (g *grconnect) consent(link, account string) error {
	if !strings.HasPrefix(link, g.base+"/connect/") {
		return fmt.Errorf("the connect link %q is not on grconnect's base URL %s", link, g.base)
	}
	b := newBrowser()
	res, page, err := b.do(http.MethodGet, link, nil)
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		return fmt.Errorf("the connect page answered HTTP %d without its form", res.StatusCode)
	}
	res, _, err = b.do(http.MethodPost, link, url.Values{"_csrf": {m[1]}})
	if err != nil {
		return err
	}
	authorize := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(authorize, g.fake.AuthURL()) {
		return fmt.Errorf("pressing Connect: HTTP %d → %q", res.StatusCode, authorize)
	}
	au, err := url.Parse(authorize)
	if err != nil {
		return err
	}
	callback, err := g.fake.Approve(g.clientID, au.Query().Get("state"), account)
	if err != nil {
		return fmt.Errorf("approving on GetResponse: %w", err)
	}
	res, page, err = b.do(http.MethodGet, callback, nil)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `data-testid="connect-success"`) {
		return fmt.Errorf("the callback answered HTTP %d without the success page:\n%s", res.StatusCode, tail(page, 1000))
	}
	return nil
}

// connectionOf asks grconnect's API for the customer's connection ID.
func (g *grconnect) connectionOf(t *testing.T, customerRef string) string {
	req, _ := http.NewRequest(http.MethodGet, g.base+"/api/v1/connections?customer_ref="+url.QueryEscape(customerRef), nil)
	req.Header.Set("Authorization", "Bearer "+g.apiKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var list struct {
		Connections []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil || len(list.Connections) != 1 {
		t.Fatalf("the connections of %s: %+v, %v", customerRef, list, err)
	}
	if c := list.Connections[0]; c.Status != "disconnected" {
		t.Errorf("connection %s is %s after the scenario; want disconnected", c.ID, c.Status)
	}
	return list.Connections[0].ID
}

// --- helpers ----------------------------------------------------------------------

// counter counts the requests that pass through it by "METHOD path".
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.n[r.Method+" "+r.URL.Path]++
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// delivery is one webhook POST that reached the receiver.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver records every webhook delivery and answers 204.
type receiver struct {
	mu  sync.Mutex
	got []delivery
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, delivery{header: r.Header.Clone(), body: b})
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// await returns the first connection.created delivery about the connection.
func (rc *receiver) await(connectionID string, limit time.Duration) (delivery, error) {
	deadline := time.Now().Add(limit)
	for {
		rc.mu.Lock()
		for _, d := range rc.got {
			var p struct {
				Type       string `json:"type"`
				Connection struct {
					ID string `json:"id"`
				} `json:"connection"`
			}
			if json.Unmarshal(d.body, &p) == nil && p.Type == "connection.created" && p.Connection.ID == connectionID {
				rc.mu.Unlock()
				return d, nil
			}
		}
		n := len(rc.got)
		rc.mu.Unlock()
		if time.Now().After(deadline) {
			return delivery{}, fmt.Errorf("no connection.created delivery about %s within %v (%d deliveries received)", connectionID, limit, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct{ c *http.Client }

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{&http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, u string, form url.Values) (*http.Response, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	page, err := io.ReadAll(res.Body)
	return res, string(page), err
}

func (b *browser) get(t *testing.T, u string) (string, int) {
	t.Helper()
	res, page, err := b.do(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return page, res.StatusCode
}

func (b *browser) post(t *testing.T, u string, form url.Values) (int, string, string) {
	t.Helper()
	res, page, err := b.do(http.MethodPost, u, form)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, page, res.Header.Get("Location")
}

func csrf(t *testing.T, page string) string {
	t.Helper()
	m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field on the page:\n%s", tail(page, 1000))
	}
	return m[1]
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err.Error()
	}
	return string(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
