package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// probe is one answer of a poller.
type probe struct {
	at   time.Time
	code int // 0: no answer
	ok   bool
}

// poller calls f every interval until stopped, recording the answers.
type poller struct {
	mu     sync.Mutex
	probes []probe
	stop   chan struct{}
	done   sync.WaitGroup
}

func startPoller(interval time.Duration, f func() (int, bool)) *poller {
	p := &poller{stop: make(chan struct{})}
	p.done.Go(func() {
		for {
			code, ok := f()
			p.mu.Lock()
			p.probes = append(p.probes, probe{at: time.Now(), code: code, ok: ok})
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-time.After(interval):
			}
		}
	})
	return p
}

func (p *poller) end() []probe {
	close(p.stop)
	p.done.Wait()
	return p.results()
}

func (p *poller) results() []probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]probe(nil), p.probes...)
}

// between returns the probes answered in [from, to).
func between(ps []probe, from, to time.Time) []probe {
	var out []probe
	for _, p := range ps {
		if !p.at.Before(from) && p.at.Before(to) {
			out = append(out, p)
		}
	}
	return out
}

// codes summarizes probes' status codes: "200×12 500×3".
func codes(ps []probe) string {
	counts := map[int]int{}
	var order []int
	for _, p := range ps {
		if counts[p.code] == 0 {
			order = append(order, p.code)
		}
		counts[p.code]++
	}
	var parts []string
	for _, c := range order {
		label := fmt.Sprint(c)
		if c == 0 {
			label = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s×%d", label, counts[c]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// readyzOf asks a process's /readyz.
func readyzOf(base string) (int, bool) {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(base + "/readyz")
	if err != nil {
		return 0, false
	}
	res.Body.Close()
	return res.StatusCode, res.StatusCode == http.StatusOK
}

// fillDisk writes a filler file into dir until the file system is full, and keeps
// it full (taking any space freed meanwhile) until done says so; then it removes
// the file. It returns how much it wrote.
func fillDisk(dir string, done func() bool) (int64, error) {
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	small := make([]byte, 4<<10)
	var n int64
	for {
		m, err := f.Write(chunk)
		n += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			return n, err
		}
	}
	for !done() {
		for {
			m, err := f.Write(small)
			n += int64(m)
			if err != nil {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return n, nil
}

// diskFullRun runs SQLite on an 8 MiB tmpfs while refreshing continuously in
// strict rotation, fills the disk for form.diskFull (longer until writes have
// failed for 3 s), then frees it. Meanwhile it
// polls /readyz and asks /token for connections whose tokens stay valid past the
// window, and loads /token over every connection (each inside the margin: a
// request nudges a refresh). Goals: nothing lost, not ready while writes fail,
// valid tokens served, and no refresh reaches GetResponse once /readyz says the
// storage is unhealthy (issue 28).
func diskFullRun(h *faultRun) {
	mnt, err := h.mountTmpfs(8 << 20)
	if err != nil {
		h.skipNoMount(err)
	}
	in := h.newInstall(installOpts{
		dataDir:  mnt,
		fake:     getresponsetest.Options{Rotation: getresponsetest.RotationStrict, ExpiresIn: faultTokenLife},
		latency:  [2]time.Duration{50 * time.Millisecond, 150 * time.Millisecond},
		settings: refreshSettings(),
	})
	p := in.serve()
	if err := in.connect(h.form.diskConns, 8); err != nil {
		h.fatalf("connect %d customers: %v", h.form.diskConns, err)
	}
	time.Sleep(faultTokenLife - faultMargin + 3*time.Second) // refreshing in its stride
	window := h.form.diskFull

	conns, err := in.listConnections("")
	if err != nil {
		h.fatalf("%v", err)
	}
	var sample []string
	for _, c := range conns {
		if c.ExpiresAt != nil && c.ExpiresAt.After(time.Now().Add(window+10*time.Second)) && len(sample) < 10 {
			sample = append(sample, c.ID)
		}
	}
	if len(sample) == 0 {
		h.fatalf("no connection holds a token valid past the window")
	}
	var next int
	var nextMu sync.Mutex
	readyz := startPoller(200*time.Millisecond, func() (int, bool) { return readyzOf(p.url) })
	tokens := startPoller(100*time.Millisecond, func() (int, bool) {
		nextMu.Lock()
		id := sample[next%len(sample)]
		next++
		nextMu.Unlock()
		code, ok, _ := in.token(id)
		return code, ok
	})
	load := h.startTokenLoad(in, p.url, in.connectionIDs(), h.form.diskLoad)

	// Full for the window; longer (up to four windows) until grconnect has known
	// the disk full for 3 s: SQLite may first reuse its WAL file's space for a while.
	in.rec.waitInFlight(2, 15*time.Second)
	fillStart := time.Now()
	filled, err := fillDisk(mnt, func() bool {
		now := time.Now()
		failed, ok := p.log.firstOf(diskFullLines...)
		return now.Sub(fillStart) >= window && (ok && now.Sub(failed.at) >= 3*time.Second || now.Sub(fillStart) >= 4*window)
	})
	freed := time.Now()
	if err != nil {
		h.errorf("fill the disk: %v", err)
	}
	h.logf("disk full for %s (filler %d KiB)", freed.Sub(fillStart).Round(100*time.Millisecond), filled>>10)
	readyAgain := time.Duration(-1)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rs := readyz.results()
		if last := rs[len(rs)-1]; last.at.After(freed) && last.ok {
			readyAgain = last.at.Sub(freed)
			break
		}
	}
	readyProbes, tokenProbes, loadAnswers := readyz.end(), tokens.end(), load.end()
	alive := !p.exited()
	if !alive {
		h.logf("the process died during the fault: %v\n%s", p.err, tail(p.log.String(), 1500))
		p = in.serve()
	}

	pending := in.waitSettled(freed, 2*time.Minute)
	if len(pending) > 0 {
		h.errorf("%d connections neither refreshed after the disk was freed nor marked needs_reconnect: %s", len(pending), brief(pending))
	}
	failures := p.log.count("disk is full")
	firstFailure, sawFailure := p.log.firstOf(diskFullLines...)
	ls := in.countLosses(p)

	failingFrom := fillStart
	if sawFailure && firstFailure.at.After(fillStart) {
		failingFrom = firstFailure.at
	}
	duringFull := between(readyProbes, failingFrom, freed)
	readyWhileFull := 0
	for _, pr := range duringFull {
		if pr.ok {
			readyWhileFull++
		}
	}
	tokensDuring := between(tokenProbes, fillStart, freed)
	served := 0
	for _, pr := range tokensDuring {
		if pr.ok {
			served++
		}
	}
	lastTokens := between(tokenProbes, freed.Add(-5*time.Second), freed)
	// Storage known unhealthy: the first 503 of /readyz after the fill began.
	unhealthy := freed
	for _, pr := range readyProbes {
		if pr.at.After(fillStart) && pr.code == http.StatusServiceUnavailable {
			unhealthy = pr.at
			break
		}
	}
	calls := in.rec.snapshot()
	afterUnhealthy := callsBetween(calls, unhealthy, freed)
	afterFailure := len(callsBetween(calls, failingFrom, freed))
	loadDuring := between(loadAnswers, fillStart, freed)
	h.figure("/token load of %d/s over all %d connections: during the fill %s; refresh calls started after the process first logged the disk full %d, after /readyz first said 503 (%s after the fill) %d",
		h.form.diskLoad, ls.total, codes(loadDuring), afterFailure, unhealthy.Sub(fillStart).Round(100*time.Millisecond), len(afterUnhealthy))
	h.figure("%d connections, disk full %s; write failures logged: %d (disk full first logged %s after the fill); /readyz from then: %s; /token during the fill: %s (last 5 s: %s); ready again %s after freeing; process survived: %v; lost %d (needs_reconnect %d, dead stored token %d)",
		ls.total, freed.Sub(fillStart).Round(100*time.Millisecond), failures, sinceOrNever(sawFailure, firstFailure.at, fillStart),
		codes(duringFull), codes(tokensDuring), codes(lastTokens), readyAgainText(readyAgain), alive, len(ls.lost), len(ls.needsReconnect), len(ls.deadToken))

	h.goal("no_loss", "disk full: no connection lost", len(ls.lost) == 0,
		"%d of %d lost (needs_reconnect %d, dead stored token %d): %s", len(ls.lost), ls.total, len(ls.needsReconnect), len(ls.deadToken), brief(ls.lost))
	h.goal("not_ready_while_writes_fail", "/readyz is not ready (503) while the disk is full (from the process's first log of it to freeing)",
		len(duringFull) > 0 && readyWhileFull == 0 && sawFailure,
		"/readyz answered %s over the %s from the first log of the full disk (%s after the fill) to freeing; write failures logged: %d",
		codes(duringFull), freed.Sub(failingFrom).Round(100*time.Millisecond), sinceOrNever(sawFailure, firstFailure.at, fillStart), failures)
	h.goal("valid_tokens_served", "while the disk is full, still-valid tokens are still served (/token 200 with a token)",
		len(tokensDuring) > 0 && served == len(tokensDuring),
		"%d of %d /token calls during the fill answered 200 with a token (%s); in its last 5 s: %s", served, len(tokensDuring), codes(tokensDuring), codes(lastTokens))
	h.goal("no_refresh_after_unhealthy", fmt.Sprintf("with /token traffic (%d/s), no refresh call reaches GetResponse after storage is known unhealthy (/readyz 503)", h.form.diskLoad),
		!unhealthy.Equal(freed) && len(afterUnhealthy) == 0, "%d refresh calls started in the %s from the first /readyz 503 to freeing (%d after the disk full was first logged)",
		len(afterUnhealthy), freed.Sub(unhealthy).Round(100*time.Millisecond), afterFailure)
	h.goal("ready_again", "ready again within 10 s of the disk being freed", readyAgain >= 0 && readyAgain <= 10*time.Second,
		"ready again %s after freeing", readyAgainText(readyAgain))
}

// diskFullLines are what a process logs once it knows its disk is full: a write
// refused, /readyz's space check, the refresher's pause.
var diskFullLines = []string{"disk is full", "left on the file system", "the disk holding the database is full"}

func sinceOrNever(seen bool, at, from time.Time) string {
	if !seen {
		return "never"
	}
	return at.Sub(from).Round(100 * time.Millisecond).String()
}

func readyAgainText(d time.Duration) string {
	if d < 0 {
		return "never (within 60 s)"
	}
	return d.Round(100 * time.Millisecond).String()
}

// startOutcome is what a process did when started on a broken install.
type startOutcome struct {
	exited     bool
	status     int // exit status
	after      time.Duration
	readyz     int // last /readyz answer while it ran
	errorLines []string
	output     string
}

// observeStart watches a started process for limit: it exits, or it answers.
func observeStart(p *grProc, limit time.Duration) startOutcome {
	var o startOutcome
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if p.exited() {
			break
		}
		if code, _ := readyzOf(p.url); code != 0 {
			o.readyz = code
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p.exited() {
		o.exited, o.after = true, time.Since(p.started)
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			o.status = ee.ExitCode()
		}
	}
	o.output = p.log.String()
	for _, line := range strings.Split(o.output, "\n") {
		if strings.HasPrefix(line, "grconnect:") || strings.Contains(line, "level=ERROR") || strings.HasPrefix(line, "panic:") {
			o.errorLines = append(o.errorLines, line)
		}
	}
	return o
}

// refusedWithOneLine reports whether the process refused to start (exit non-zero)
// with exactly one error line, naming one of causes (case-insensitive).
func (o startOutcome) refusedWithOneLine(causes ...string) bool {
	if !o.exited || o.status == 0 || len(o.errorLines) != 1 || strings.Contains(o.output, "goroutine ") {
		return false
	}
	return namesCause(o.errorLines[0], causes...)
}

func namesCause(line string, causes ...string) bool {
	line = strings.ToLower(line)
	for _, c := range causes {
		if strings.Contains(line, c) {
			return true
		}
	}
	return false
}

func (o startOutcome) String() string {
	if o.exited {
		return fmt.Sprintf("exited with status %d after %s; error lines (%d): %q", o.status, o.after.Round(10*time.Millisecond), len(o.errorLines), o.errorLines)
	}
	return fmt.Sprintf("still running; /readyz %d; error lines (%d): %q", o.readyz, len(o.errorLines), o.errorLines)
}

// readOnlyRun starts grconnect on an install whose storage turned read-only: the
// whole file system (remount,ro), then only the database file (a read-only bind
// mount of it; root ignores file modes). Goal, each time: it refuses, or is not
// ready, with one clear line naming the cause.
func readOnlyRun(h *faultRun) {
	mnt, err := h.mountTmpfs(8 << 20)
	if err != nil {
		h.skipNoMount(err)
	}
	in := h.newInstall(installOpts{dataDir: mnt, fake: getresponsetest.Options{Rotation: getresponsetest.RotationStrict}})
	p := in.serve()
	if err := in.connect(3, 3); err != nil {
		h.fatalf("connect: %v", err)
	}
	if err := p.stop(); err != nil {
		h.fatalf("stop: %v", err)
	}
	causes := []string{"read-only", "read only", "readonly", "not writable"}
	try := func(name, what string) {
		q := in.spawn()
		o := observeStart(q, 8*time.Second)
		var api, tok, write int
		if !o.exited {
			api, _, _ = in.api(http.MethodGet, "/api/v1/connections", nil)
			tok, _, _ = in.token(in.connectionIDs()[0])
			write, _, _ = in.api(http.MethodPost, "/api/v1/connect-sessions", map[string]string{"app_id": in.appID, "customer_ref": "after"})
			q.stop()
		}
		calls := fmt.Sprintf("API GET /connections %d, POST …/token %d, POST /connect-sessions %d", api, tok, write)
		h.figure("%s: %s; %s", what, o, calls)
		notReady := !o.exited && o.readyz == http.StatusServiceUnavailable && namesCause(o.output, causes...)
		h.goal(name, what+": refuses to start, or is not ready, with one clear line naming the cause",
			o.refusedWithOneLine(causes...) || notReady, "%s; %s", o, calls)
	}

	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		h.skipNoMount(fmt.Errorf("%w: remount,ro: %v %s", errNoMount, err, out))
	}
	try("file_system_read_only", "the database's file system read-only")
	if out, err := exec.Command("mount", "-o", "remount,rw", mnt).CombinedOutput(); err != nil {
		h.fatalf("remount,rw: %v %s", err, out)
	}

	db := in.database
	if out, err := exec.Command("mount", "--bind", db, db).CombinedOutput(); err != nil {
		h.fatalf("bind mount %s: %v %s", db, err, out)
	}
	h.cleanup(func() { exec.Command("umount", db).Run() })
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", db).CombinedOutput(); err != nil {
		h.fatalf("remount the database file read-only: %v %s", err, out)
	}
	try("database_file_read_only", "the database file read-only (its directory writable)")
}

// secretKeyDeletedRun deletes secret.key from an install with connections (its
// key generated into the data directory) and starts grconnect. Goal: it refuses
// with one line, generating no new key.
func secretKeyDeletedRun(h *faultRun) {
	in := h.newInstall(installOpts{keyFile: true, fake: getresponsetest.Options{Rotation: getresponsetest.RotationStrict}})
	p := in.serve()
	if err := in.connect(2, 2); err != nil {
		h.fatalf("connect: %v", err)
	}
	if err := p.stop(); err != nil {
		h.fatalf("stop: %v", err)
	}
	keyPath := filepath.Join(in.dataDir, "secret.key")
	if err := os.Remove(keyPath); err != nil {
		h.fatalf("%v", err)
	}
	q := in.spawn()
	o := observeStart(q, 8*time.Second)
	var api, tok int
	if !o.exited {
		api, _, _ = in.api(http.MethodGet, "/api/v1/connections", nil)
		tok, _, _ = in.token(in.connectionIDs()[0])
		q.stop()
	}
	_, statErr := os.Stat(keyPath)
	regenerated := statErr == nil
	generatedLine := strings.Contains(o.output, "generated a new secret key")
	h.figure("started after secret.key was deleted: %s; a new secret.key written: %v (logged: %v); API GET /connections %d, POST …/token %d",
		o, regenerated, generatedLine, api, tok)
	h.goal("refuses_one_line", "secret.key deleted on an install with data: refuses to start with one line, and writes no new key",
		o.refusedWithOneLine("secret", "key") && !regenerated,
		"%s; a new secret.key written: %v", o, regenerated)
}
