package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/secrets"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// The harness of the fault-injection suite (faults_test.go): a scenario runs real
// grconnect processes (the binary grconnectBinary builds) on their own data and one
// fake GetResponse served from the test process, connects customers through the real
// flow, hurts the processes, and records goals (what issue 16 asks) with the figures
// it measured. Scenarios run concurrently in goroutines, since they mostly wait for
// leases to expire; each becomes a subtest with one subtest per goal afterwards.

// The suite's environment variables.
const (
	faultsEnvForm   = "GRCONNECT_FAULTS"        // "long" for the long form, "off" to skip the suite
	faultsEnvReport = "GRCONNECT_FAULTS_REPORT" // a file to write the table of figures to
	faultsEnvPG     = "GRCONNECT_FAULTS_PG"     // "1": run the PostgreSQL scenario outside CI's second pass
	faultsEnvSeed   = "GRCONNECT_FAULTS_SEED"   // the seed of the random kill moments
	faultsEnvLogs   = "GRCONNECT_FAULTS_LOGS"   // a directory that keeps every process's log
)

// Timing rules of the suite's goals.
const (
	// inFlightWindow counts a refresh (or webhook) answered this shortly before a kill
	// as in flight: the dead process may have read it and not yet committed it.
	inFlightWindow = 200 * time.Millisecond
	// atOnce is "refreshed at once" after a kill: the next process's start plus a few
	// refresher intervals.
	atOnce = 5 * time.Second
	// faultTokenLife and faultMargin make refreshing continuous: every connection is
	// due 5 s after each refresh.
	faultTokenLife = 150 * time.Second
	faultMargin    = 145 * time.Second
	// graceRotation is the provider's grace period of the grace scenario: longer than
	// today's 60 s lease, so a client that retries in flight refreshes in time can save
	// every one of them.
	graceRotation = 2 * time.Minute
)

// faultForm sizes a run of the suite.
type faultForm struct {
	name                     string
	strictConns, strictKills int
	graceConns, graceKills   int
	killGap                  [2]time.Duration // random pause between kills
	diskConns                int
	diskFull                 time.Duration
	pgConns, pgReplicas      int
	pgStop                   time.Duration
	webhookEvents            int
	latencyConns             int // 0: no latency scenario
	latencyRate              int // /token requests per second
	latencyFor               time.Duration
}

var (
	shortFaults = faultForm{name: "short", strictConns: 50, strictKills: 3, graceConns: 40, graceKills: 3,
		killGap: [2]time.Duration{2 * time.Second, 4 * time.Second}, diskConns: 40, diskFull: 10 * time.Second,
		pgConns: 40, pgReplicas: 1, pgStop: 8 * time.Second, webhookEvents: 12}
	longFaults = faultForm{name: "long", strictConns: 200, strictKills: 25, graceConns: 200, graceKills: 25,
		killGap: [2]time.Duration{2 * time.Second, 8 * time.Second}, diskConns: 150, diskFull: 60 * time.Second,
		pgConns: 200, pgReplicas: 2, pgStop: 30 * time.Second, webhookEvents: 16,
		latencyConns: 3000, latencyRate: 1500, latencyFor: 45 * time.Second}
)

// faultGoal is one goal of issue 16 as measured by a scenario.
type faultGoal struct {
	name     string // the subtest
	want     string // the goal, in words
	measured string
	ok       bool
}

// faultRun is one scenario being run: it collects log lines, goals and figures, and
// ends its goroutine on fatalf or skipf (as t.FailNow and t.SkipNow do).
type faultRun struct {
	t    *testing.T // the suite's test: only its concurrency-safe methods are used
	name string
	form faultForm
	bin  string
	dir  string // scratch directory of this scenario
	rng  *rand.Rand

	mu       sync.Mutex
	lines    []string
	errs     []string
	skipped  string
	goals    []faultGoal
	figures  []string
	cleanups []func()
	procs    []*grProc
	elapsed  time.Duration
}

