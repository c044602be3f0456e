package e2e

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
	// issue 28: the outage longer than the lease (outageLease 0: the default
	// 60 s), the killed replicas, the rate under /token traffic, and the /token
	// load on a full disk.
	outageConns         int
	outageStop          time.Duration
	outageLease         time.Duration
	killConns           int
	rateConns, rateLoad int
	rateFor             time.Duration
	diskLoad            int
	latencyConns        int // 0: no latency scenario
	latencyRate         int // /token requests per second
	latencyFor          time.Duration
}

var (
	shortFaults = faultForm{name: "short", strictConns: 50, strictKills: 3, graceConns: 40, graceKills: 3,
		killGap: [2]time.Duration{2 * time.Second, 4 * time.Second}, diskConns: 40, diskFull: 10 * time.Second,
		pgConns: 40, pgReplicas: 1, pgStop: 8 * time.Second, webhookEvents: 12,
		outageConns: 30, outageStop: 12 * time.Second, outageLease: 8 * time.Second, killConns: 30,
		rateConns: 60, rateLoad: 150, rateFor: 6 * time.Second, diskLoad: 50}
	longFaults = faultForm{name: "long", strictConns: 200, strictKills: 25, graceConns: 200, graceKills: 25,
		killGap: [2]time.Duration{2 * time.Second, 8 * time.Second}, diskConns: 150, diskFull: 60 * time.Second,
		pgConns: 200, pgReplicas: 2, pgStop: 30 * time.Second, webhookEvents: 16,
		outageConns: 100, outageStop: 75 * time.Second, killConns: 100,
		rateConns: 500, rateLoad: 300, rateFor: 30 * time.Second, diskLoad: 100,
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