func (h *faultRun) logf(format string, args ...any) {
	line := fmt.Sprintf("%6.1fs %s", time.Since(suiteStart).Seconds(), fmt.Sprintf(format, args...))
	h.mu.Lock()
	h.lines = append(h.lines, line)
	h.mu.Unlock()
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "faults/%s: %s\n", h.name, line)
	}
}

// errorf records a harness failure (not a goal); the scenario goes on.
func (h *faultRun) errorf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs = append(h.errs, fmt.Sprintf(format, args...))
}

// fatalf records a harness failure and ends the scenario.
func (h *faultRun) fatalf(format string, args ...any) {
	h.errorf(format, args...)
	runtime.Goexit()
}

// skipf ends the scenario as skipped.
func (h *faultRun) skipf(format string, args ...any) {
	h.mu.Lock()
	h.skipped = fmt.Sprintf(format, args...)
	h.mu.Unlock()
	runtime.Goexit()
}

// cleanup runs f when the scenario ends, the last registered first.
func (h *faultRun) cleanup(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, f)
}

// goal records a goal: ok says whether the measured figure meets it.
func (h *faultRun) goal(name, want string, ok bool, measured string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.goals = append(h.goals, faultGoal{name: name, want: want, measured: fmt.Sprintf(measured, args...), ok: ok})
}

// figure records a measured figure for the report.
func (h *faultRun) figure(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	h.logf("figure: %s", s)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.figures = append(h.figures, s)
}

// run runs a scenario's body, then its cleanups.
func (h *faultRun) run(body func(*faultRun)) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			h.errorf("panic: %v\n%s", r, debug.Stack())
		}
		h.mu.Lock()
		cleanups := h.cleanups
		h.cleanups = nil
		h.mu.Unlock()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		h.elapsed = time.Since(start)
	}()
	body(h)
}

// sleep pauses for a random duration in [lo, hi].
func (h *faultRun) sleep(lo, hi time.Duration) {
	d := lo
	if hi > lo {
		d += time.Duration(h.rng.Int64N(int64(hi - lo)))
	}
	time.Sleep(d)
}

var suiteStart = time.Now()

// scenarioFilter returns which scenarios -run selects: its second element, if any,
// matched against the scenario's name (TestFaults/disk_full).
func scenarioFilter() func(string) bool {
	all := func(string) bool { return true }
	f := flag.Lookup("test.run")
	if f == nil {
		return all
	}
	parts := splitRunPattern(f.Value.String())
	if len(parts) < 2 {
		return all
	}
	re, err := regexp.Compile(parts[1])
	if err != nil {
		return all
	}
	return re.MatchString
}

// splitRunPattern splits a -run pattern at the slashes outside brackets and
// parentheses, as the testing package does.
func splitRunPattern(p string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '[', '(':
			depth++
		case ']', ')':
			depth--
		case '\\':
			i++
		case '/':
			if depth == 0 {
				parts = append(parts, p[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, p[start:])
}

// ---- the fake GetResponse, recorded ----

// refreshCall is one refresh request that reached the fake GetResponse.
type refreshCall struct {
	rt         string    // the refresh token presented
	start, end time.Time // end: when the answer was written (zero while in flight)
	status     int
}

// tokenRecorder wraps the fake: it records every refresh request, and holds each
// token answer for a latency after the fake granted it, as a real provider's answer
// travels after the provider rotated the token. A client killed meanwhile loses
// the answer (and, under strict rotation, the connection).
type tokenRecorder struct {
	fake    *getresponsetest.Fake
	latency func() time.Duration // nil: none

	mu    sync.Mutex
	calls []*refreshCall
}

func (rec *tokenRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v3/token" || r.Method != http.MethodPost {
		rec.fake.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	var call *refreshCall
	if form.Get("grant_type") == "refresh_token" {
		call = &refreshCall{rt: form.Get("refresh_token"), start: time.Now()}
		rec.mu.Lock()
		rec.calls = append(rec.calls, call)
		rec.mu.Unlock()
	}
	buf := httptest.NewRecorder()
	rec.fake.ServeHTTP(buf, r)
	if rec.latency != nil {
		time.Sleep(rec.latency()) // granted: the answer is on its way whatever the client does
	}
	for k, v := range buf.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(buf.Code)
	_, _ = w.Write(buf.Body.Bytes())
	if call != nil {
		rec.mu.Lock()
		call.end, call.status = time.Now(), buf.Code
		rec.mu.Unlock()
	}
}

// count returns how many refresh calls arrived.
func (rec *tokenRecorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.calls)
}

// inFlightNow returns how many refresh calls await their answer.
func (rec *tokenRecorder) inFlightNow() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for i := len(rec.calls) - 1; i >= 0 && i >= len(rec.calls)-256; i-- {
		if rec.calls[i].end.IsZero() {
			n++
		}
	}
	return n
}

// waitInFlight waits (up to limit) until at least n refresh calls await their
// answer, so that a fault lands while refreshing; it reports whether they did.
func (rec *tokenRecorder) waitInFlight(n int, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if rec.inFlightNow() >= n {
			return true
		}
	}
	return false
}

// snapshot returns a copy of the calls recorded so far.
func (rec *tokenRecorder) snapshot() []refreshCall {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make([]refreshCall, len(rec.calls))
	for i, c := range rec.calls {
		out[i] = *c
	}
	return out
}

// inFlight returns the refresh calls in flight at a kill signalled at before and
// reaped at after: started before the process died, and not answered before the
// signal (unanswered) or answered less than inFlightWindow before it (answered).
func inFlight(calls []refreshCall, before, after time.Time) (unanswered, answered []refreshCall) {
	for _, c := range calls {
		switch {
		case !c.start.Before(after):
		case c.end.IsZero() || c.end.After(before):
			unanswered = append(unanswered, c)
		case c.end.After(before.Add(-inFlightWindow)):
			answered = append(answered, c)
		}
	}
	return unanswered, answered
}

// fakeRefreshToken is what the fake knows of a refresh token (from its Snapshot).
type fakeRefreshToken struct {
	AccountID  string    `json:"account_id"`
	Retired    bool      `json:"retired"`
	GraceUntil time.Time `json:"grace_until"`
}

// dead reports whether the fake refuses the token at now.
func (rt fakeRefreshToken) dead(now time.Time) bool { return rt.Retired && !now.Before(rt.GraceUntil) }

// fakeRefreshTokens returns every refresh token the fake ever issued (strict
// rotation retires tokens, never forgets them).
func fakeRefreshTokens(f *getresponsetest.Fake) (map[string]fakeRefreshToken, error) {
	data, err := f.Snapshot()
	if err != nil {
		return nil, err
	}
	var s struct {
		Refresh map[string]fakeRefreshToken `json:"refresh_tokens"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	return s.Refresh, nil
}

// ---- an install: data, a key, the fake, the CLI ----

// installOpts configures an install.
type installOpts struct {
	fake    getresponsetest.Options
	latency [2]time.Duration // the fake's answer latency, uniform in [lo, hi]
	dataDir string           // "" means a new directory under the scenario's
	// database is a postgres:// URL; "" means dataDir/grconnect.db.
	database string
	// keyFile keeps the secret key in dataDir/secret.key (generated by the first
	// command) instead of GRCONNECT_SECRET_KEY.
	keyFile bool
	// settings are serve's extra GRCONNECT_* variables (refresh pace).
	settings []string
}

// install is one grconnect installation: a database, its key, an app on one fake
// GetResponse, an operator and an API key made with the command line, and the
// address every process of the install listens on (its BASE_URL).
type install struct {
	h        *faultRun
	dataDir  string
	database string
	key      []byte // nil with keyFile
	fake     *getresponsetest.Fake
	rec      *tokenRecorder
	fakeURL  string
	addr     string
	base     string
	env      map[string]string
	settings []string
	appID    string
	apiKey   string
	opEmail  string
	opPass   string
	hc       *http.Client
	nprocs   int

	mu        sync.Mutex
	accountOf map[string]string // connection ID → account ID at the fake
	connOf    map[string]string // account ID → connection ID
	nextAcct  int
	reader    *models.Store
}

// newInstall makes an install; the app, operator and API key are made with the
// command line (run in the test process, as runCmd does).
func (h *faultRun) newInstall(o installOpts) *install {
	in := &install{h: h, dataDir: o.dataDir, database: o.database, settings: o.settings,
		accountOf: map[string]string{}, connOf: map[string]string{},
		opEmail: "ops@example.com", opPass: "a long operator password 42"}
	if in.dataDir == "" {
		in.dataDir = filepath.Join(h.dir, "data")
	}
	if in.database == "" {
		in.database = filepath.Join(in.dataDir, "grconnect.db")
	}
	in.fake = getresponsetest.New(o.fake)
	in.rec = &tokenRecorder{fake: in.fake}
	if lo, hi := o.latency[0], o.latency[1]; hi > 0 {
		var mu sync.Mutex
		rng := rand.New(rand.NewPCG(h.rng.Uint64(), 1))
		in.rec.latency = func() time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
		}
	}
	srv := httptest.NewServer(in.rec)
	h.cleanup(func() { in.fake.Close(); srv.Close() })
	in.fakeURL = srv.URL
	in.addr = freeLoopback(h)
	in.base = "http://" + in.addr
	in.fake.AddClient("acme", "acme-client-secret", in.base+"/oauth/callback")
	in.env = map[string]string{
		"GRCONNECT_DATABASE":             in.database,
		"GRCONNECT_BASE_URL":             in.base,
		"GRCONNECT_GETRESPONSE_AUTH_URL": in.fakeURL + "/oauth2_authorize.html",
		"GRCONNECT_GETRESPONSE_API_URL":  in.fakeURL + "/v3",
	}
	if !o.keyFile {
		in.key = make([]byte, secrets.KeySize)
		for i := range in.key {
			in.key[i] = byte(h.rng.Uint32())
		}
		in.env["GRCONNECT_SECRET_KEY"] = base64.StdEncoding.EncodeToString(in.key)
	}
	in.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	if r := runCmd(h.t, in.env, in.opPass+"\n", "operator", "create", "--email", in.opEmail, "--password-stdin"); r.err != nil {
		h.fatalf("operator create: %v\n%s", r.err, r.stderr)
	}
	r := runCmd(h.t, in.env, "acme-client-secret\n", "app", "create", "--name", "Acme", "--client-id", "acme", "--client-secret-stdin")
	if r.err != nil {
		h.fatalf("app create: %v\n%s", r.err, r.stderr)
	}
	in.appID = strings.TrimSpace(r.stdout)
	r = runCmd(h.t, in.env, "", "apikey", "create", "--name", "fault-injection")
	if r.err != nil {
		h.fatalf("apikey create: %v\n%s", r.err, r.stderr)
	}
	in.apiKey = strings.TrimSpace(r.stdout)
	return in
}

// freeLoopback returns a loopback address nothing listens on.
func freeLoopback(h *faultRun) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.fatalf("%v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// box opens what the install sealed.
func (in *install) box() *secrets.Box {
	key := in.key
	if key == nil {
		text, err := os.ReadFile(filepath.Join(in.dataDir, "secret.key"))
		if err != nil {
			in.h.fatalf("read the key file: %v", err)
		}
		if key, err = secrets.ParseKey(strings.TrimSpace(string(text))); err != nil {
			in.h.fatalf("parse the key file: %v", err)
		}
	}
	b, err := secrets.New(key)
	if err != nil {
		in.h.fatalf("%v", err)
	}
	return b
}

// db returns the test's own handle on the install's database.
func (in *install) db() *models.Store {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.reader == nil {
		s, err := models.Open(in.database, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			in.h.fatalf("open the database: %v", err)
		}
		in.reader = s
		in.h.cleanup(func() { s.Close() })
	}
	return in.reader
}

// ---- grconnect processes ----

// grProc is one running "grconnect serve" process.
type grProc struct {
	name    string
	url     string
	cmd     *exec.Cmd
	log     *procLog
	done    chan struct{}
	err     error // what Wait returned; read after done
	started time.Time
}

// procLog keeps a process's output with the time each line arrived, and copies it
// to a file.
type procLog struct {
	mu      sync.Mutex
	text    strings.Builder
	lines   []timedLine
	partial []byte
	file    *os.File
}

type timedLine struct {
	at   time.Time
	text string
}

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.text.Write(p)
	if l.file != nil {
		l.file.Write(p)
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, timedLine{now, string(l.partial[:i])})
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String()
}

// first returns the first line containing substr (case-insensitive) and when it came.
func (l *procLog) first(substr string) (timedLine, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	substr = strings.ToLower(substr)
	for _, line := range l.lines {
		if strings.Contains(strings.ToLower(line.text), substr) {
			return line, true
		}
	}
	return timedLine{}, false
}

// count returns how many lines contain substr (case-insensitive).
func (l *procLog) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	substr = strings.ToLower(substr)
	n := 0
	for _, line := range l.lines {
		if strings.Contains(strings.ToLower(line.text), substr) {
			n++
		}
	}
	return n
}

// processEnv is the test's environment without any GRCONNECT_* setting.
func processEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GRCONNECT_") {
			env = append(env, kv)
		}
	}
	return env
}

// spawn starts a serve process of the install on its address (or addr, when
// given as GRCONNECT_ADDR=… in extra), without waiting for it.
func (in *install) spawn(extra ...string) *grProc {
	h := in.h
	in.mu.Lock()
	in.nprocs++
	name := fmt.Sprintf("%s-%d", h.name, in.nprocs)
	in.mu.Unlock()
	addr := in.addr
	env := processEnv()
	for k, v := range in.env {
		env = append(env, k+"="+v)
	}
	env = append(env, in.settings...)
	for _, kv := range extra {
		if a, ok := strings.CutPrefix(kv, "GRCONNECT_ADDR="); ok {
			addr = a
		}
	}
	env = append(env, extra...)
	env = append(env, "GRCONNECT_ADDR="+addr)
	p := &grProc{name: name, url: "http://" + addr, log: &procLog{}, done: make(chan struct{}), started: time.Now()}
	logDir := h.dir
	if d := os.Getenv(faultsEnvLogs); d != "" {
		logDir = d
		os.MkdirAll(d, 0o755)
	}
	if f, err := os.Create(filepath.Join(logDir, name+".log")); err == nil {
		p.log.file = f
	}
	p.cmd = exec.Command(h.bin, "serve")
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		h.fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
		if p.log.file != nil {
			p.log.file.Close()
		}
	}()
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	h.cleanup(func() { p.kill() })
	return p
}

// serve starts a serve process and waits until /readyz answers 200.
func (in *install) serve(extra ...string) *grProc {
	p := in.spawn(extra...)
	if err := p.waitReady(60 * time.Second); err != nil {
		in.h.fatalf("%v\n%s", err, tail(p.log.String(), 3000))
	}
	return p
}

// waitReady polls /readyz until it answers 200.
func (p *grProc) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if res, err := http.Get(p.url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v", p.name, p.err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v", p.name, limit)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// exited reports whether the process has ended.
func (p *grProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// pid is the process's ID.
func (p *grProc) pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL and waits until the process is reaped; it returns the time
// just before the signal and the time the process was gone.
func (p *grProc) kill() (before, after time.Time) {
	before = time.Now()
	if !p.exited() {
		p.cmd.Process.Kill()
	}
	<-p.done
	return before, time.Now()
}

// stop sends SIGTERM and waits (up to 30 s, then SIGKILL): a graceful shutdown
// commits the refreshes in flight.
func (p *grProc) stop() error {
	if p.exited() {
		return p.err
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("%s did not stop within 30 s of SIGTERM", p.name)
	}
}

// refreshSettings makes refreshing continuous: GetResponse's rate, every token due
// 5 s after its refresh, the refresher waking every 200 ms.
func refreshSettings() []string {
	return []string{"GRCONNECT_REFRESH_RATE=80", "GRCONNECT_REFRESH_CONCURRENCY=8", "GRCONNECT_REFRESH_INTERVAL=200ms",
		"GRCONNECT_REFRESH_MARGIN=" + faultMargin.String()}
}

// ---- the JSON API ----

// apiConnection is a connection as the API lists it.
type apiConnection struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Account struct {
		ID string `json:"id"`
	} `json:"account"`
	ExpiresAt     *time.Time `json:"expires_at"`
	LastRefreshAt *time.Time `json:"last_refresh_at"`
	LastError     string     `json:"last_error"`
}

// api sends one API request with the install's key to base (a process URL, or
// the install's own address when "").
func (in *install) api(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, in.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+in.apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := in.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// listConnections pages through GET /api/v1/connections (status "" means all).
func (in *install) listConnections(status string) ([]apiConnection, error) {
	var all []apiConnection
	cursor := ""
	for {
		q := url.Values{"limit": {"500"}}
		if status != "" {
			q.Set("status", status)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		code, body, err := in.api(http.MethodGet, "/api/v1/connections?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("GET /api/v1/connections: %d %s", code, tail(string(body), 300))
		}
		var page struct {
			Connections []apiConnection `json:"connections"`
			NextCursor  *string         `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Connections...)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return all, nil
		}
		cursor = *page.NextCursor
	}
}

// token asks for a connection's access token; ok means 200 with a token.
func (in *install) token(id string) (status int, ok bool, err error) {
	code, body, err := in.api(http.MethodPost, "/api/v1/connections/"+id+"/token", nil)
	if err != nil {
		return 0, false, err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(body, &tok)
	return code, code == http.StatusOK && tok.AccessToken != "", nil
}

// ---- connecting customers through the real flow ----

// try is agent.do returning its error instead of failing the test, for goroutines.
func (a *agent) try(method, u string, form url.Values) (int, string, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return 0, "", "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := a.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header.Get("Location"), err
}

// connect connects n new customers, each with an account of its own at the fake,
// through the real flow, parallel at a time: API connect session → the customer
// opens the link and presses Connect (browser cookie) → GetResponse's consent →
// the callback. It then learns every connection's ID from the API.
func (in *install) connect(n, parallel int) error {
	work := make(chan struct{})
	errc := make(chan error, parallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for range work {
				if err := in.connectOne(); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		})
	}
	for range n {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	return in.learnConnections()
}

func (in *install) connectOne() error {
	in.mu.Lock()
	in.nextAcct++
	acct := fmt.Sprintf("F%05d", in.nextAcct)
	in.mu.Unlock()
	in.fake.AddAccount(getresponsetest.Account{AccountID: acct, Email: strings.ToLower(acct) + "@example.com", FirstName: "Customer", LastName: acct})
	code, body, err := in.api(http.MethodPost, "/api/v1/connect-sessions", map[string]string{"app_id": in.appID, "customer_ref": "customer-" + acct})
	if err != nil {
		return err
	}
	var link struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(body, &link); code != http.StatusCreated || err != nil {
		return fmt.Errorf("POST /api/v1/connect-sessions: %d %s", code, tail(string(body), 300))
	}
	customer := newAgent(in.h.t)
	code, page, _, err := customer.try(http.MethodGet, link.URL, nil)
	if err != nil {
		return err
	}
	m := csrfField.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		return fmt.Errorf("connect page: %d, CSRF field found: %v", code, m != nil)
	}
	code, _, authorize, err := customer.try(http.MethodPost, link.URL, url.Values{"_csrf": {m[1]}})
	if err != nil {
		return err
	}
	if code != http.StatusSeeOther || !strings.HasPrefix(authorize, in.fakeURL) {
		return fmt.Errorf("pressing Connect: %d → %q", code, authorize)
	}
	au, err := url.Parse(authorize)
	if err != nil {
		return err
	}
	redirect, err := in.fake.Approve("acme", au.Query().Get("state"), acct)
	if err != nil {
		return err
	}
	code, page, _, err = customer.try(http.MethodGet, redirect, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK || !strings.Contains(page, `data-testid="connect-success"`) {
		return fmt.Errorf("callback: %d %s", code, tail(page, 300))
	}
	return nil
}

// learnConnections maps every connection to its account at the fake.
func (in *install) learnConnections() error {
	conns, err := in.listConnections("")
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, c := range conns {
		in.accountOf[c.ID] = c.Account.ID
		in.connOf[c.Account.ID] = c.ID
	}
	return nil
}

// connectionIDs returns every known connection ID, sorted.
func (in *install) connectionIDs() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	ids := make([]string, 0, len(in.accountOf))
	for id := range in.accountOf {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ---- reading the outcome ----

// dbConnections reads every connection row.
func (in *install) dbConnections() ([]models.Connection, error) {
	var cs []models.Connection
	err := in.db().DB().Select("id, account_id, status, refresh_token_enc, last_refresh_at, lease_owner, lease_until, expires_at").
		Order("id").Find(&cs).Error
	return cs, err
}

// leasedBy returns the connections whose lease the process pid holds.
func (in *install) leasedBy(pid int) ([]string, error) {
	var ids []string
	err := in.db().DB().Model(&models.Connection{}).Where("lease_owner LIKE ?", fmt.Sprintf("%%/%d/%%", pid)).
		Order("id").Pluck("id", &ids).Error
	return ids, err
}

// waitSettled waits until every live connection was refreshed since since and
// holds no lease (or needs a reconnect); it returns the ones that did not.
func (in *install) waitSettled(since time.Time, limit time.Duration) []string {
	deadline := time.Now().Add(limit)
	for {
		cs, err := in.dbConnections()
		var pending []string
		if err != nil {
			pending = []string{"(database unreadable: " + err.Error() + ")"}
		}
		for _, c := range cs {
			switch {
			case c.Status == models.StatusNeedsReconnect || c.Status == models.StatusDisconnected:
			case c.Status == models.StatusActive && c.LeaseOwner == "" && c.LastRefreshAt != nil && !c.LastRefreshAt.Before(since):
			default:
				pending = append(pending, c.ID)
			}
		}
		if len(pending) == 0 || time.Now().After(deadline) {
			return pending
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// losses is the outcome of a run: which connections were lost and whether their
// timelines say why.
type losses struct {
	total          int
	needsReconnect []string // status needs_reconnect, from the API
	deadToken      []string // stored refresh token refused by the fake
	lost           []string // the union
	explained      []string // lost, with "crash" in the timeline
	explanations   map[string]string
}

// countLosses lists needs_reconnect through the API of the running final process,
// stops it gracefully, then checks every stored refresh token against the fake and
// reads the lost connections' timelines.
func (in *install) countLosses(final *grProc) losses {
	var out losses
	nr, err := in.listConnections(string(models.StatusNeedsReconnect))
	if err != nil {
		in.h.errorf("list needs_reconnect: %v", err)
	}
	for _, c := range nr {
		out.needsReconnect = append(out.needsReconnect, c.ID)
	}
	if final != nil {
		if err := final.stop(); err != nil {
			in.h.logf("final process stopped with %v", err)
		}
	}
	issued, err := fakeRefreshTokens(in.fake)
	if err != nil {
		in.h.fatalf("fake snapshot: %v", err)
	}
	cs, err := in.dbConnections()
	if err != nil {
		in.h.fatalf("read connections: %v", err)
	}
	box := in.box()
	now := time.Now()
	lost := map[string]bool{}
	for _, id := range out.needsReconnect {
		lost[id] = true
	}
	for _, c := range cs {
		if c.Status == models.StatusDisconnected {
			continue
		}
		out.total++
		if c.RefreshTokenEnc == "" {
			continue // needs_reconnect without tokens: counted above
		}
		rt, err := box.Open(c.RefreshTokenEnc, secrets.AAD("connection", c.ID, "refresh_token"))
		if err != nil {
			in.h.errorf("open the refresh token of %s: %v", c.ID, err)
			continue
		}
		if known, ok := issued[rt]; !ok || known.dead(now) {
			out.deadToken = append(out.deadToken, c.ID)
			lost[c.ID] = true
		}
	}
	for id := range lost {
		out.lost = append(out.lost, id)
	}
	sort.Strings(out.lost)
	out.explanations = map[string]string{}
	for _, id := range out.lost {
		var events []models.Event
		in.db().DB().Where("connection_id = ?", id).Order("id").Find(&events)
		var msgs []string
		for _, e := range events {
			if e.Type == models.EventRefreshSucceeded {
				continue
			}
			msgs = append(msgs, string(e.Type)+": "+e.Message)
			if strings.Contains(strings.ToLower(string(e.Type)+" "+e.Message), "crash") {
				out.explained = append(out.explained, id)
				out.explanations[id] = e.Message
				break
			}
		}
		if _, ok := out.explanations[id]; !ok && len(msgs) > 0 {
			out.explanations[id] = "(unexplained) " + msgs[len(msgs)-1]
		}
	}
	return out
}

// accountsOfCalls maps refresh calls to the connections they refreshed.
func (in *install) connectionsOfCalls(calls []refreshCall, issued map[string]fakeRefreshToken) map[string]bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[string]bool{}
	for _, c := range calls {
		if rt, ok := issued[c.rt]; ok {
			if id, ok := in.connOf[rt.AccountID]; ok {
				out[id] = true
			}
		}
	}
	return out
}

// ---- small things ----

// minus returns the members of a not in b.
func minus(a []string, b map[string]bool) []string {
	var out []string
	for _, x := range a {
		if !b[x] {
			out = append(out, x)
		}
	}
	return out
}

// brief shows at most a few IDs.
func brief(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	if len(ids) > 6 {
		return strings.Join(ids[:6], ", ") + fmt.Sprintf(" … (%d)", len(ids))
	}
	return strings.Join(ids, ", ")
}

// durations summarizes waits: median and max.
func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("n=%d median %s max %s", len(s), s[len(s)/2].Round(10*time.Millisecond), s[len(s)-1].Round(10*time.Millisecond))
}

// loadAverage is the machine's 1-minute load average, as /proc/loadavg says.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// inCI reports whether CI=true.
func inCI() bool { v, _ := strconv.ParseBool(os.Getenv("CI")); return v }

// errNoMount is returned when the machine does not let the test mount a tmpfs.
var errNoMount = errors.New("mounting a tmpfs is not permitted here")

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted when the
// scenario ends.
func (h *faultRun) mountTmpfs(size int64) (string, error) {
	dir, err := os.MkdirTemp("", "grconnect-faults-tmpfs-")
	if err != nil {
		return "", err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("%w (mount -t tmpfs as uid %d: %v %s)", errNoMount, os.Geteuid(), err, strings.TrimSpace(string(out)))
	}
	h.cleanup(func() {
		exec.Command("mount", "-o", "remount,rw", dir).Run()
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			h.errorf("umount %s: %v %s", dir, err, out)
			return
		}
		os.Remove(dir)
	})
	return dir, nil
}

// skipNoMount skips a scenario that needs a tmpfs, saying so louder in CI.
func (h *faultRun) skipNoMount(err error) {
	if inCI() {
		h.skipf("CI=true, but this machine does not let the test mount a tmpfs, so this fault was NOT exercised: %v", err)
	}
	h.skipf("needs root to mount a tmpfs: %v", err)
}
